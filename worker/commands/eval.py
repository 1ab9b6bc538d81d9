"""``guardstream eval``: measure the model on labelled conversations (issue 13).

Reads labelled JSON Lines, runs every event through the worker's own stages
(``worker.evaluation.run``) and writes the figures, the thresholds grid, the curves
and ``report.html`` to ``--out``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from worker.commands.settings_flags import add_settings_flags, load_settings
from worker.config import Settings

OUTPUT_FILES = (
    "scores.jsonl",
    "metrics.json",
    "thresholds.csv",
    "pr_curve.png",
    "roc_curve.png",
    "score_histogram.png",
    "report.html",
)
TINY_NOTE = (
    "this is a tiny RANDOM-weight test model: its scores, and so every figure here, "
    "carry no meaning. Evaluate real weights with --model meta-llama/Llama-Guard-3-11B-Vision."
)
# The example set, in a clone of the repository (the wheel does not ship it).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "eval"
# The test models of ``guardstream tiny-model`` have a 64-wide text stack; real ones ≥ 2048.
_TINY_HIDDEN_SIZE = 256


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "eval",
        help="measure the model on labelled conversations: figures, thresholds, curves",
        description="Runs labelled JSON Lines (a ConversationEvent plus "
        '"label": {"unsafe": true|false, "categories": ["S1", ...]} per line) through the '
        "worker's own stages and writes scores.jsonl, metrics.json, thresholds.csv, "
        "pr_curve.png, roc_curve.png, score_histogram.png and report.html.",
    )
    parser.add_argument("--input", type=Path, required=True, metavar="FILE", help="labelled JSONL")
    parser.add_argument(
        "--images-dir",
        type=Path,
        metavar="DIR",
        help="offline images: s3://bucket/key is read from DIR/bucket/key (default: from S3)",
    )
    parser.add_argument(
        "--target-fpr",
        type=float,
        default=0.05,
        metavar="RATE",
        help="the recommended threshold is the lowest whose false-positive rate is at most "
        "this (default 0.05)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output directory (default ./eval-<timestamp>)"
    )
    parser.add_argument(
        "--tenant",
        metavar="ID",
        help="judge every event by this tenant's profile of --policy-file (its thresholds, "
        "review band and actions); without it each event gets its own tenant's profile",
    )
    add_settings_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if not 0 <= args.target_fpr < 1:
        print(
            f"guardstream: --target-fpr must be in [0, 1), got {args.target_fpr}", file=sys.stderr
        )
        return 2
    out = args.out or Path(f"eval-{datetime.now():%Y%m%d-%H%M%S}")
    return evaluate(
        settings,
        args.input,
        out,
        images_dir=args.images_dir,
        target_fpr=args.target_fpr,
        tenant=args.tenant,
    )


def evaluate(
    settings: Settings,
    input_path: Path,
    out: Path,
    *,
    images_dir: Path | None = None,
    target_fpr: float = 0.05,
    tenant: str | None = None,
    note: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The command's work; the demo calls it too. Returns the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr

    def fail(message: str, code: int) -> int:
        print(f"guardstream: {message}", file=stderr)
        return code

    try:
        from worker.evaluation.dataset import read_labelled
        from worker.evaluation.progress import Progress
        from worker.evaluation.report import write_report
        from worker.evaluation.run import EventRunner, image_objects, image_stage, load_models
        from worker.evaluation.summary import Evaluation, format_text
        from worker.evaluation.types import DeadLetteredEvent, LabelledLine, SkippedLine
    except ImportError as exc:
        return fail(f"eval needs the 'eval' extra: pip install 'guardstream[eval]' ({exc})", 2)
    from worker.logs import configure_logging
    from worker.policy import PolicyFileError, PolicySet, load_policy_file

    if settings.model is None:
        return fail("GUARDSTREAM_MODEL is not set: pass --model PATH_OR_HUB_ID", 2)
    if not input_path.is_file():
        return fail(f"no such input file: {input_path}", 2)
    if images_dir is not None and not images_dir.is_dir():
        return fail(f"no such images directory: {images_dir}", 2)
    if tenant is not None and settings.policy_file is None:
        return fail("--tenant needs --policy-file (GUARDSTREAM_POLICY_FILE)", 2)
    policy: PolicySet | None = None
    threshold: float | None = None  # None: the verdicts' own (UNSAFE_THRESHOLD)
    category_thresholds: dict[str, float] = {}
    policy_info: dict[str, Any] | None = None
    if settings.policy_file is not None:
        try:
            policy = load_policy_file(
                settings.policy_file, unsafe_threshold=settings.unsafe_threshold
            )
        except PolicyFileError as exc:
            return fail(f"bad policy file {exc}", 2)
        policy_info = {"file": str(settings.policy_file), "tenant": tenant}
        if tenant is not None:
            profile = policy.tenants.get(tenant)
            if profile is None:  # a typo must not quietly evaluate [defaults]
                return fail(
                    f"bad policy: {settings.policy_file} has no [tenants.{tenant}] table", 2
                )
            # Every event is judged as this tenant's traffic, whatever its tenant_id says.
            policy = PolicySet(defaults=profile, source=policy.source, digest=policy.digest)
            threshold = profile.settings.unsafe_threshold
            category_thresholds = dict(profile.settings.category_thresholds)
            policy_info |= {"profile": profile.name, "version": profile.version}
    configure_logging("WARNING", settings.log_format, settings.log_content)

    with input_path.open("rb") as stream:
        parsed = list(read_labelled(stream))
    labelled = [item for item in parsed if isinstance(item, LabelledLine)]
    skipped = [item for item in parsed if isinstance(item, SkippedLine)]
    for item in skipped:
        print(f"guardstream: {input_path}:{item.line}: skipped: {item.reason}", file=stderr)
    if not labelled:
        return fail(f"{input_path}: no labelled event to evaluate", 1)

    print(f"==> loading the model ({settings.model})", file=stderr, flush=True)
    try:
        models = load_models(settings)
    except Exception as exc:
        return fail(f"cannot load the model: {exc}", 1)
    objects = image_objects(settings, images_dir)
    runner = EventRunner(
        settings,
        models,
        image_stage(settings, models, objects),
        policy=policy,
        threshold=threshold,
    )

    print(f"==> scoring {len(labelled)} events", file=stderr, flush=True)
    progress = Progress(len(labelled), stderr)
    records, dead_letters = [], []
    started = time.monotonic()
    for outcome in runner.run(labelled, progress.advance):
        if isinstance(outcome, DeadLetteredEvent):
            dead_letters.append(outcome)
        else:
            records.append(outcome)
    seconds = time.monotonic() - started
    progress.close()

    info = {"vision": models.vision.model_info}
    if models.text is not None:
        info["text"] = models.text.model_info
    evaluation = Evaluation(
        input=str(input_path),
        models={role: vars(i) for role, i in info.items()},
        threshold=settings.unsafe_threshold if threshold is None else threshold,
        target_fpr=target_fpr,
        lines=len(parsed),
        records=records,
        skipped=skipped,
        dead_letters=dead_letters,
        category_thresholds=category_thresholds,
        policy=policy_info,
        seconds=seconds,
        note=note or (TINY_NOTE if looks_tiny(settings.model) else None),
    )
    summary = write_report(evaluation, out)
    print(format_text(summary), file=stdout)
    print(f"\nwrote {out}/: {' '.join(OUTPUT_FILES)}", file=stdout, flush=True)
    return 0 if records else 1


def run_examples(settings: Settings, *, tiny: bool) -> int:
    """The demo's last step: ``guardstream eval`` on ``examples/eval`` (offline images)."""
    labelled = EXAMPLES_DIR / "labelled.jsonl"
    if not labelled.is_file():
        print(f"==> no example set at {EXAMPLES_DIR}: evaluation skipped", file=sys.stderr)
        return 0
    out = Path(".demo") / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    images = EXAMPLES_DIR / "images"
    print(
        f"\n==> guardstream eval --input {labelled} --images-dir {images} --out {out}",
        file=sys.stderr,
        flush=True,
    )
    return evaluate(settings, labelled, out, images_dir=images, note=TINY_NOTE if tiny else None)


def looks_tiny(model: str) -> bool:
    """A local model written by ``guardstream tiny-model`` (or as small): figures mean nothing."""
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    text = config.get("text_config", config)
    hidden = text.get("hidden_size") if isinstance(text, dict) else None
    return isinstance(hidden, int) and hidden < _TINY_HIDDEN_SIZE
