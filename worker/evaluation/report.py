"""Write an evaluation's files into its output directory.

scores.jsonl     one line per scored event: label, unsafe_score, category scores,
                 predicted categories, action
metrics.json     ``summary.summarize``: figures overall and per category, the
                 confusion matrix, the recommended threshold, what was not scored
thresholds.csv   precision, recall, F1, FPR (and counts) over the thresholds grid
pr_curve.png, roc_curve.png, score_histogram.png, report.html
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from worker.evaluation.html import render_html
from worker.evaluation.metrics import ThresholdRow, threshold_rows
from worker.evaluation.plots import pr_curve_png, roc_curve_png, score_histogram_png
from worker.evaluation.summary import Evaluation, summarize
from worker.evaluation.types import ScoredEvent

THRESHOLD_COLUMNS = ("threshold", "tp", "fp", "tn", "fn", "precision", "recall", "f1", "fpr")


def write_report(evaluation: Evaluation, out: Path) -> dict[str, Any]:
    """Writes every file; returns the ``metrics.json`` document."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(evaluation)
    write_scores(evaluation.records, out / "scores.jsonl")
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_thresholds(threshold_rows(evaluation.records), out / "thresholds.csv")
    recommended = summary["recommended"]["threshold"]
    pictures = {
        name: draw(evaluation.records, evaluation.threshold, recommended)
        for name, draw in (
            ("pr_curve.png", pr_curve_png),
            ("roc_curve.png", roc_curve_png),
            ("score_histogram.png", score_histogram_png),
        )
    }
    for name, data in pictures.items():
        (out / name).write_bytes(data)
    (out / "report.html").write_text(render_html(summary, pictures), encoding="utf-8")
    return summary


def score_row(record: ScoredEvent) -> dict[str, Any]:
    return {
        "line": record.line,
        "event_id": record.event_id,
        "label": {"unsafe": record.label.unsafe, "categories": list(record.label.categories)},
        "unsafe_score": record.unsafe_score,
        "predicted_unsafe": record.predicted_unsafe,
        "category_scores": dict(record.category_scores),
        "categories": list(record.categories),
        "action": record.action,
        "would_action": record.would_action,
        "review": record.review,
    }


def write_scores(records: Sequence[ScoredEvent], path: Path) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for record in records:
            stream.write(json.dumps(score_row(record), ensure_ascii=False) + "\n")


def write_thresholds(rows: Sequence[ThresholdRow], path: Path) -> None:
    """Undefined figures (e.g. precision with nothing flagged) are empty cells."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(THRESHOLD_COLUMNS)
        for row in rows:
            values: Mapping[str, Any] = vars(row)
            writer.writerow(_cell(values[column]) for column in THRESHOLD_COLUMNS)


def _cell(value: object) -> object:
    # repr: the shortest text that reads back as the same float.
    return "" if value is None else repr(value) if isinstance(value, float) else value
