"""Runs scripts/check-infra: the Helm chart, alert rules, dashboard, compose file and
Dockerfile validated by real tools (helm, kubeconform, promtool, compose-go, hadolint).

The first run on a machine builds the tools with `go install` (several minutes on two
cores, cached under GUARDSTREAM_CACHE_DIR); later runs take seconds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_check_infra() -> None:
    if shutil.which("go") is None:
        pytest.skip("the Go toolchain is needed to build helm, kubeconform and promtool")
    result = subprocess.run(
        [str(ROOT / "scripts" / "check-infra")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=2300,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "FAIL" not in result.stdout, report
