"""Every subcommand's --help renders (argparse formats help strings lazily)."""

from __future__ import annotations

import pytest

from worker.cli import build_parser, main


def subcommand_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(parser: object, prefix: list[str]) -> None:
        for action in getattr(parser, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, child in choices.items():
                    paths.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(build_parser(), [])
    return paths


@pytest.mark.parametrize("path", subcommand_paths(), ids=" ".join)
def test_help_renders(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    assert "usage: guardstream" in capsys.readouterr().out


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "topics", "replay", "prompt", "tiny-model", "demo", "bench", "config"):
        assert command in out
