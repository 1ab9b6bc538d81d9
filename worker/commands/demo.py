"""``guardstream demo``: a worked example on the local services (``./scripts/demo``).

Uploads generated images to S3, produces ~20 sample conversations (``worker.lab.samples``),
runs the worker until every sample is accounted for, and prints one row per event: its
verdict, or its dead-letter stage; then runs `guardstream eval` on the labelled example
set (examples/eval).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from worker.commands.settings_flags import add_settings_flags, load_settings

DEMO_BUCKET = "guardstream-demo"
# A tenant profile for every sample (issue 12): uncertain scores go to people, and a
# quarter of the allowed events is audited (decided from each event id: repeatable).
DEMO_POLICY = """\
[defaults]
unsafe_threshold = 0.5
review_band = [0.35, 0.5]
audit_sample_rate = 0.25
seed = "demo-0"
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the worker on ~20 sample conversations against local Kafka and S3",
        description="Needs Kafka and an S3 server (./scripts/demo starts them). Without "
        "--model it builds a tiny random model: its verdicts carry no meaning.",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds"
    )
    add_settings_flags(parser)
    parser.set_defaults(handler=run)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from worker.lab import (
        Lab,
        Outputs,
        cached_tiny_model,
        running_worker,
        sample_images,
        sample_records,
    )
    from worker.logs import configure_logging
    from worker.pipeline import load_models

    base = load_settings(args)
    configure_logging("ERROR", "console", False)  # the table below is the output
    tiny = base.model is None
    model = base.model or str(
        cached_tiny_model(
            on_build=lambda path: _say(f"==> building a tiny random model in {path} (once)")
        )
    )
    lab = Lab(base, name=f"demo-{uuid.uuid4().hex[:8]}", partitions=3, bucket=DEMO_BUCKET)
    _say(f"==> uploading sample images to s3://{DEMO_BUCKET}")
    for key, (data, content_type) in sample_images().items():
        lab.put_image(key, data, content_type)
    _say(f"==> creating topics {lab.name}.* (3 partitions)")
    lab.create(bucket=False)
    samples = sample_records(DEMO_BUCKET)
    _say(f"==> producing {len(samples)} sample conversations")
    positions = lab.produce([value for _, value in samples], [d.encode() for d, _ in samples])
    description_at = {where: d for where, (d, _) in zip(positions, samples, strict=True)}

    policy_file = Path(tempfile.mkdtemp(prefix="guardstream-demo-")) / "policy.toml"
    policy_file.write_text(DEMO_POLICY)
    _say(f"==> tenant profile: {policy_file} (review band [0.35, 0.5), 25 % audited)")
    settings = lab.worker_settings(
        model=model,
        allowed_buckets=(DEMO_BUCKET,),
        fetch_max_attempts=2,
        policy_file=str(policy_file),
    )
    _say(f"==> loading the model ({model})")
    models = load_models(settings)
    started = time.monotonic()
    seen = [-1]

    def report(outputs: Outputs) -> None:
        if outputs.accounted() != seen[0]:
            seen[0] = outputs.accounted()
            _say(f"    {seen[0]}/{len(samples)} accounted for ({time.monotonic() - started:.0f}s)")

    with running_worker(settings, models, thread_name="demo-worker"):
        outputs = lab.read_outputs(len(samples), args.timeout, on_poll=report)

    rows = {description_at[where]: _row(o) for where, o in outputs.by_position().items()}
    print()
    print(f"{'sample':40} {'outcome':24} {'P(unsafe)':>9}  {'categories / error':22} detail")
    print("-" * 120)
    for description, _ in samples:
        outcome, score, detail, extra = rows.get(description, ("MISSING", "", "", ""))
        print(f"{description:40} {outcome:24} {score:>9}  {detail:22} {extra}")
    print()
    missing = len(samples) - len(rows)
    print(f"{len(rows)}/{len(samples)} events accounted for; {missing} missing.")
    _print_reviews(lab)
    if tiny:
        print(
            "NOTE: this ran a tiny RANDOM model: its verdicts and scores carry no meaning. "
            "Run with real weights: ./scripts/demo --model meta-llama/Llama-Guard-3-11B-Vision "
            "(or a local path)."
        )
    from worker.commands.eval import run_examples

    evaluated = run_examples(base.model_copy(update={"model": model}), tiny=tiny)  # issue 13
    return 0 if missing == 0 and evaluated == 0 else 1


def _print_reviews(lab: Any) -> None:
    """The ReviewRequests the profile produced (the review lane: what people would see)."""
    from schemas.review import ReviewRequest

    requests = [
        ReviewRequest.model_validate_json(r.value) for r in lab.read_to_end(lab.review_topic)
    ]
    print(f"{len(requests)} review request(s) on {lab.review_topic}:")
    for request in requests:
        verdict = request.verdict
        print(
            f"  {verdict.event_id:38} reason={request.reason:6} action={verdict.action} "
            f"P(unsafe)={verdict.unsafe_score:.3f}"
        )


def _row(outcome: Any) -> tuple[str, str, str, str]:
    """(outcome, P(unsafe), categories or error class, detail) of a verdict or dead letter."""
    from schemas.verdict import VerdictEvent

    if isinstance(outcome, VerdictEvent):
        images = f"{len(outcome.images)} image(s)" if outcome.images else "text"
        categories = ", ".join(outcome.categories) or "-"
        return (
            f"{outcome.verdict} → {outcome.action}",
            f"{outcome.unsafe_score:.3f}",
            categories,
            images,
        )
    stage = f"dead letter: {outcome.stage.value}"
    return (stage, "", outcome.error_class, outcome.error_message[:60])
