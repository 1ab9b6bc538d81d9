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
    parser.add_argument(
        "--policy-file",
        default=None,
        metavar="FILE",
        help="a tenant policy file: show the prompt the event's tenant_id gets under it",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from schemas import ConversationEvent
    from worker.policy import PolicyFileError, PolicyRefusal, Profile, load_policy_file, resolve
    from worker.prompt import ConversationNotSupported, PromptFormat, render_prompt_listing
    from worker.stages.decode import describe_validation_error

    policy = None
    if args.policy_file is not None:
        try:
            policy = load_policy_file(args.policy_file)
        except PolicyFileError as exc:
            print(f"guardstream: {exc}", file=sys.stderr)
            return 2
    raw = sys.stdin.buffer.read()
    try:
        event = ConversationEvent.model_validate_json(raw)
        profile: Profile | None = None
        if policy is not None:
            resolved = resolve(event, policy)
            if isinstance(resolved, PolicyRefusal):
                print(
                    f"guardstream: refused ({resolved.stage.value}/{resolved.error_class}): "
                    f"{resolved.message}",
                    file=sys.stderr,
                )
                return 1
            profile = resolved
        listing = render_prompt_listing(
            event,
            text_model=args.text_model != "none",
            as_json=args.json,
            text_format=PromptFormat.LG3_8B if args.text_model == "8b" else PromptFormat.LG3_VISION,
            base_categories=profile.prompt_categories if profile is not None else None,
        )
    except ValidationError as exc:
        print(f"guardstream: invalid event: {describe_validation_error(exc)}", file=sys.stderr)
        return 1
    except ConversationNotSupported as exc:
        print(f"guardstream: cannot build a prompt: {exc}", file=sys.stderr)
        return 1
    if profile is not None and not args.json:
        listing = f"### policy profile: {profile.name} (version {profile.version[:12]})\n" + listing
    sys.stdout.write(listing if listing.endswith("\n") else listing + "\n")
    return 0
