"""``report.html``: one self-contained page (no external files): the table, the confusion
matrix, the recommendation and the three pictures as base64 data URIs."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from worker.evaluation.summary import HEADINGS, action_rows, actions_text, fmt, table_rows

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 72em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.75em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { background: #fff3cd; border: 1px solid #e0c060; padding: 0.75em; }
.pictures img { margin: 0.5em 1em 0.5em 0; border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def render_html(summary: Mapping[str, Any], pictures: Mapping[str, bytes]) -> str:
    counts = summary["counts"]
    dead = {stage: n for stage, n in counts["dead_lettered"].items() if n}
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>guardstream eval</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>guardstream eval</h1>",
    ]
    if summary.get("note"):
        parts.append(f'<p class="note"><strong>Note:</strong> {escape(summary["note"])}</p>')
    models = ", ".join(
        f"{escape(role)}: <code>{escape(str(info.get('id')))}</code>"
        for role, info in summary["models"].items()
    )
    parts.append(
        f"<p>Input <code>{escape(summary['input'])}</code>: {counts['lines']} lines, "
        f"{counts['scored']} scored, {counts['skipped']} skipped, "
        f"{sum(dead.values())} dead-lettered. Models: {models}. "
        f"Threshold in force: {summary['threshold']:g}.</p>"
    )
    parts.append(_table([HEADINGS, *table_rows(summary)]))
    (tn, fp), (fn, tp) = summary["confusion_matrix"]["matrix"]
    parts.append(f"<h2>Confusion matrix at {summary['threshold']:g}</h2>")
    parts.append(
        _table(
            [
                ("labelled \\ predicted", "safe", "unsafe"),
                ("safe", str(tn), str(fp)),
                ("unsafe", str(fn), str(tp)),
            ]
        )
    )
    rec = summary["recommended"]
    parts.append(f"<h2>Recommended threshold for FPR ≤ {rec['target_fpr']:g}</h2>")
    if rec["threshold"] is None:
        parts.append(f"<p>None: {escape(str(rec['reason']))}.</p>")
    else:
        parts.append(
            f"<p><strong>{rec['threshold']:.4f}</strong>: recall {fmt(rec['recall'])}, "
            f"precision {fmt(rec['precision'])}, FPR {fmt(rec['fpr'])}.</p>"
        )
        if rec["recall_by_category"]:
            parts.append(
                _table(
                    [
                        ("category", "recall there"),
                        *((k, fmt(v)) for k, v in rec["recall_by_category"].items()),
                    ]
                )
            )
    if summary.get("actions"):
        heading, notes = actions_text(summary)
        parts.append(f"<h2>Actions</h2><p>{escape(heading)}</p>")
        parts.append(_table(action_rows(summary)))
        parts += [f"<p>{escape(note)}.</p>" for note in notes]
    parts.append('<h2>Curves</h2><div class="pictures">')
    for name, data in pictures.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(f'<img alt="{escape(name)}" src="data:image/png;base64,{encoded}">')
    parts.append("</div>")
    if dead or counts["skipped"]:
        parts.append("<h2>Not scored</h2>")
        rows = [("line", "what", "why")]
        rows += [
            (str(d["line"]), f"dead letter ({d['stage']})", f"{d['error_class']}: {d['message']}")
            for d in summary["dead_letters"]
        ]
        rows += [(str(s["line"]), "skipped", s["reason"]) for s in summary["skipped"]]
        parts.append(_table(rows))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(rows: Sequence[Sequence[str]]) -> str:
    head, *body = rows
    lines = ["<table>", "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in head) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body]
    lines.append("</table>")
    return "\n".join(lines)
