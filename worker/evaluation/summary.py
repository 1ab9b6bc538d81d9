"""An evaluation's results → the ``metrics.json`` document and the model-card table (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from schemas.dead_letter import ErrorStage
from worker.evaluation.metrics import (
    MAX_GRID_POINTS,
    action_mix,
    category_records,
    overall_figures,
    per_category_figures,
    recommend_threshold,
)
from worker.evaluation.types import DeadLetteredEvent, ScoredEvent, SkippedLine

# Columns of the table, as in Meta's model card (plus the counts behind them).
COLUMNS = ("events", "positives", "precision", "recall", "f1", "fpr", "auprc", "roc_auc")
ACTIONS = ("allow", "review", "block")
# The stages an evaluation can dead-letter at (it publishes nothing).
EVAL_STAGES = tuple(s.value for s in ErrorStage if s is not ErrorStage.PUBLISH)
HEADINGS = ("", "events", "unsafe", "precision", "recall", "F1", "FPR", "AUPRC", "ROC AUC")


@dataclass(frozen=True)
class Evaluation:
    """What one run produced, and under which settings."""

    input: str
    models: Mapping[str, Mapping[str, str]]  # role ("vision", "text") → id, revision, ...
    threshold: float  # UNSAFE_THRESHOLD in force
    target_fpr: float
    lines: int
    records: Sequence[ScoredEvent]
    skipped: Sequence[SkippedLine] = ()
    dead_letters: Sequence[DeadLetteredEvent] = ()
    category_thresholds: Mapping[str, float] = field(default_factory=dict)
    policy: Mapping[str, Any] | None = None  # file, tenant (and its profile): actions given
    seconds: float = 0.0
    note: str | None = None


def summarize(evaluation: Evaluation) -> dict[str, Any]:
    """The ``metrics.json`` document."""
    records = evaluation.records
    overall = overall_figures(records)
    recommendation = recommend_threshold(records, evaluation.target_fpr)
    at = recommendation.figures
    stages = Counter(d.stage for d in evaluation.dead_letters)
    distinct = len({r.unsafe_score for r in records})
    counted = category_records(records)
    categories = per_category_figures(records, evaluation.category_thresholds)
    return {
        "input": evaluation.input,
        "models": {role: dict(info) for role, info in evaluation.models.items()},
        "note": evaluation.note,
        "threshold": evaluation.threshold,
        "category_thresholds": dict(evaluation.category_thresholds),
        "policy": dict(evaluation.policy) if evaluation.policy is not None else None,
        "counts": {
            "lines": evaluation.lines,
            "scored": len(records),
            "skipped": len(evaluation.skipped),
            "dead_lettered": {stage: stages.get(stage, 0) for stage in EVAL_STAGES},
        },
        "overall": asdict(overall),
        "confusion_matrix": {
            "labels": ["safe", "unsafe"],
            "rows": "labelled",
            "columns": "predicted",
            "matrix": [[overall.tn, overall.fp], [overall.fn, overall.tp]],
        },
        "categories": {key: asdict(figures) for key, figures in categories.items()},
        "category_events": len(counted),
        "category_events_excluded": len(records) - len(counted),
        "recommended": {
            "target_fpr": recommendation.target_fpr,
            "threshold": recommendation.threshold,
            "precision": at.precision if at else None,
            "recall": at.recall if at else None,
            "f1": at.f1 if at else None,
            "fpr": at.fpr if at else None,
            "recall_by_category": dict(recommendation.recall_by_category),
            "reason": recommendation.reason,
        },
        "thresholds_grid": f"{distinct} distinct scores"
        if distinct <= MAX_GRID_POINTS
        else f"{MAX_GRID_POINTS} evenly spaced points",
        "actions": action_mix(records) if evaluation.policy is not None else None,
        "skipped": [asdict(s) for s in evaluation.skipped],
        "dead_letters": [asdict(d) for d in evaluation.dead_letters],
        "seconds": round(evaluation.seconds, 3),
        "events_per_second": round(len(records) / evaluation.seconds, 2)
        if evaluation.seconds > 0
        else None,
    }


def table_rows(summary: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Rows of the model-card table: overall, then each category; '-' = undefined."""
    rows = [("unsafe (overall)", *_cells(summary["overall"]))]
    rows += [(key, *_cells(figures)) for key, figures in summary["categories"].items()]
    return rows


