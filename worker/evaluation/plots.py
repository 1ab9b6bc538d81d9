"""The three pictures of a report, as PNG bytes (matplotlib's Agg renderer, no pyplot).

Curves come from scikit-learn's ``precision_recall_curve`` / ``roc_curve`` over
``unsafe_score``; each marks the threshold in force and the recommended one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from worker.evaluation.metrics import figures
from worker.evaluation.types import ScoredEvent

_SIZE = (5.0, 4.0)  # inches; 100 dpi: 500 × 400 pixels, a few tens of KB each


def pr_curve_png(
    records: Sequence[ScoredEvent], threshold: float, recommended: float | None
) -> bytes:
    figure, axes = _figure("Precision-recall (unsafe)", "recall", "precision")
    true, score = _arrays(records)
    if _has_both_classes(true):
        precision, recall, _ = precision_recall_curve(true, score)
        axes.step(recall, precision, where="post", color="tab:blue", label="model")
        axes.axhline(true.mean(), color="grey", linestyle=":", label="chance (prevalence)")
        for t, color, marker, name in _marks(threshold, recommended):
            at = figures(true, score >= t)
            if at.precision is not None and at.recall is not None:
                axes.plot(at.recall, at.precision, marker, color=color, label=f"{name} {t:.3f}")
        axes.legend(loc="lower left", fontsize="small")
    else:
        _undefined(axes)
    return _png(figure)


def roc_curve_png(
    records: Sequence[ScoredEvent], threshold: float, recommended: float | None
) -> bytes:
    figure, axes = _figure("ROC (unsafe)", "false-positive rate", "true-positive rate (recall)")
    true, score = _arrays(records)
    if _has_both_classes(true):
        fpr, tpr, _ = roc_curve(true, score)
        axes.plot(fpr, tpr, color="tab:blue", label="model")
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
        for t, color, marker, name in _marks(threshold, recommended):
            at = figures(true, score >= t)
            if at.fpr is not None and at.recall is not None:
                axes.plot(at.fpr, at.recall, marker, color=color, label=f"{name} {t:.3f}")
        axes.legend(loc="lower right", fontsize="small")
    else:
        _undefined(axes)
    return _png(figure)


def score_histogram_png(
    records: Sequence[ScoredEvent], threshold: float, recommended: float | None
) -> bytes:
    figure, axes = _figure("unsafe_score by label", "unsafe_score", "events")
    true, score = _arrays(records)
    bins = [i / 40 for i in range(41)]
    axes.hist(score[~true], bins=bins, alpha=0.6, color="tab:blue", label="labelled safe")
    axes.hist(score[true], bins=bins, alpha=0.6, color="tab:orange", label="labelled unsafe")
    for t, color, _marker, name in _marks(threshold, recommended):
        axes.axvline(t, color=color, linestyle="--", label=f"{name} {t:.3f}")
    axes.set_ylim(bottom=0)
    axes.legend(loc="best", fontsize="small")
    return _png(figure)


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=_SIZE, dpi=100, layout="tight")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xlim(-0.02, 1.02)
    if "events" not in ylabel:
        axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    return figure, axes


def _arrays(records: Sequence[ScoredEvent]) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray([r.label.unsafe for r in records], dtype=bool)
    score = np.asarray([r.unsafe_score for r in records], dtype=float)
    return true, score


def _has_both_classes(true: np.ndarray) -> bool:
    return bool(true.any() and (~true).any())


def _marks(threshold: float, recommended: float | None) -> list[tuple[float, str, str, str]]:
    """(threshold, colour, marker, name) of the points to mark."""
    marks = [(threshold, "tab:red", "o", "threshold in force")]
    if recommended is not None:
        marks.append((recommended, "tab:green", "s", "recommended"))
    return marks


def _undefined(axes: Axes) -> None:
    axes.text(0.5, 0.5, "undefined: the set has one class only", ha="center", va="center")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
