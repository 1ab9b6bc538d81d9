"""``guardstream policy check`` and ``guardstream prompt --policy-file``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from policy_helpers import EXAMPLE

from worker.cli import main


def test_check_prints_each_profiles_effective_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    header, rule, *rows = out.splitlines()
    cells = [c.strip() for c in header.split("|")[1:-1]]
    assert cells == ["key", "defaults", "tenants.adult-forum", "tenants.kids"]
    assert set(rule) == {"|", "-"}
    table = {
        row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]]
        for row in rows
        if row.startswith("|")
    }
    assert table["unsafe_threshold"] == ["0.50", "0.60", "0.30"]
    assert table["category_thresholds"] == ["-", "S12=0.90", "S1=0.10 S4=0.05 S10=0.10"]
    assert table["review_band"] == ["-", "-", "[0.15, 0.30)"]
    assert table["mode"] == ["enforce", "observe", "enforce"]
    assert table["on_error"] == ["dead_letter", "allow", "block"]
    assert table["excluded_category_keys"] == ["-", "S8,S13", "-"]
    assert "require_known_tenant: false" in out
    assert out.rstrip().endswith("ok: [defaults] and 2 tenant profile(s)")


def test_check_json_has_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "--json", str(EXAMPLE)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["profiles"]) == {"defaults", "tenants.kids", "tenants.adult-forum"}
    assert all(len(p["version"]) == 64 for p in data["profiles"].values())
    assert data["profiles"]["tenants.kids"]["audit_sample_rate"] == 0.02


def test_check_exits_2_listing_every_error_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[defaults]\nmode = "loud"\n[tenants.kids]\ncategory_thresholds = { S99 = 0.1 }\n'
        "review_band = [0.4, 0.2]\nfoo = 1\n",
        encoding="utf-8",
    )
    assert main(["policy", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"guardstream: {bad}: 4 error(s)",
        "  defaults.mode: Input should be 'enforce' or 'observe'",
        "  tenants.kids.foo: unknown key",
        "  tenants.kids.category_thresholds.S99: unknown category key (not in S1-S14)",
        "  tenants.kids.review_band: needs low < high",
    ]
    assert main(["policy", "check", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_check_takes_the_workers_threshold_as_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("GUARDSTREAM_UNSAFE_THRESHOLD", "0.7")
    assert main(["policy", "check", str(empty)]) == 0
    assert "| unsafe_threshold       | 0.70" in capsys.readouterr().out
    assert main(["policy", "check", "--unsafe-threshold", "0.2", str(empty)]) == 0
    assert "| unsafe_threshold       | 0.20" in capsys.readouterr().out


EVENT = {
    "event_id": "e1",
    "conversation_id": "c1",
    "created_at": "2026-11-24T09:00:00Z",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}


def run_prompt(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    event: dict[str, object],
    *args: str,
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(event).encode())))
    code = main(["prompt", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prompt_shows_what_a_tenants_event_gets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forum = {**EVENT, "tenant_id": "adult-forum"}
    code, out, _ = run_prompt(monkeypatch, capsys, forum, "--policy-file", str(EXAMPLE))
    assert code == 0
    assert out.startswith("### policy profile: tenants.adult-forum (version ")
    assert "S7: Privacy." in out and "S8:" not in out and "S13:" not in out
    code, plain, _ = run_prompt(monkeypatch, capsys, forum)
    assert code == 0 and "S8: Intellectual Property." in plain and "policy profile" not in plain
    code, rows, _ = run_prompt(monkeypatch, capsys, forum, "--json", "--policy-file", str(EXAMPLE))
    assert code == 0 and "S8:" not in json.loads(rows)[0]["prompt"]


def test_prompt_reports_a_refusal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kids = {**EVENT, "tenant_id": "kids", "policy": {"excluded_category_keys": ["S1"]}}
    code, out, err = run_prompt(monkeypatch, capsys, kids, "--policy-file", str(EXAMPLE))
    assert (code, out) == (1, "")
    assert "validate/EventPolicyNotAllowed" in err
