"""``guardstream tiny-model``: write a small random-weight model for tests and the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "tiny-model",
        help="write a small random-weight Llama Guard-shaped model (tests, demo, benchmarks)",
        description="Writes a random-weight MllamaForConditionalGeneration (or Llama causal LM) "
        "with the real Llama 3.2 Vision tokenizer and processor settings. Its verdicts carry "
        "no meaning; it exercises the same code path as the real weights.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--kind", choices=("vision", "text"), default="vision")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vision-heavy",
        action="store_true",
        help="a vision encoder that dominates the cost like the 11B model's (benchmarks)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from worker.engine import write_tiny_model

    started = time.monotonic()
    print(f"writing a tiny {args.kind} model to {args.directory} ...", file=sys.stderr, flush=True)
    path = write_tiny_model(
        args.directory, kind=args.kind, seed=args.seed, vision_heavy=args.vision_heavy
    )
    print(f"done in {time.monotonic() - started:.1f}s: {path}", file=sys.stderr)
    return 0
