"""``guardstream eval --policy-file F --tenant ID``: every event gets the tenant's action,
and metrics.json counts the action mix by label and the review share."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import structlog
from eval_doubles import KnownScoreClassifier, known_score_models
from test_eval_command import known_set

import worker.evaluation.run as eval_run
from worker.cli import main

POLICY = """
[defaults]
unsafe_threshold = 0.5

[tenants.kids]
unsafe_threshold = 0.5
review_band = [0.3, 0.6]
"""


def expected_action(score: float) -> str:
    if 0.3 <= score < 0.6:
        return "review"
    return "block" if score >= 0.5 else "allow"


def test_a_tenant_profile_gives_every_event_its_action(tmp_path: Path) -> None:
    source, images, expected = known_set(tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    out = tmp_path / "out"
    saved = structlog.get_config()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            eval_run, "load_models", lambda settings: known_score_models(KnownScoreClassifier())
        )
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = main(
                [
                    "eval",
                    "--input",
                    str(source),
                    "--images-dir",
                    str(images),
                    "--out",
                    str(out),
                    "--model",
                    "known-scores",
                    "--policy-file",
                    str(policy),
                    "--tenant",
                    "kids",
                ]
            )
    structlog.configure(**saved)
    assert code == 0
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        assert row["action"] == expected_action(expected[row["event_id"]][0]), row["event_id"]
    mix = json.loads((out / "metrics.json").read_text())["actions"]
    counted: Counter[tuple[str, str]] = Counter(
        ("unsafe" if row["label"]["unsafe"] else "safe", row["action"]) for row in rows
    )
    for label, actions in mix["by_label"].items():
        for action, n in actions.items():
            assert n == counted[(label, action)]
    reviews = sum(row["action"] == "review" for row in rows)
    assert mix["review_share"] == pytest.approx(reviews / len(rows), abs=1e-4)
    assert 0 < reviews < len(rows)
