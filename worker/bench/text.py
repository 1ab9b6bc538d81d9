"""``guardstream bench text``: text-only prompts with the policy prefix's KV cache reused
(``PREFIX_CACHE_SIZE``) against the same engine computing every prompt whole.

Model: a random-weight Llama (the Llama Guard 3 1B/8B architecture, 8B template) whose
per-token compute dominates a batch: hidden 256, 8 layers, 8 heads / 4 KV heads (head
dim 32), MLP 1024, the real 128,256-token vocabulary (tied embeddings), the real
Llama 3.2 tokenizer; the safe/unsafe rows re-centred as the tiny models' are, so
verdicts split. Written once into the model cache (``$GUARDSTREAM_CACHE_DIR/models``).

Events: one user message (half of them followed by an assistant reply, so both roles
are assessed) of 10–300 words drawn uniformly, default policy.

- engine: ``LlamaGuardClassifier.classify`` in batches of ``--batch-size``, reuse on
  (``prefix_cache_size`` 16) and off (0), alternating, best of ``--repeats`` each;
  threshold 0.5 (unsafe rows decode ``--category-tokens`` category tokens, 4 like
  ``bench engine``: the real answer's length, where random weights would never stop).
- worker (``--worker-events`` > 0, needs the services: ``eval "$(scripts/services
  env)"``): the whole Worker, Kafka in, verdicts out, with this model as
  ``TEXT_MODEL``, ``PREFIX_CACHE_SIZE`` at its default then 0, otherwise the default
  settings (``CATEGORY_MAX_NEW_TOKENS`` = ``--category-tokens``).

``max_abs_logit_diff``: the largest difference of the first answer token's safe and
unsafe logits between the two sides, over every prompt (exactness: tests/engine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from worker.bench.machine import machine_info, phase
from worker.bench.report import progress, ratio

NAME = "text"
HELP = "text-only prompts: policy prefix KV reused vs every prompt computed whole"

# The benchmark model's shape (on top of the tiny models' TEXT_SIZE: vocabulary, rope).
SHAPE: dict[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 1024,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "initializer_range": 0.04,
    "tie_word_embeddings": True,
}
SHAPE_TEXT = "Llama, hidden 256, 8 layers, 8 heads / 4 KV heads, MLP 1024, vocab 128256 (tied)"
PREFIX_CACHE_SIZE = 16
MIN_WORDS, MAX_WORDS = 10, 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=64, help="prompts (default 64)")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per batch (default 16)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side (default 2)")
    parser.add_argument(
        "--worker-events",
        type=int,
        default=128,
        help="events through the whole Worker per side (default 128; 0: engine only)",
    )
    parser.add_argument(
        "--words",
        type=int,
        nargs=2,
        default=(MIN_WORDS, MAX_WORDS),
        metavar=("MIN", "MAX"),
        help=f"words per conversation, drawn uniformly (default {MIN_WORDS} {MAX_WORDS})",
    )
    parser.add_argument(
        "--category-tokens",
        type=int,
        default=4,
        help="tokens decoded on unsafe rows (default 4, the real answer's length; random "
        "weights never stop early)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--model", default=None, help="text model directory (default: above)")
    parser.add_argument("--device", default="cpu", help="default cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from worker.engine.loading import load_text_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or str(bench_text_model())
    loaded = load_text_model(model, dtype=args.dtype, device=args.device)
    words = (int(args.words[0]), int(args.words[1]))
    events = text_events(args.requests, seed=0, words=words)
    requests = _requests(loaded, events)
    progress(f"engine: {len(requests)} prompts, batches of {args.batch_size}, {SHAPE_TEXT}")
    torch.manual_seed(0)
    engine = _measure_engine(
        loaded, requests, args.batch_size, args.repeats, args.device, args.category_tokens
    )
    result: dict[str, Any] = {
        "benchmark": NAME,
        "unit": "prompts/s",
        "model": model if args.model else f"random weights, {SHAPE_TEXT}",
        "device": args.device,
        "dtype": args.dtype,
        "requests": len(requests),
        "batch_size": args.batch_size,
        "words_per_conversation": list(words),
        "policy": "default",
        "prefix_cache_size": PREFIX_CACHE_SIZE,
        "category_tokens": args.category_tokens,
        "torch_threads": torch.get_num_threads(),
        **engine,
        "baseline_path": "the same classifier with prefix_cache_size=0 (every prompt whole)",
    }
    if args.worker_events > 0:
        result["worker"] = _measure_worker(model, args.worker_events, words, args.category_tokens)
    result["machine"] = machine_info()
    return result


def bench_text_model() -> Path:
    """The benchmark model's directory, written into the model cache on first use."""
    import transformers

    import worker.engine.tiny as tiny
    from worker.lab.models import MARKER, cache_root, is_complete

    digest = hashlib.sha256(Path(tiny.__file__).read_bytes())
    digest.update(json.dumps(SHAPE, sort_keys=True).encode())
    digest.update(transformers.__version__.encode())
    expected = digest.hexdigest()
    target = cache_root() / f"bench-text-{expected[:12]}"
    if is_complete(target, expected):
        return target
    progress(f"writing the benchmark text model to {target} (once)")
    staging = target.with_name(f".{target.name}.{time.time_ns()}")
    write_bench_text_model(staging)
    (staging / MARKER).write_text(expected + "\n")
    try:
        staging.rename(target)
    except OSError:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        if not is_complete(target, expected):
            raise
    return target


