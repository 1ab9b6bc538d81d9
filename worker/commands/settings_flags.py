"""Settings as command-line flags: one ``--flag`` per ``GUARDSTREAM_*`` setting."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from worker.config import Settings, env_name, flag_name


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
