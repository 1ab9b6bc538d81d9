"""``guardstream prompt``: print exactly what the model will see for an event."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "prompt",
        help="print the prompt(s) the model sees for an event read from stdin",
        description="Reads one ConversationEvent (JSON) on stdin and prints the exact prompt "
        "text for each image (one prompt per image), or the one text-only prompt.",
    )
    parser.add_argument("--json", action="store_true", help='a JSON list of {"image", "prompt"}')
    parser.add_argument(
        "--text-model",
        choices=("none", "8b", "1b"),
        default="none",
        help="text-only events go to a Llama Guard 3 text model with this template "
        "(default: the vision model)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from schemas import ConversationEvent
    from worker.prompt import ConversationNotSupported, PromptFormat, render_prompt_listing
    from worker.stages.decode import describe_validation_error

    raw = sys.stdin.buffer.read()
    try:
        event = ConversationEvent.model_validate_json(raw)
        listing = render_prompt_listing(
            event,
            text_model=args.text_model != "none",
            as_json=args.json,
            text_format=PromptFormat.LG3_8B if args.text_model == "8b" else PromptFormat.LG3_VISION,
        )
    except ValidationError as exc:
        print(f"guardstream: invalid event: {describe_validation_error(exc)}", file=sys.stderr)
        return 1
    except ConversationNotSupported as exc:
        print(f"guardstream: cannot build a prompt: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(listing if listing.endswith("\n") else listing + "\n")
    return 0