def write_bench_text_model(target: Path) -> None:
    import tempfile

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from worker.engine.tiny import (
        TEXT_SIZE,
        _calibrate_answer_rows,
        _calibration_prompts,
        _set_generation_config,
        _text_tokenizer_files,
    )
    from worker.prompt.chat_templates import LLAMA_GUARD_3_8B_TEMPLATE
    from worker.prompt.types import PromptFormat

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**TEXT_SIZE, **SHAPE})).eval()
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = AutoTokenizer.from_pretrained(_text_tokenizer_files(Path(scratch)))
    tokenizer.padding_side = "left"
    tokenizer.chat_template = LLAMA_GUARD_3_8B_TEMPLATE
    texts = _calibration_prompts(PromptFormat.LG3_8B, with_image=False)
    batches = [dict(tokenizer(t, return_tensors="pt", add_special_tokens=False)) for t in texts]
    _calibrate_answer_rows(model, batches)
    _set_generation_config(model)
    target.mkdir(parents=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def text_events(
    count: int, *, seed: int, words: tuple[int, int] = (MIN_WORDS, MAX_WORDS)
) -> list[dict[str, Any]]:
    """``count`` text-only events of ``words`` (min, max) words each, default policy;
    every other one ends with an assistant reply (the agent's turn assessed)."""
    from worker.lab import TEXTS, assistant, conversation, user

    vocabulary = [word for text in TEXTS for word in text.split()]
    rng = random.Random(seed)
    out = []
    for index in range(count):
        total = rng.randint(*words)
        chosen = [rng.choice(vocabulary) for _ in range(total)]
        if index % 2:
            cut = max(1, total // 3)
            messages = [user(" ".join(chosen[:cut])), assistant(" ".join(chosen[cut:]))]
        else:
            messages = [user(" ".join(chosen))]
        out.append(conversation(f"t{seed}-{index}", messages=messages))
    return out


def _requests(loaded: Any, events: Sequence[dict[str, Any]]) -> list[Any]:
    from schemas.conversation import ConversationEvent
    from worker.engine.types import ClassificationRequest
    from worker.prompt import build_prompts

    out = []
    for document in events:
        event = ConversationEvent.model_validate(document)
        (prompt,) = build_prompts(event, text_model=True, text_format=loaded.prompt_format)
        out.append(ClassificationRequest(prompt, None))
    return out


def _measure_engine(
    loaded: Any,
    requests: Sequence[Any],
    batch_size: int,
    repeats: int,
    device: str,
    category_tokens: int,
) -> dict[str, Any]:
    from worker.engine.scoring import LlamaGuardClassifier

    def classifier(size: int) -> LlamaGuardClassifier:
        return LlamaGuardClassifier(
            loaded,
            max_batch_size=batch_size,
            prefix_cache_size=size,
            category_max_new_tokens=category_tokens,
        )

    on, off = classifier(PREFIX_CACHE_SIZE), classifier(0)
    samples = [on.tokenize_request(i, r) for i, r in enumerate(requests)]
    prompt_tokens = sum(len(s.input_ids) for s in samples)
    prefix_tokens = sum(s.prefix_length for s in samples)
    prefix_lengths = sorted({s.prefix_length for s in samples})
    for side in (on, off):
        side.classify(requests[:batch_size])  # warm-up (allocator, kernels)
    best_on = best_off = float("inf")
    results_on: list[Any] = []
    results_off: list[Any] = []
    load: dict[str, list[float]] = {"on": [], "off": []}
    for index in range(repeats):
        progress(f"  run {index + 1}/{repeats}: reuse on, then off")
        with phase() as figures:
            seconds, results_on = _timed(device, lambda: on.classify(requests))
        best_on = min(best_on, seconds)
        load["on"].append(figures["load_avg_1m"])
        with phase() as figures:
            seconds, results_off = _timed(device, lambda: off.classify(requests))
        best_off = min(best_off, seconds)
        load["off"].append(figures["load_avg_1m"])
    diff = max(
        max(abs(a.safe_logit - b.safe_logit), abs(a.unsafe_logit - b.unsafe_logit))
        for a, b in zip(results_on, results_off, strict=True)
    )
    same = all(
        (a.unsafe, a.categories) == (b.unsafe, b.categories)
        for a, b in zip(results_on, results_off, strict=True)
    )
    on_rps, off_rps = len(requests) / best_on, len(requests) / best_off
    return {
        "guardstream": round(on_rps, 3),
        "baseline": round(off_rps, 3),
        "ratio": ratio(on_rps, off_rps),
        "target_ratio": 2.0,
        "prompt_tokens": prompt_tokens,
        "prefix_tokens": prefix_tokens,
        "prefix_share": round(prefix_tokens / prompt_tokens, 3),
        "prefix_lengths": prefix_lengths,
        "max_abs_logit_diff": diff,
        "verdicts_and_categories_identical": same,
        "unsafe_verdicts": sum(1 for r in results_on if r.unsafe),
        "seconds": {"guardstream": round(best_on, 2), "baseline": round(best_off, 2)},
        "load_avg_1m": load,
    }


def _timed(device: str, work: Callable[[], list[Any]]) -> tuple[float, list[Any]]:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    out = work()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    bad = [o for o in out if not hasattr(o, "unsafe_logit")]
    if bad:
        raise RuntimeError(f"{len(bad)} prompts failed: {bad[0]}")
    return time.perf_counter() - started, out


def _measure_worker(
    model: str, count: int, words: tuple[int, int], category_tokens: int
) -> dict[str, Any]:
    """The whole Worker (Kafka in, verdicts out), reuse at its default then 0."""
    from worker.bench.timed import bench_lab, run_worker
    from worker.lab import cached_tiny_model
    from worker.pipeline import load_models

    lab = bench_lab()
    runs: dict[str, Any] = {}
    try:
        for label, size in (("reuse", None), ("whole", 0)):
            events = text_events(count, seed=1, words=words)  # the same events both sides
            topics = lab.topic_set(label)
            lab.produce_events(events, topic=topics.input, bulk=True)
            overrides: dict[str, Any] = {
                "model": str(cached_tiny_model("vision")),
                "text_model": model,
                "device": "cpu",
                "dtype": "float32",
                "category_max_new_tokens": category_tokens,
            }
            if size is not None:
                overrides["prefix_cache_size"] = size
            settings = lab.worker_settings(topics, **overrides)
            progress(f"Worker, PREFIX_CACHE_SIZE={settings.prefix_cache_size}: {count} events")
            models = load_models(settings)
            with phase() as figures:
                run_result = run_worker(
                    settings,
                    models,
                    count,
                    timeout_s=1800,
                    on_tick=lambda done: progress(f"  {done}/{count} verdicts"),
                )
            verdicts = [json.loads(v) for v in lab.read_values(topics.output, count, 60)]
            runs[label] = {
                "events_per_s": run_result.events_per_s,
                "seconds": run_result.seconds,
                "cache_size": settings.prefix_cache_size,
                "scores": {v["event_id"]: v["unsafe_score"] for v in verdicts},
                "verdicts": {v["event_id"]: v["verdict"] for v in verdicts},
                "dead_letters": lab.count_records([topics.dlq]),
                "phase": figures,
            }
    finally:
        lab.close()
    reuse, whole = runs["reuse"], runs["whole"]
    shared = reuse["scores"].keys() & whole["scores"].keys()
    return {
        "unit": "events/s",
        "events": count,
        "guardstream": round(reuse["events_per_s"], 3),
        "baseline": round(whole["events_per_s"], 3),
        "baseline_path": "the same Worker with PREFIX_CACHE_SIZE=0",
        "ratio": ratio(reuse["events_per_s"], whole["events_per_s"]),
        "prefix_cache_size": reuse["cache_size"],
        "verdicts": {"guardstream": len(reuse["scores"]), "baseline": len(whole["scores"])},
        "dead_letters": {"guardstream": reuse["dead_letters"], "baseline": whole["dead_letters"]},
        "max_abs_score_diff": max(
            (abs(reuse["scores"][k] - whole["scores"][k]) for k in shared), default=float("nan")
        ),
        "verdicts_identical": all(reuse["verdicts"][k] == whole["verdicts"][k] for k in shared),
        "seconds": {
            "guardstream": round(reuse["seconds"], 1),
            "baseline": round(whole["seconds"], 1),
        },
        "phases": {"guardstream": reuse["phase"], "baseline": whole["phase"]},
    }
