"""The figures of an evaluation, computed by scikit-learn (pure functions).

Definitions (the README's "Evaluating on your own data" repeats them):
- positive = labelled unsafe; predicted = the verdict says unsafe (the score passed the
  threshold in force); precision, recall, F1 and the confusion matrix from those;
  FPR = FP / (FP + TN).
- AUPRC = ``average_precision_score`` (the step-wise area under the precision-recall
  curve, no interpolation); ROC AUC = ``roc_auc_score``; both over ``unsafe_score``.
- A figure that is undefined on the set (e.g. precision with nothing predicted unsafe,
  AUPRC without positives) is None, never a made-up 0.
- Per category K: over the events whose label is safe or lists categories (an unsafe
  label without categories says nothing about K); positive = K in the label; predicted =
  K listed in the verdict, or K's category score ≥ K's threshold where one is set;
  curves over K's category score (0 where K was not in the event's policy). Categories
  in no label and no prediction are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from schemas.conversation import category_number
from worker.evaluation.types import ScoredEvent

# Above this many distinct scores the thresholds grid is 0.000, 0.001, ..., 1.000.
MAX_GRID_POINTS = 1001
# Events × thresholds counted per scikit-learn call (bounds the boolean matrix's memory).
_GRID_CELLS = 4_000_000


@dataclass(frozen=True)
class Figures:
    """Binary classification figures of one task (overall, or one category)."""

    events: int
    positives: int
    negatives: int
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    fpr: float | None
    auprc: float | None
    roc_auc: float | None


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    fpr: float | None


@dataclass(frozen=True)
class Recommendation:
    """The lowest unsafe threshold whose FPR ≤ the target, and what it catches there.

    ``threshold`` is None when no threshold at or below the highest score reaches the
    target (``reason`` says why); ``recall_by_category`` is, per labelled category, the
    share of the events labelled with it whose score reaches the threshold.
    """

    target_fpr: float
    threshold: float | None
    figures: Figures | None
    recall_by_category: Mapping[str, float | None]
    reason: str | None = None


def figures(y_true: ArrayLike, y_pred: ArrayLike, y_score: ArrayLike | None = None) -> Figures:
    """Precision, recall, F1, FPR, confusion matrix; AUPRC and ROC AUC when scores are given."""
    true = np.asarray(y_true, dtype=bool)
    pred = np.asarray(y_pred, dtype=bool)
    if true.size == 0:
        return Figures(0, 0, 0, 0, 0, 0, 0, None, None, None, None, None, None)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(true, pred, labels=[False, True]).ravel())
    precision, recall, f1, _ = precision_recall_fscore_support(
        true, pred, average="binary", pos_label=True, zero_division=np.nan
    )
    both_classes = 0 < int(true.sum()) < true.size
    auprc = roc_auc = None
    if y_score is not None and both_classes:
        score = np.asarray(y_score, dtype=float)
        auprc = float(average_precision_score(true, score))
        roc_auc = float(roc_auc_score(true, score))
    return Figures(
        events=int(true.size),
        positives=tp + fn,
        negatives=fp + tn,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        precision=_defined(precision),
        recall=_defined(recall),
        f1=_defined(f1),
        fpr=fp / (fp + tn) if fp + tn else None,
        auprc=auprc,
        roc_auc=roc_auc,
    )


def overall_figures(records: Sequence[ScoredEvent]) -> Figures:
    """Unsafe vs safe at the threshold in force (the verdicts as published)."""
    return figures(
        [r.label.unsafe for r in records],
        [r.predicted_unsafe for r in records],
        [r.unsafe_score for r in records],
    )


def category_records(records: Sequence[ScoredEvent]) -> list[ScoredEvent]:
    """The events that count for per-category figures: safe, or unsafe with categories."""
    return [r for r in records if not r.label.unsafe or r.label.categories]


def category_keys(records: Sequence[ScoredEvent], thresholds: Mapping[str, float]) -> list[str]:
    """Categories in some label or some prediction, by number."""
    keys = {k for r in records for k in r.label.categories}
    keys |= {k for r in records for k in r.categories}
    keys |= {k for r in records for k in thresholds if _passes(r, k, thresholds)}
    return sorted(keys, key=category_number)


def category_predicted(record: ScoredEvent, key: str, thresholds: Mapping[str, float]) -> bool:
    """K counts as predicted when the verdict lists it, or its score passes its threshold."""
    return key in record.categories or _passes(record, key, thresholds)


def _passes(record: ScoredEvent, key: str, thresholds: Mapping[str, float]) -> bool:
    return (
        key in thresholds
        and key in record.category_scores
        and (record.category_scores[key] >= thresholds[key])
    )


def per_category_figures(
    records: Sequence[ScoredEvent], thresholds: Mapping[str, float] | None = None
) -> dict[str, Figures]:
    thresholds = thresholds or {}
    counted = category_records(records)
    result = {}
    for key in category_keys(counted, thresholds):
        # Curves need category scores on every event (the reference path has none); a key
        # absent from an event's scores was not in its policy: the model could not name it.
        scored = all(r.category_scores for r in counted)
        result[key] = figures(
            [key in r.label.categories for r in counted],
            [category_predicted(r, key, thresholds) for r in counted],
            [r.category_scores.get(key, 0.0) for r in counted] if scored else None,
        )
    return result


def threshold_grid(scores: ArrayLike) -> np.ndarray:
    """Every distinct score, or 1,001 evenly spaced points when there are more."""
    distinct = np.unique(np.asarray(scores, dtype=float))
    if distinct.size <= MAX_GRID_POINTS:
        return distinct
    return np.linspace(0.0, 1.0, MAX_GRID_POINTS)


def threshold_rows(records: Sequence[ScoredEvent]) -> list[ThresholdRow]:
    """Figures of the rule ``unsafe_score >= t`` for each ``t`` of the grid.

    One scikit-learn ``multilabel_confusion_matrix`` call counts many thresholds at once
    (a column per threshold); the rates follow from the counts by their definitions
    (the tests compare them with ``precision_score`` & co. at every threshold).
    """
    true = np.asarray([r.label.unsafe for r in records], dtype=bool)
    score = np.asarray([r.unsafe_score for r in records], dtype=float)
    grid = threshold_grid(score)
    step = max(1, _GRID_CELLS // max(true.size, 1))
    rows = []
    for start in range(0, grid.size, step):
        chunk = grid[start : start + step]
        flagged = score[:, None] >= chunk[None, :]
        matrices = multilabel_confusion_matrix(
            np.broadcast_to(true[:, None], flagged.shape), flagged
        )
        for t, ((tn, fp), (fn, tp)) in zip(chunk, matrices.tolist(), strict=True):
            rows.append(
                ThresholdRow(
                    threshold=float(t),
                    tp=tp,
                    fp=fp,
                    tn=tn,
                    fn=fn,
                    precision=tp / (tp + fp) if tp + fp else None,
                    recall=tp / (tp + fn) if tp + fn else None,
                    f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
                    fpr=fp / (fp + tn) if fp + tn else None,
                )
            )
    return rows


def recommend_threshold(records: Sequence[ScoredEvent], target_fpr: float) -> Recommendation:
    """The lowest threshold ``t`` (a score of the set) with FPR(score >= t) ≤ ``target_fpr``.

    Lower thresholds only add false positives, so it is also the threshold with the
    highest recall among those meeting the target.
    """
    true = np.asarray([r.label.unsafe for r in records], dtype=bool)
    score = np.asarray([r.unsafe_score for r in records], dtype=float)
    if not (~true).any():
        return Recommendation(
            target_fpr, None, None, {}, "no event is labelled safe: FPR is undefined"
        )
    if not true.any():
        return Recommendation(target_fpr, None, None, {}, "no event is labelled unsafe")
    # roc_curve: thresholds decrease (the first is +inf), FPR increases along them.
    fpr, _, thresholds = roc_curve(true, score, drop_intermediate=False)
    meets = np.flatnonzero((fpr <= target_fpr) & np.isfinite(thresholds))
    if meets.size == 0:
        return Recommendation(
            target_fpr,
            None,
            None,
            {},
            f"even the highest score flags safe events at FPR > {target_fpr:g}",
        )
    threshold = float(thresholds[meets[-1]])
    flagged = score >= threshold
    by_category = {}
    for key in sorted({k for r in records for k in r.label.categories}, key=category_number):
        members = [i for i, r in enumerate(records) if key in r.label.categories]
        by_category[key] = figures([True] * len(members), flagged[members]).recall
    return Recommendation(target_fpr, threshold, figures(true, flagged, score), by_category)


def action_mix(records: Sequence[ScoredEvent]) -> dict[str, Any]:
    """The policy's actions by label, and the share sent to people.

    Counts the enforce action: in observe mode the action is always ``allow`` and
    ``would_action`` says what enforce would have done. ``review_share``: the share of
    scored events the review band sends to people (action ``review``); ``audit_share``:
    the share the audit sample adds (allowed events also sent to review).
    """
    by_label = {
        label: dict.fromkeys(("allow", "review", "block"), 0) for label in ("safe", "unsafe")
    }
    reviews = {"band": 0, "audit": 0}
    for record in records:
        action = record.would_action or record.action
        if action is not None:
            by_label["unsafe" if record.label.unsafe else "safe"][action] += 1
        if record.review is not None:
            reviews[record.review] += 1
    total = len(records)
    return {
        "by_label": by_label,
        "observe": any(record.would_action is not None for record in records),
        "review": reviews,
        "review_share": reviews["band"] / total if total else 0.0,
        "audit_share": reviews["audit"] / total if total else 0.0,
    }


def _defined(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
