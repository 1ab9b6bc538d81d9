"""The shipped example set (examples/eval): enough labelled conversations, every image
it names is there (with the right sha256 where one is given), small on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from worker.evaluation.dataset import read_labelled
from worker.evaluation.types import LabelledLine, SkippedLine
from worker.images.uri import parse_s3_uri

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "eval"


def test_the_example_set() -> None:
    with (EXAMPLES / "labelled.jsonl").open("rb") as stream:
        items = list(read_labelled(stream))
    good = [i for i in items if isinstance(i, LabelledLine)]
    assert len(good) >= 60
    assert sum(i.label.unsafe for i in good) >= 25 and sum(not i.label.unsafe for i in good) >= 25
    assert [i.line for i in items if isinstance(i, SkippedLine)] == [len(items)]  # on purpose
    missing = []
    for item in good:
        for message in json.loads(item.value)["messages"]:
            for content in message["content"]:
                if content["type"] != "image":
                    continue
                location = parse_s3_uri(content["s3_uri"])
                path = EXAMPLES / "images" / location.bucket / location.key
                if not path.is_file():
                    missing.append(location.key)
                elif "sha256" in content:
                    assert hashlib.sha256(path.read_bytes()).hexdigest() == content["sha256"]
    assert missing == ["eval/missing.png"]  # on purpose: a fetch dead letter
    size = sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file())
    assert size < 1_000_000
