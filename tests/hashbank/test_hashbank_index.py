"""The multi-index-hashing PDQ index answers exactly what a linear scan answers."""

from __future__ import annotations

import numpy as np
import pytest

from worker.hashbank.exceptions import InvalidHash
from worker.hashbank.index import PdqIndex, linear_scan, pdq_codes


def random_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def flip(code: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = code.copy()
    for bit in rng.choice(256, bits, replace=False):
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def hexes(codes: np.ndarray) -> list[str]:
    return [row.tobytes().hex() for row in codes]


def queries(
    rng: np.random.Generator, codes: np.ndarray, n: int, max_distance: int = 31
) -> list[tuple[np.ndarray, int | None]]:
    """Near-duplicates of indexed hashes at distances around the threshold (with the
    distance planted), and random hashes (None)."""
    planted = rng.integers(0, max_distance + 17, n)
    out: list[tuple[np.ndarray, int | None]] = [
        (flip(codes[rng.integers(len(codes))], int(d), rng), int(d)) for d in planted
    ]
    return out + [(code, None) for code in random_codes(rng, n // 4)]


def check_against_scan(
    index: PdqIndex, codes: np.ndarray, alive: np.ndarray, qs: list[tuple[np.ndarray, int | None]]
) -> int:
    """Every answer equals the scan's; returns how many queries found a hash."""
    live = np.flatnonzero(alive)
    words = codes[live].view(np.uint64)
    found = 0
    for query, _ in qs:
        got = index.nearest(query.tobytes().hex())
        want = linear_scan(words, query.view(np.uint64), index.max_distance)
        if want is None:
            assert got is None
            continue
        found += 1
        assert got is not None and got[1] == want[1]
        assert got[0] in index
        assert got[1] == int(np.unpackbits(pdq_codes([got[0]])[0] ^ query).sum())
    return found


@pytest.mark.parametrize("max_distance", [31, 0, 15, 40, 60])
def test_index_equals_linear_scan(max_distance: int) -> None:
    rng = np.random.default_rng(max_distance)
    codes = random_codes(rng, 40_000)
    index = PdqIndex(max_distance, tables_min=1_000)
    index.add_many(hexes(codes[:30_000]))
    index.rebuild()  # tables over 30,000; the rest stays in the delta
    index.add_many(hexes(codes[30_000:]))
    # From distance 48 a chunk may differ in 3 bits: no tables, every query scans.
    assert index.delta_size == (10_000 if max_distance < 48 else 40_000)
    qs = queries(rng, codes, 300, max_distance)
    found = check_against_scan(index, codes, np.ones(len(codes), bool), qs)
    planted_within = sum(d is not None and d <= max_distance for _, d in qs)
    assert found >= planted_within > 10  # every planted near-duplicate was found


def test_removals_and_rebuilds_keep_answers_exact() -> None:
    rng = np.random.default_rng(1)
    codes = random_codes(rng, 20_000)
    index = PdqIndex(31, tables_min=1_000, delta_min=500)
    index.add_many(hexes(codes))
    index.rebuild()
    alive = np.ones(len(codes), bool)
    for row in rng.choice(len(codes), 6_000, replace=False):
        assert index.remove(codes[row].tobytes().hex())
        alive[row] = False
    assert not index.remove(codes[~alive][0].tobytes().hex())  # already gone
    assert len(index) == 14_000
    qs = queries(rng, codes, 200)
    check_against_scan(index, codes, alive, qs)
    assert index.rebuild_due()  # 6,000 dead > a quarter
    index.rebuild()
    assert not index.rebuild_due()
    check_against_scan(index, codes, alive, qs)
    # a removed hash comes back
    back = np.flatnonzero(~alive)[0]
    index.add(codes[back].tobytes().hex())
    alive[back] = True
    assert index.nearest(codes[back].tobytes().hex()) == (codes[back].tobytes().hex(), 0)
    check_against_scan(index, codes, alive, qs)


def test_small_index_scans_and_ties_go_to_the_first_added() -> None:
    rng = np.random.default_rng(2)
    base = random_codes(rng, 1)[0]
    a, b = flip(base, 3, rng), flip(base, 3, rng)
    index = PdqIndex(31)
    assert index.nearest(base.tobytes().hex()) is None  # empty
    index.add_many(hexes(np.stack([a, b])))
    d_a = int(np.unpackbits(a ^ base).sum())
    d_b = int(np.unpackbits(b ^ base).sum())
    got = index.nearest(base.tobytes().hex())
    assert got is not None and got[1] == min(d_a, d_b)
    index.add(a.tobytes().hex())  # already there: nothing changes
    assert len(index) == 2
    exact = index.nearest(a.tobytes().hex(), max_distance=0)
    assert exact == (a.tobytes().hex(), 0)
    with pytest.raises(ValueError):
        index.nearest(a.tobytes().hex(), max_distance=32)


def test_prepared_rebuild_is_refused_after_a_change() -> None:
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 3_000)
    index = PdqIndex(31, tables_min=1_000)
    index.add_many(hexes(codes[:2_000]))
    rebuild = index.prepare_rebuild().build()
    index.add(codes[2_500].tobytes().hex())
    assert not index.install(rebuild)
    assert index.install(index.prepare_rebuild().build())
    assert index.delta_size == 0


@pytest.mark.parametrize("bad", ["", "00" * 31, "zz" * 32, "00" * 33])
def test_bad_hashes_are_refused(bad: str) -> None:
    index = PdqIndex(31)
    with pytest.raises(InvalidHash):
        index.add(bad)
    with pytest.raises(InvalidHash):
        index.nearest(bad)