def _cells(figures: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(figures[c]) if c in ("events", "positives") else fmt(figures[c]) for c in COLUMNS
    )


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_text(summary: Mapping[str, Any], *, listed: int = 10) -> str:
    """The printed report: the table, the confusion matrix, the recommendation, the losses."""
    counts = summary["counts"]
    dead = {stage: n for stage, n in counts["dead_lettered"].items() if n}
    lines = [
        f"guardstream eval: {counts['scored']} of {counts['lines']} lines scored, "
        f"{counts['skipped']} skipped, {sum(dead.values())} dead-lettered; "
        f"threshold in force {summary['threshold']:g}",
        "",
    ]
    rows = [HEADINGS, *table_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS))]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    if summary["category_events_excluded"]:
        lines.append(
            f"(categories: {summary['category_events']} events; "
            f"{summary['category_events_excluded']} labelled unsafe without categories left out)"
        )
    (tn, fp), (fn, tp) = summary["confusion_matrix"]["matrix"]
    lines += [
        "",
        f"confusion matrix at {summary['threshold']:g}: TP {tp}  FP {fp}  TN {tn}  FN {fn}",
    ]
    rec = summary["recommended"]
    if rec["threshold"] is None:
        lines.append(
            f"recommended threshold for FPR <= {rec['target_fpr']:g}: none ({rec['reason']})"
        )
    else:
        lines.append(
            f"recommended threshold for FPR <= {rec['target_fpr']:g}: {rec['threshold']:.4f} "
            f"(recall {fmt(rec['recall'])}, precision {fmt(rec['precision'])}, "
            f"FPR {fmt(rec['fpr'])})"
        )
        if rec["recall_by_category"]:
            lines.append(
                "  recall by category there: "
                + ", ".join(f"{k} {fmt(v)}" for k, v in rec["recall_by_category"].items())
            )
    if summary.get("actions"):
        lines += ["", *format_actions(summary)]
    if dead:
        lines.append(
            "dead-lettered by stage: " + ", ".join(f"{stage} {n}" for stage, n in dead.items())
        )
        for item in summary["dead_letters"][:listed]:
            lines.append(
                f"  line {item['line']}: {item['stage']} {item['error_class']}: {item['message']}"
            )
    if counts["skipped"]:
        lines.append(f"skipped lines: {counts['skipped']}")
        for item in summary["skipped"][:listed]:
            lines.append(f"  line {item['line']}: {item['reason']}")
    hidden = max(len(summary["dead_letters"]), len(summary["skipped"])) - listed
    if hidden > 0:
        lines.append(f"  (all of them in metrics.json; {hidden} more not listed here)")
    if summary.get("note"):
        lines += ["", f"NOTE: {summary['note']}"]
    return "\n".join(lines)


def action_rows(summary: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The action mix as table rows (heading first): enforce action by label."""
    mix = summary["actions"]["by_label"]
    return [
        ("", *ACTIONS),
        *((f"labelled {label}", *(str(mix[label][a]) for a in ACTIONS)) for label in mix),
    ]


def actions_text(summary: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(the heading, the notes) that go with the action table."""
    actions = summary["actions"]
    policy = summary["policy"]
    who = (
        f"tenant {policy['tenant']} (profile {policy['profile']})"
        if policy.get("tenant") is not None
        else "each event's own tenant profile"
    )
    review = actions["review"]
    notes = [
        f"review lane: {review['band']} events by the review band "
        f"({100 * actions['review_share']:.1f}% of scored events), {review['audit']} audit "
        f"samples ({100 * actions['audit_share']:.1f}%)"
    ]
    if actions["observe"]:
        notes.append("observe mode: the action is allow; the counts are what enforce would do")
    return f"actions under {policy['file']}, {who}:", notes


def format_actions(summary: Mapping[str, Any]) -> list[str]:
    heading, notes = actions_text(summary)
    rows = action_rows(summary)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [heading]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    return lines + notes
