"""The ``guardstream`` command. Heavy imports (torch, transformers) happen inside
the subcommands so that ``--help`` and the Kafka tools start fast."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import SecretStr

from worker import __version__
from worker.commands import (
    acls,
    bench,
    demo,
    hashbank,
    policy,
    prompt,
    replay,
    run,
    tiny_model,
    topics,
)
from worker.commands import eval as eval_command
from worker.commands.settings_flags import SettingsError, add_settings_flags, load_settings
from worker.config import env_name, settings_table
from worker.startup_errors import StartupError

# Each module registers one subcommand; its heavy imports happen when it runs.
COMMANDS: tuple[Any, ...] = (
    run,
    topics,
    replay,
    acls,
    prompt,
    policy,
    tiny_model,
    demo,
    bench,
    eval_command,
    hashbank,
)

Handler = Callable[[argparse.Namespace], int]


def cmd_config(args: argparse.Namespace) -> int:
    if args.table:
        print(settings_table())
        return 0
    settings = load_settings(args)
    for name, value in settings.model_dump().items():
        if isinstance(getattr(settings, name), SecretStr):
            value = "**********"
        print(f"{env_name(name)}={value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guardstream",
        description="Moderate chat conversations from Kafka with Llama Guard 3 Vision.",
    )
    parser.add_argument("--version", action="version", version=f"guardstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = sub.add_parser("config", help="show the effective settings, or the settings table")
    config.add_argument("--table", action="store_true", help="print the README's settings table")
    add_settings_flags(config)
    config.set_defaults(handler=cmd_config)

    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SettingsError as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def entrypoint() -> None:
    """The console script: ``main()``, then leave without interpreter finalization.

    By then the command has finished for real (a worker has published, committed and
    closed its clients). Finalization would only run native libraries' static
    destructors, and those can abort() (SIGABRT, "terminate called without an active
    exception": seen after clean SIGTERM drains in the fault tests), turning a clean
    exit 0 into a crash for the orchestrator.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
