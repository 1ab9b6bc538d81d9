"""``guardstream policy check FILE``: validate a policy file, show what each tenant gets."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# Exit status of a bad file, as for a bad setting.
EXIT_INVALID = 2


def register(sub: Any) -> None:
    parser = sub.add_parser("policy", help="tenant policy profiles (GUARDSTREAM_POLICY_FILE)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a policy file and print each tenant's effective settings",
        description="Exit 2 with every error (each with its TOML path) when the file is bad; "
        "else print the effective settings of [defaults] and of each tenant, exit 0.",
    )
    check.add_argument("file", help="the policy file (TOML)")
    check.add_argument("--json", action="store_true", help="print the effective settings as JSON")
    check.add_argument(
        "--unsafe-threshold",
        type=float,
        default=None,
        help="the default of [defaults].unsafe_threshold "
        "(default: the worker's GUARDSTREAM_UNSAFE_THRESHOLD)",
    )
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from worker.commands.settings_flags import load_settings
    from worker.policy import PolicyFileError, load_policy_file
    from worker.policy.render import settings_json, settings_table

    threshold = args.unsafe_threshold
    if threshold is None:
        threshold = load_settings(argparse.Namespace()).unsafe_threshold
    try:
        policy = load_policy_file(args.file, unsafe_threshold=threshold)
    except PolicyFileError as exc:
        print(f"guardstream: {exc.source}: {len(exc.issues)} error(s)", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(settings_json(policy), indent=2, ensure_ascii=False))
    else:
        print(settings_table(policy))
        print(f"ok: [defaults] and {len(policy.tenants)} tenant profile(s)")
    return 0
