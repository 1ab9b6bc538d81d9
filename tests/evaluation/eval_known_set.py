"""The known-score set and one ``guardstream eval`` run on it, for the command's tests."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eval_builders import labelled, png_bytes, write_jsonl
from eval_doubles import KnownScoreClassifier, known_score_models

import worker.evaluation.run as eval_run
from worker.cli import main
from worker.prompt.categories import DEFAULT_CATEGORIES

CATEGORIES = ("S1", "S2", "S10")
KEYS = tuple(c.key for c in DEFAULT_CATEGORIES)
BATCH = 8
NAN = float("nan")


def known_set(
    tmp_path: Path,
) -> tuple[Path, Path, dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]]]:
    """240 labelled events with known scores (ties included), 1 in 8 with an image, and
    one line of each kind of trouble. Returns (input, images dir, event → (score, listed))."""
    rng = random.Random(13)
    images = tmp_path / "images"
    (images / "pics").mkdir(parents=True)
    digests = {}
    for name, colour in (("red", (200, 0, 0)), ("green", (0, 200, 0)), ("blue", (0, 0, 200))):
        data = png_bytes(colour)
        (images / "pics" / f"{name}.png").write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    lines: list[Any] = []
    expected: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {}
    for i in range(240):
        unsafe = rng.random() < 0.45
        score = round(min(1.0, max(0.0, rng.gauss(0.62 if unsafe else 0.38, 0.2))), 2)
        label_cats = tuple(sorted(rng.sample(CATEGORIES, rng.randint(0, 2)))) if unsafe else ()
        said = [k for k in CATEGORIES if (k in label_cats) != (rng.random() < 0.15)]
        listed = tuple(said) if score >= 0.5 else ()
        marker = f"[score={score}" + (f" cats={','.join(said)}]" if said else "]")
        extra: dict[str, Any] = {}
        if i % 8 == 0:
            extra["images"] = (f"s3://pics/{('red', 'green', 'blue')[i % 3]}.png",)
        lines.append(
            labelled(
                f"e{i}", f"message {i} {marker}", unsafe=unsafe, categories=label_cats, **extra
            )
        )
        expected[f"e{i}"] = (score, listed, tuple(said))
    names = ("red", "green", "blue")
    lines[40]["messages"][0]["content"][0]["sha256"] = digests[names[40 % 3]]  # checked: right
    lines[10:10] = [b"this is not json {"]  # line 11
    lines[20:20] = [json.dumps({"event_id": "no-label", "messages": []})]  # line 21
    lines.append(labelled("v1", "x", unsafe=False, classify="nonsense"))  # validate
    deep = labelled("d1", "[score=0.1]", unsafe=False)
    deep["deep"] = json.loads("[" * 70 + "]" * 70)
    lines.append(deep)  # decode: deeper than the worker accepts
    lines.append(labelled("f1", "[score=0.9]", unsafe=True, images=("s3://pics/missing.png",)))
    lines.append(labelled("c1", "[fail]", unsafe=True))  # classify
    return write_jsonl(tmp_path / "labelled.jsonl", lines), images, expected


@dataclass(frozen=True)
class Run:
    code: int
    out: Path
    stdout: str
    stderr: str
    classifier: KnownScoreClassifier
    expected: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]]


def run_command(tmp_path: Path, *args: str) -> Run:
    """``guardstream eval`` on the known set with the known-score classifier."""
    import structlog

    source, images, expected = known_set(tmp_path)
    out = tmp_path / "out"
    double = KnownScoreClassifier()
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = structlog.get_config()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eval_run, "load_models", lambda settings: known_score_models(double))
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(
                [
                    "eval",
                    "--input",
                    str(source),
                    "--images-dir",
                    str(images),
                    "--out",
                    str(out),
                    "--model",
                    "known-scores",
                    "--max-batch-size",
                    str(BATCH),
                    *args,
                ]
            )
    structlog.configure(**saved)
    return Run(code, out, stdout.getvalue(), stderr.getvalue(), double, expected)


def scores(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]


def same(value: float | None, expected: float) -> bool:
    return (value is None and math.isnan(expected)) or value == pytest.approx(expected, abs=1e-12)
