"""``guardstream bench hashbank`` smoke test: the lines' shape, exactness and recall,
never timings."""

from __future__ import annotations

import json

import pytest

from worker.cli import main


def test_bench_hashbank_lines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "hashbank", "--sizes", "2000,20000", "--queries", "200"]
    argv += ["--baseline-seconds", "0.2", "--hash-images", "1"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("size") for line in lines] == [2000, 20000, None]
    for line in lines[:2]:  # 2,000: scanned; 20,000: the multi-index tables
        assert line["exact"] is True and line["recall"] == 1.0
        assert line["random_matched"] == 0 and line["planted_queries"] == 150
        assert line["guardstream"] > 0 and line["baseline"] > 0 and line["ratio"] > 0
    hashing = lines[2]
    assert hashing["part"] == "hashing"
    assert set(hashing["images"]) == {"4000x3000", "1024x768"}
    assert all(v["hash_ms"] > 0 and v["decode_ms"] > 0 for v in hashing["images"].values())
