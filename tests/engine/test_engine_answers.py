"""Score definition and robust answer parsing."""

from __future__ import annotations

import math

import pytest

from worker.engine.answers import (
    category_scores,
    parse_answer,
    parse_categories,
    unsafe_probability,
)
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


def test_category_scores_renormalise_over_the_active_keys() -> None:
    """Policy S1, S3, S10: S2 (and every other number) carries no mass, however likely."""
    logits = {f"S{n}": -5.0 for n in range(1, 100)}
    logits.update({"S1": 1.0, "S2": 50.0, "S3": 2.0, "S10": 0.5})
    scores = category_scores(0.8, logits, ("S10", "S1", "S3"))
    assert [key for key, _ in scores] == ["S1", "S3", "S10"]  # by number, not policy order
    total = math.exp(1.0) + math.exp(2.0) + math.exp(0.5)
    expected = {"S1": math.exp(1.0), "S3": math.exp(2.0), "S10": math.exp(0.5)}
    for key, score in scores:
        assert score == pytest.approx(0.8 * expected[key] / total, rel=1e-12)
    assert math.fsum(score for _, score in scores) == pytest.approx(0.8, abs=1e-15)


def test_category_scores_edge_cases() -> None:
    # One active key takes all of P(unsafe); huge logits do not overflow.
    assert category_scores(0.3, {"S7": 1e4}, ["S7"]) == (("S7", 0.3),)
    big = category_scores(1.0, {"S1": 1e4, "S2": 1e4 - 1}, ["S1", "S2"])
    assert big[0][1] == pytest.approx(1 / (1 + math.exp(-1)))
    # Equal logits split evenly; a safe prompt's scores are small but still sum to it.
    even = category_scores(0.01, {"S4": 0.0, "S5": 0.0}, ["S5", "S4", "S5"])
    assert even == (("S4", 0.005), ("S5", 0.005))
    assert category_scores(0.5, {"S1": 0.0}, []) == ()


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
