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


def test_console_script_flushes_its_output_and_keeps_the_exit_code() -> None:
    """The entry point leaves with os._exit (no finalization): output written to a pipe
    (block-buffered) must still arrive, and the command's exit code must be kept."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "from worker.cli import entrypoint; entrypoint()"]
    table = subprocess.run(
        [*command, "config", "--table"], capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0, table.stderr
    assert "`GUARDSTREAM_MAX_RECORD_BYTES`" in table.stdout
    assert table.stdout.rstrip().endswith("|")  # the last line made it out
    bad = subprocess.run(
        [*command, "config", "--max-batch-size", "0"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert "max_batch_size" in bad.stderr.lower() or "max-batch-size" in bad.stderr.lower()
