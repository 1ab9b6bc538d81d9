"""The figures against values computed by hand on a 10-row set.

row  label            score  verdict (≥ 0.5)  verdict categories
 1   unsafe S1         0.95  unsafe           S1
 2   unsafe S1,S10     0.85  unsafe           S1
 3   safe              0.80  unsafe           S10
 4   unsafe S10        0.70  unsafe           S10
 5   safe              0.60  unsafe           -
 6   unsafe S1         0.45  safe             -
 7   safe              0.40  safe             -
 8   safe              0.30  safe             -
 9   unsafe (no cat.)  0.20  safe             -
10   safe              0.10  safe             -
"""

from __future__ import annotations

import pytest

from worker.evaluation.metrics import (
    figures,
    overall_figures,
    per_category_figures,
    recommend_threshold,
    threshold_rows,
)
from worker.evaluation.types import Label, ScoredEvent

ROWS = [
    (("S1",), 0.95, ("S1",)),
    (("S1", "S10"), 0.85, ("S1",)),
    (None, 0.80, ("S10",)),
    (("S10",), 0.70, ("S10",)),
    (None, 0.60, ()),
    (("S1",), 0.45, ()),
    (None, 0.40, ()),
    (None, 0.30, ()),
    ((), 0.20, ()),
    (None, 0.10, ()),
]


def record(
    index: int,
    labelled: tuple[str, ...] | None,
    score: float,
    listed: tuple[str, ...],
    **extra: object,
) -> ScoredEvent:
    return ScoredEvent(
        line=index + 1,
        event_id=f"e{index + 1}",
        label=Label(labelled is not None, labelled or ()),
        unsafe_score=score,
        predicted_unsafe=score >= 0.5,
        categories=listed,
        **extra,
    )


RECORDS = [record(i, *row) for i, row in enumerate(ROWS)]


def test_overall_figures_by_hand() -> None:
    f = overall_figures(RECORDS)
    assert (f.tp, f.fp, f.tn, f.fn) == (3, 2, 3, 2)
    assert (f.events, f.positives, f.negatives) == (10, 5, 5)
    assert f.precision == pytest.approx(3 / 5)
    assert f.recall == pytest.approx(3 / 5)
    assert f.f1 == pytest.approx(3 / 5)
    assert f.fpr == pytest.approx(2 / 5)
    # AP = Σ (R_n - R_n-1) P_n at each positive, by rank: 1/1, 2/2, 3/4, 4/6, 5/9.
    assert f.auprc == pytest.approx((1 + 1 + 3 / 4 + 4 / 6 + 5 / 9) / 5)
    # Pairs (unsafe, safe) ranked right: 5 + 5 + 4 + 3 + 1 of 25.
    assert f.roc_auc == pytest.approx(18 / 25)


def test_per_category_figures_by_hand() -> None:
    result = per_category_figures(RECORDS)
    assert list(result) == ["S1", "S10"]
    s1, s10 = result["S1"], result["S10"]
    # Row 9 (unsafe, no categories) says nothing about a category: 9 events count.
    assert s1.events == s10.events == 9
    assert (s1.tp, s1.fp, s1.tn, s1.fn) == (2, 0, 6, 1)
    assert (s1.precision, s1.recall, s1.f1, s1.fpr) == pytest.approx((1.0, 2 / 3, 0.8, 0.0))
    assert (s10.tp, s10.fp, s10.tn, s10.fn) == (1, 1, 6, 1)
    assert (s10.precision, s10.recall, s10.f1, s10.fpr) == pytest.approx((0.5, 0.5, 0.5, 1 / 7))
    # No category scores on these verdicts: no curves per category.
    assert s1.auprc is None and s1.roc_auc is None


def test_a_category_threshold_counts_where_category_scores_exist() -> None:
    scores = {"S1": 0.3, "S10": 0.05}
    records = [*RECORDS[:4], record(4, None, 0.60, (), category_scores=scores), *RECORDS[5:]]
    assert per_category_figures(records)["S1"].fp == 0
    with_threshold = per_category_figures(records, {"S1": 0.25, "S10": 0.25})
    assert with_threshold["S1"].fp == 1  # row 5: S1 score 0.3 >= 0.25
    assert with_threshold["S10"].fp == 1  # unchanged: 0.05 < 0.25; row 3 is listed
    assert "S2" not in per_category_figures(records, {"S2": 0.1})  # no score for S2
    # Curves need category scores on every event: only row 5 has them here.
    assert with_threshold["S1"].auprc is None


