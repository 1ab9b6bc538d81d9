"""``guardstream eval`` end to end with a classifier of known scores: the pipeline hands
the scores through untouched, and every figure the command writes equals scikit-learn
called directly on its ``scores.jsonl``."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest
from eval_builders import labelled, write_jsonl
from eval_doubles import category_scores
from eval_known_set import BATCH, KEYS, NAN, Run, run_command, same, scores
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from worker.cli import main

TARGET_FPR = 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One ``guardstream eval`` on the known set, shared by the tests of this module."""
    return run_command(tmp_path_factory.mktemp("eval"), "--target-fpr", str(TARGET_FPR))


def test_scores_come_through_the_worker_s_stages_unchanged(run: Run) -> None:
    assert run.code == 0
    rows = scores(run.out)
    assert [r["event_id"] for r in rows] == [f"e{i}" for i in range(240)]  # input order
    for row in rows:
        score, listed, said = run.expected[row["event_id"]]
        assert row["unsafe_score"] == score
        assert row["predicted_unsafe"] == (score >= 0.5)
        assert tuple(row["categories"]) == listed
        assert row["category_scores"] == dict(category_scores(score, KEYS, said))
        assert row["action"] is None and row["review"] is None  # no policy file
    # Micro-batches as the worker cuts them; the images were fetched and tiled.
    assert max(run.classifier.batches) == BATCH and sum(run.classifier.batches) > 240
    assert len(run.classifier.images_seen) == 30


def test_bad_lines_and_dead_letters_are_counted_with_line_numbers(run: Run) -> None:
    metrics = json.loads((run.out / "metrics.json").read_text())
    assert metrics["counts"] == {
        "lines": 246,
        "scored": 240,
        "skipped": 2,
        "dead_lettered": {"decode": 1, "validate": 1, "fetch": 1, "classify": 1},
    }
    assert [(s["line"], s["reason"][:8]) for s in metrics["skipped"]] == [
        (11, "not JSON"),
        (21, 'no "labe'),
    ]
    assert "labelled.jsonl:11: skipped: not JSON" in run.stderr
    assert 'labelled.jsonl:21: skipped: no "label" field' in run.stderr
    dead = {(d["line"], d["stage"], d["error_class"]) for d in metrics["dead_letters"]}
    assert dead == {
        (243, "validate", "SchemaError"),
        (244, "decode", "JsonTooDeep"),
        (245, "fetch", "ObjectNotFound"),
        (246, "classify", "TestFailure"),
    }
    assert "dead-lettered by stage: decode 1, validate 1, fetch 1, classify 1" in run.stdout
    assert "\r" not in run.stderr  # no progress bar off a terminal


