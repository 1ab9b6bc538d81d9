"""Labelled JSON Lines: good lines go to the decode stage byte for byte; bad ones are
reported with their line number and reason."""

from __future__ import annotations

import json

from eval_builders import labelled

from worker.evaluation.dataset import read_labelled
from worker.evaluation.types import Label, LabelledLine, SkippedLine


def test_a_good_line_keeps_its_bytes_and_its_label() -> None:
    value = json.dumps(labelled("e-1", "hi", unsafe=True, categories=("S10", "S1", "S1")))
    [item] = read_labelled([value.encode() + b"\n"])
    assert item == LabelledLine(1, value.encode(), Label(True, ("S1", "S10")))


def test_bad_lines_are_reported_with_their_line_numbers() -> None:
    good = json.dumps(labelled("e-1", "hi", unsafe=False)).encode()
    event = labelled("e-2", "hi", unsafe=False)
    lines = [
        good,  # 1
        b"",  # 2
        b"this is not json {",  # 3
        b"\xff\xfe",  # 4
        b"[1, 2]",  # 5
        json.dumps({k: v for k, v in event.items() if k != "label"}).encode(),  # 6
        json.dumps({**event, "label": {"unsafe": "yes"}}).encode(),  # 7
        json.dumps({**event, "label": {"unsafe": False, "categories": ["S1"]}}).encode(),  # 8
        json.dumps({**event, "label": {"unsafe": True, "categories": ["X1"]}}).encode(),  # 9
        json.dumps({**event, "label": {"unsafe": True, "extra": 1}}).encode(),  # 10
        b"[" * 5000 + b"]" * 5000,  # 11
        good,  # 12
    ]
    items = list(read_labelled(line + b"\n" for line in lines))
    assert [type(i).__name__ for i in items] == ["LabelledLine"] + ["SkippedLine"] * 10 + [
        "LabelledLine"
    ]
    skipped = {i.line: i.reason for i in items if isinstance(i, SkippedLine)}
    assert skipped[2] == "empty line"
    assert skipped[3].startswith("not JSON")
    assert skipped[4].startswith("not UTF-8")
    assert skipped[5] == "not a JSON object (a list)"
    assert skipped[6] == 'no "label" field'
    assert skipped[7].startswith("bad label: unsafe:")
    assert "a safe label lists no categories" in skipped[8]
    assert skipped[9].startswith("bad label: categories.0:")
    assert skipped[10].startswith("bad label: extra:")
    assert skipped[11].startswith("not JSON")
    assert [i.line for i in items if isinstance(i, LabelledLine)] == [1, 12]


def test_reasons_never_quote_the_content() -> None:
    secret = "canary-7f3a"
    [item] = read_labelled([f'{{"text": "{secret}", "label": {{"unsafe": "{secret}"}}}}'.encode()])
    assert isinstance(item, SkippedLine)
    assert secret not in item.reason
