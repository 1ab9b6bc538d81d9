"""``guardstream eval --policy-file F --tenant ID``: every event judged by that tenant's
profile (the shipped examples/policy.toml, tenant ``kids``), its thresholds in force,
the action mix by label and the share the review lane gets."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import structlog
from eval_builders import labelled, write_jsonl
from eval_doubles import KnownScoreClassifier, known_score_models
from eval_known_set import KEYS, NAN, Run, known_set, run_command, same, scores
from sklearn.metrics import f1_score, precision_score, recall_score

import worker.evaluation.run as eval_run
from worker.cli import main
from worker.evaluation.metrics import action_mix
from worker.evaluation.types import Label, ScoredEvent
from worker.policy import decide, load_policy_file

POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
KIDS = load_policy_file(POLICY).tenants["kids"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_command(
        tmp_path_factory.mktemp("eval-policy"), "--policy-file", str(POLICY), "--tenant", "kids"
    )


def enforce_by_hand(score: float, category_scores: dict[str, float]) -> str:
    # kids: S1 ≥ 0.10, S4 ≥ 0.05, S10 ≥ 0.10 block; review band [0.15, 0.30); block ≥ 0.3.
    thresholds = {"S1": 0.10, "S4": 0.05, "S10": 0.10}
    if any(category_scores[k] >= t for k, t in thresholds.items()):
        return "block"
    if 0.15 <= score < 0.30:
        return "review"
    return "block" if score >= 0.3 else "allow"


def test_each_event_gets_the_tenant_s_action(run: Run) -> None:
    assert run.code == 0
    rows = scores(run.out)
    assert len(rows) == 240
    for row in rows:
        assert row["action"] == enforce_by_hand(row["unsafe_score"], row["category_scores"])
        expected = decide(KIDS, row["unsafe_score"], row["category_scores"], row["event_id"])
        assert (row["action"], row["review"], row["would_action"]) == (
            expected.action,
            expected.review,
            None,
        )
    assert set(Counter(r["action"] for r in rows)) == {"allow", "review", "block"}
    assert set(rows[0]["category_scores"]) == set(KEYS)


def test_the_tenant_s_thresholds_are_in_force(run: Run) -> None:
    rows = scores(run.out)
    metrics = json.loads((run.out / "metrics.json").read_text())
    assert metrics["threshold"] == 0.3
    assert metrics["category_thresholds"] == {"S1": 0.1, "S4": 0.05, "S10": 0.1}
    assert metrics["policy"] == {
        "file": str(POLICY),
        "tenant": "kids",
        "profile": KIDS.name,
        "version": KIDS.version,
    }
    assert all(r["predicted_unsafe"] == (r["unsafe_score"] >= 0.3) for r in rows)
    y = [r["label"]["unsafe"] for r in rows]
    p = [r["predicted_unsafe"] for r in rows]
    assert same(metrics["overall"]["recall"], recall_score(y, p))
    counted = [r for r in rows if not r["label"]["unsafe"] or r["label"]["categories"]]
    for key, figures in metrics["categories"].items():
        yk = [key in r["label"]["categories"] for r in counted]
        threshold = metrics["category_thresholds"].get(key, 2.0)
        pk = [key in r["categories"] or r["category_scores"][key] >= threshold for r in counted]
        assert same(figures["precision"], precision_score(yk, pk, zero_division=NAN))
        assert same(figures["recall"], recall_score(yk, pk, zero_division=NAN))
        assert same(figures["f1"], f1_score(yk, pk, zero_division=NAN))
    # S1 passes its 0.10 threshold far more often than the verdicts list it.
    assert metrics["categories"]["S1"]["fp"] > 0


def test_the_action_mix_and_the_review_lane(run: Run) -> None:
    rows = scores(run.out)
    actions = json.loads((run.out / "metrics.json").read_text())["actions"]
    for label in ("safe", "unsafe"):
        mine = [r for r in rows if r["label"]["unsafe"] == (label == "unsafe")]
        assert actions["by_label"][label] == {
            a: sum(r["action"] == a for r in mine) for a in ("allow", "review", "block")
        }
    band = sum(r["review"] == "band" for r in rows)
    assert band == sum(r["action"] == "review" for r in rows)  # the band is what reviews
    assert band > 0 and actions["review_share"] == band / len(rows)
    assert actions["review"]["audit"] == sum(r["review"] == "audit" for r in rows)
    assert "actions under" in run.stdout and f"tenant kids (profile {KIDS.name})" in run.stdout
    assert f"review lane: {band} events by the review band" in run.stdout
    assert "<h2>Actions</h2>" in (run.out / "report.html").read_text()


def test_observe_mode_counts_what_enforce_would_do() -> None:
    def record(action: str, would: str | None, review: str | None = None) -> ScoredEvent:
        return ScoredEvent(1, "e", Label(False), 0.5, False, (), {}, action, would, review)

    mix = action_mix([record("allow", "block", "audit"), record("allow", "allow")])
    assert mix["observe"] is True
    assert mix["by_label"]["safe"] == {"allow": 1, "review": 0, "block": 1}
    assert (mix["review"], mix["audit_share"]) == ({"band": 0, "audit": 1}, 0.5)


def test_without_tenant_each_event_gets_its_own_tenant_s_profile(
    tmp_path: Path, quiet_worker_logs: None
) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            labelled("k", "[score=0.35]", unsafe=True, tenant_id="kids"),
            labelled("o", "[score=0.35]", unsafe=True, tenant_id="someone-else"),
        ],
    )
    double = KnownScoreClassifier()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eval_run, "load_models", lambda settings: known_score_models(double))
        out = ["--out", str(tmp_path / "out")]
        code = main(
            ["eval", "--input", str(source), *out, "--model", "m", "--policy-file", str(POLICY)]
        )
    assert code == 0
    rows = {r["event_id"]: r for r in scores(tmp_path / "out")}
    assert (rows["k"]["action"], rows["o"]["action"]) == ("block", "allow")  # 0.3 vs 0.5
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["threshold"] == 0.5 and metrics["category_thresholds"] == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "kids"], "--tenant needs --policy-file"),
        (["--policy-file", "{bad}"], "bad policy file"),
        (["--policy-file", str(POLICY), "--tenant", "kidz"], "has no [tenants.kidz] table"),
    ],
)
def test_policy_start_up_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\nunsafe_threshold = 7\n")
    source = write_jsonl(tmp_path / "in.jsonl", [labelled("e", "x", unsafe=False)])
    code = main(
        [
            "eval",
            "--input",
            str(source),
            "--model",
            "m",
            *(a.replace("{bad}", str(bad)) for a in args),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


BAND_POLICY = """
[defaults]
unsafe_threshold = 0.5

[tenants.kids]
unsafe_threshold = 0.5
review_band = [0.3, 0.6]
"""


def band_action(score: float) -> str:
    if 0.3 <= score < 0.6:
        return "review"
    return "block" if score >= 0.5 else "allow"


def test_a_review_band_over_the_threshold_reviews_first(tmp_path: Path) -> None:
    """A band [0.3, 0.6) above a 0.5 threshold: 0.5 ≤ score < 0.6 is reviewed, not blocked."""
    source, images, expected = known_set(tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text(BAND_POLICY)
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
        assert row["action"] == band_action(expected[row["event_id"]][0]), row["event_id"]
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