def test_recommended_threshold_by_hand() -> None:
    # FPR ≤ 0.2 allows one of the 5 safe events: thresholds 0.80 and 0.70 flag row 3.
    at_20 = recommend_threshold(RECORDS, 0.2)
    assert at_20.threshold == 0.70
    assert at_20.figures is not None
    assert (at_20.figures.recall, at_20.figures.precision, at_20.figures.fpr) == pytest.approx(
        (3 / 5, 3 / 4, 1 / 5)
    )
    # Recall per labelled category there (flagged: rows 1-4): S1 rows 1, 2, 6; S10 rows 2, 4.
    assert at_20.recall_by_category == pytest.approx({"S1": 2 / 3, "S10": 1.0})
    for target in (0.0, 0.05):
        strict = recommend_threshold(RECORDS, target)
        assert strict.threshold == 0.85
        assert strict.figures is not None and strict.figures.recall == pytest.approx(2 / 5)
    assert recommend_threshold(RECORDS, 0.99).threshold == 0.20  # the lowest unsafe score


def test_no_recommendation_when_the_top_score_is_a_safe_event() -> None:
    records = [record(0, None, 0.9, ()), record(1, ("S1",), 0.8, ()), record(2, None, 0.1, ())]
    result = recommend_threshold(records, 0.1)
    assert result.threshold is None and result.reason


def test_thresholds_grid_by_hand() -> None:
    rows = {row.threshold: row for row in threshold_rows(RECORDS)}
    assert sorted(rows) == sorted(score for _, score, _ in ROWS)  # every distinct score
    row = rows[0.70]
    assert (row.tp, row.fp, row.tn, row.fn) == (3, 1, 4, 2)
    assert (row.precision, row.recall, row.f1, row.fpr) == pytest.approx(
        (3 / 4, 3 / 5, 2 / 3, 1 / 5)
    )
    assert rows[0.10].recall == 1.0 and rows[0.10].fpr == 1.0


def test_grid_of_1001_points_above_1001_distinct_scores() -> None:
    records = [record(i, ("S1",) if i % 2 else None, i / 2000, ()) for i in range(1500)]
    grid = [row.threshold for row in threshold_rows(records)]
    assert len(grid) == 1001 and grid[0] == 0.0 and grid[-1] == 1.0
    assert grid[500] == pytest.approx(0.5)


def test_undefined_figures_are_none() -> None:
    only_safe = figures([False, False], [False, False], [0.1, 0.2])
    assert only_safe.precision is None and only_safe.recall is None
    assert only_safe.auprc is None and only_safe.roc_auc is None
    assert only_safe.fpr == 0.0
    empty = figures([], [], [])
    assert empty.events == 0 and empty.precision is None and empty.fpr is None
    assert recommend_threshold([record(0, None, 0.3, ())], 0.05).threshold is None


def test_category_curves_count_a_key_outside_an_event_s_policy_as_score_0() -> None:
    scores = [{"S1": 0.9, "S10": 0.0}, {"S1": 0.7, "S10": 0.1}, {"S10": 0.2}, {"S1": 0.1}]
    labels = [("S1",), ("S1", "S10"), None, None]
    records = [
        record(i, label, 0.5, (), category_scores=s)
        for i, (label, s) in enumerate(zip(labels, scores, strict=True))
    ]
    s1 = per_category_figures(records)["S1"]
    # S1 scores 0.9, 0.7 (positives) vs 0.0 (not in row 3's policy), 0.1: perfectly ranked.
    assert s1.auprc == pytest.approx(1.0) and s1.roc_auc == pytest.approx(1.0)
    s10 = per_category_figures(records)["S10"]
    # S10 scores: 0.0, 0.1 (positive), 0.2, 0.0 (absent): the positive ranks second.
    assert s10.roc_auc == pytest.approx(2 / 3) and s10.auprc == pytest.approx(1 / 2)