def test_every_figure_equals_scikit_learn_on_scores_jsonl(run: Run) -> None:
    target = TARGET_FPR
    out = run.out
    rows = scores(out)
    metrics = json.loads((out / "metrics.json").read_text())
    y = [r["label"]["unsafe"] for r in rows]
    s = [r["unsafe_score"] for r in rows]
    p = [r["predicted_unsafe"] for r in rows]

    overall = metrics["overall"]
    tn, fp, fn, tp = confusion_matrix(y, p, labels=[False, True]).ravel()
    assert metrics["confusion_matrix"]["matrix"] == [[tn, fp], [fn, tp]]
    assert same(overall["precision"], precision_score(y, p))
    assert same(overall["recall"], recall_score(y, p))
    assert same(overall["f1"], f1_score(y, p))
    assert same(overall["fpr"], fp / (fp + tn))
    assert same(overall["auprc"], average_precision_score(y, s))
    assert same(overall["roc_auc"], roc_auc_score(y, s))

    counted = [r for r in rows if not r["label"]["unsafe"] or r["label"]["categories"]]
    keys = {k for r in counted for k in r["label"]["categories"] + r["categories"]}
    assert set(metrics["categories"]) == keys
    assert metrics["category_events"] == len(counted) < len(rows)
    for key, figures in metrics["categories"].items():
        yk = [key in r["label"]["categories"] for r in counted]
        pk = [key in r["categories"] for r in counted]
        tn, fp, fn, tp = confusion_matrix(yk, pk, labels=[False, True]).ravel()
        assert (figures["tp"], figures["fp"], figures["tn"], figures["fn"]) == (tp, fp, tn, fn)
        assert same(figures["precision"], precision_score(yk, pk, zero_division=NAN))
        assert same(figures["recall"], recall_score(yk, pk, zero_division=NAN))
        assert same(figures["f1"], f1_score(yk, pk, zero_division=NAN))
        assert same(figures["fpr"], fp / (fp + tn))
        sk = [r["category_scores"][key] for r in counted]
        assert same(figures["auprc"], average_precision_score(yk, sk))
        assert same(figures["roc_auc"], roc_auc_score(yk, sk))

    with (out / "thresholds.csv").open() as stream:
        grid = list(csv.DictReader(stream))
    assert [float(g["threshold"]) for g in grid] == sorted(set(s))
    for g in grid:
        flagged = [x >= float(g["threshold"]) for x in s]
        tn, fp, fn, tp = confusion_matrix(y, flagged, labels=[False, True]).ravel()
        assert [int(g[c]) for c in ("tp", "fp", "tn", "fn")] == [tp, fp, tn, fn]
        for column, metric in (("precision", precision_score), ("recall", recall_score)):
            assert same(
                float(g[column]) if g[column] else None, metric(y, flagged, zero_division=NAN)
            )
        assert same(float(g["f1"]) if g["f1"] else None, f1_score(y, flagged, zero_division=NAN))
        assert same(float(g["fpr"]), fp / (fp + tn))

    # The recommended threshold by brute force over every score of the set.
    def fpr_at(t: float) -> float:
        tn, fp, _, _ = confusion_matrix(y, [x >= t for x in s], labels=[False, True]).ravel()
        return fp / (fp + tn)

    best = min(t for t in set(s) if fpr_at(t) <= target)
    rec = metrics["recommended"]
    assert rec["threshold"] == best and rec["target_fpr"] == target
    assert fpr_at(best) <= target < fpr_at(max(t for t in set(s) if t < best))
    assert same(rec["recall"], recall_score(y, [x >= best for x in s]))
    assert same(rec["fpr"], fpr_at(best))
    labelled_keys = sorted(
        {k for r in rows for k in r["label"]["categories"]}, key=lambda k: int(k[1:])
    )
    assert list(rec["recall_by_category"]) == labelled_keys
    for key, recall in rec["recall_by_category"].items():
        members = [r for r in rows if key in r["label"]["categories"]]
        assert same(recall, sum(r["unsafe_score"] >= best for r in members) / len(members))


def test_the_report_is_one_self_contained_page(run: Run) -> None:
    out = run.out
    for name in ("pr_curve.png", "roc_curve.png", "score_histogram.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = (out / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(e) for e in embedded] == [
        (out / n).read_bytes() for n in ("pr_curve.png", "roc_curve.png", "score_histogram.png")
    ]
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    assert "unsafe (overall)" in page and "S10" in page
    assert "unsafe (overall)" in run.stdout
    assert f"recommended threshold for FPR <= {TARGET_FPR:g}: " in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "/nonexistent.jsonl", "--model", "m"], "no such input file"),
        (["--input", "{input}", "--model", "m", "--target-fpr", "1.5"], "--target-fpr"),
        (["--input", "{input}", "--model", "m", "--images-dir", "/nonexistent"], "no such images"),
        (["--input", "{input}"], "GUARDSTREAM_MODEL is not set"),
    ],
)
def test_start_up_errors_are_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("GUARDSTREAM_MODEL", raising=False)
    source = write_jsonl(tmp_path / "in.jsonl", [labelled("e", "x", unsafe=False)])
    code = main(["eval", *(a.replace("{input}", str(source)) for a in args)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
