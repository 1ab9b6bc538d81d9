"""Score definition and robust answer parsing."""

from __future__ import annotations

import math

import pytest

from worker.engine.answers import parse_answer, parse_categories, unsafe_probability
from worker.engine.exceptions import UnparseableOutput

ACTIVE = tuple(f"S{i}" for i in range(1, 14))


def test_unsafe_probability_is_a_stable_sigmoid() -> None:
    assert unsafe_probability(0.0, 0.0) == 0.5
    assert unsafe_probability(1.0, 3.0) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert unsafe_probability(0.0, 1000.0) == 1.0
    assert unsafe_probability(1000.0, 0.0) == 0.0
    # softmax over the two tokens
    safe, unsafe = 2.5, 1.25
    softmax = math.exp(unsafe) / (math.exp(safe) + math.exp(unsafe))
    assert unsafe_probability(safe, unsafe) == pytest.approx(softmax)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unsafe\nS1", ("S1",)),
        ("unsafe\nS10,S1", ("S1", "S10")),
        ("unsafe\nS2, S2 ,S13", ("S2", "S13")),
        ("unsafe\nS14", ()),  # not in the policy
        ("unsafe\nS01,S100,S0,XS3,S3a", ()),
        ("unsafe\nS3;S4 S5", ("S3", "S4", "S5")),
        ("unsafe\n", ()),
        ("unsafe", ()),
    ],
)
def test_parse_categories(text: str, expected: tuple[str, ...]) -> None:
    assert parse_categories(text, ACTIVE) == expected


def test_parse_categories_keeps_only_active_keys() -> None:
    assert parse_categories("unsafe\nS1,S7,S9", ("S1", "S7")) == ("S1", "S7")


@pytest.mark.parametrize(
    ("text", "unsafe", "categories"),
    [
        ("safe", False, ()),
        ("\n\nsafe", False, ()),
        ("  safe  \n", False, ()),
        ("\n\nunsafe\nS1,S10", True, ("S1", "S10")),
        ("unsafe\n\nS5", True, ("S5",)),
        ("safe\nS1", False, ()),
    ],
)
def test_parse_answer(text: str, unsafe: bool, categories: tuple[str, ...]) -> None:
    assert parse_answer(text, ACTIVE) == (unsafe, categories)


@pytest.mark.parametrize("text", ["", "   ", "Safe", "unsafeS1", "I cannot help", "maybe\nsafe"])
def test_unparseable_answers(text: str) -> None:
    with pytest.raises(UnparseableOutput):
        parse_answer(text, ACTIVE)
