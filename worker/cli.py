"""The ``guardstream`` command. Heavy imports (torch, transformers) happen inside
the subcommands so that ``--help`` and the Kafka tools start fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import SecretStr, ValidationError

from worker import __version__
from worker.commands import prompt, tiny_model
from worker.config import Settings, env_name, flag_name, settings_table

# Each module registers one subcommand; its heavy imports happen when it runs.
COMMANDS: tuple[Any, ...] = (prompt, tiny_model)

Handler = Callable[[argparse.Namespace], int]


class SettingsError(Exception):
    """A bad setting: reported as one line, exit status 2."""


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (``--max-batch-size`` for ``GUARDSTREAM_MAX_BATCH_SIZE``)."""
    group = parser.add_argument_group(
        "settings (flags override GUARDSTREAM_* env and the config file)"
    )
    for name, field in Settings.model_fields.items():
        group.add_argument(
            flag_name(name),
            dest=f"setting_{name}",
            default=None,
            metavar="VALUE",
            help=f"{field.description} [{env_name(name)}]",
        )


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key.startswith("setting_") and value is not None:
            overrides[key.removeprefix("setting_")] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise SettingsError(
            f"invalid setting {env_name(field) if field in Settings.model_fields else field}: "
            f"{first['msg']} (got {first.get('input')!r})"
        ) from None


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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
