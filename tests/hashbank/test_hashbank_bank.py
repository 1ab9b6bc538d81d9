"""HashBank: add, replace, remove and match; MD5 exact, PDQ within the distance."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hashbank_helpers import md5_entry, near, pdq_entry, random_pdq
from prometheus_client import CollectorRegistry

from worker.hashbank.bank import BankMatch, HashBank
from worker.metrics import Metrics

MD5 = "0123456789abcdef0123456789abcdef"


def test_pdq_matches_within_the_distance_only() -> None:
    rng = np.random.default_rng(0)
    bank = HashBank(31)
    pdq = random_pdq(rng)
    bank.put(pdq_entry(pdq))
    hit = bank.match(pdq=near(pdq, 31, rng))
    assert hit is not None and hit.distance == 31 and hit.entry.label == "case-1"
    assert hit.signal == "pdq"
    assert bank.match(pdq=near(pdq, 32, rng)) is None
    assert bank.match(pdq=pdq, max_distance=0) == BankMatch(pdq_entry(pdq), 0)
    assert bank.match() is None


def test_md5_is_exact_and_wins_over_pdq() -> None:
    rng = np.random.default_rng(1)
    bank = HashBank()
    pdq = random_pdq(rng)
    bank.apply([(e.key, e) for e in (pdq_entry(pdq), md5_entry(MD5))])
    assert bank.match(md5="f" * 32) is None
    hit = bank.match(pdq=pdq, md5=MD5)
    assert hit is not None and hit.signal == "md5" and hit.distance == 0
    assert hit.to_schema().model_dump() == {
        "bank": "exact",
        "label": "case-2",
        "distance": 0,
        "signal": "md5",
    }
    assert bank.match(pdq=pdq, md5="f" * 32) == BankMatch(pdq_entry(pdq), 0)


def test_nearest_entry_wins() -> None:
    rng = np.random.default_rng(2)
    bank = HashBank()
    pdq = random_pdq(rng)
    far, close = near(pdq, 20, rng), near(pdq, 5, rng)
    bank.put(pdq_entry(far, label="far"))
    bank.put(pdq_entry(close, label="close"))
    hit = bank.match(pdq=pdq)
    assert hit is not None and hit.entry.label == "close" and hit.distance == 5


def test_replace_and_remove() -> None:
    rng = np.random.default_rng(3)
    metrics = Metrics(CollectorRegistry())
    bank = HashBank(metrics=metrics)
    pdq = random_pdq(rng)
    bank.put(pdq_entry(pdq, bank="a"))
    bank.put(md5_entry(MD5, bank="a"))
    assert bank.sizes() == {"a": 2}
    bank.put(pdq_entry(pdq, bank="b", label="moved"))  # same hash: replaced
    assert len(bank) == 2 and bank.sizes() == {"a": 1, "b": 1}
    hit = bank.match(pdq=pdq)
    assert hit is not None and hit.entry.bank == "b" and hit.entry.label == "moved"
    same = pdq_entry(pdq, bank="b", label="moved")
    assert bank.apply([(same.key, same)]) == 0  # an identical entry changes nothing
    assert bank.remove("pdq", pdq)
    assert not bank.remove("pdq", pdq)
    assert bank.match(pdq=pdq) is None
    assert bank.remove("md5", MD5)
    assert len(bank) == 0 and bank.sizes() == {}
    r = metrics.registry
    assert r.get_sample_value("guardstream_hash_bank_entries", {"bank": "a"}) == 0
    assert r.get_sample_value("guardstream_hash_bank_entries", {"bank": "b"}) == 0


def test_updates_apply_in_order() -> None:
    rng = np.random.default_rng(4)
    bank = HashBank()
    entry = pdq_entry(random_pdq(rng))
    assert bank.apply([(entry.key, entry), (entry.key, None)]) == 2
    assert bank.get(entry.key) is None
    bank.apply([(entry.key, None), (entry.key, entry)])
    assert bank.get(entry.key) == entry
    with pytest.raises(ValueError):
        bank.apply([(f"pdq:{random_pdq(rng)}", entry)])  # the key is another hash


def test_metrics_count_matches_and_lookups() -> None:
    rng = np.random.default_rng(5)
    metrics = Metrics(CollectorRegistry())
    bank = HashBank(metrics=metrics)
    pdq = random_pdq(rng)
    bank.put(pdq_entry(pdq))
    bank.match(pdq=pdq)
    bank.match(pdq=random_pdq(rng))
    r = metrics.registry
    assert r.get_sample_value("guardstream_hash_bank_entries", {"bank": "takedowns"}) == 1
    assert (
        r.get_sample_value("guardstream_hash_matches_total", {"bank": "takedowns", "signal": "pdq"})
        == 1
    )
    assert r.get_sample_value("guardstream_hash_lookup_seconds_count") == 2


def test_bulk_defers_the_table_build_and_lookups_stay_exact() -> None:
    rng = np.random.default_rng(6)
    bank = HashBank()
    planted = random_pdq(rng)
    with bank.bulk():
        bank.put(pdq_entry(planted, label="planted"))
        bank.apply([(e.key, e) for e in (pdq_entry(random_pdq(rng)) for _ in range(20_000))])
        assert bank._pdq.delta_size == 20_001  # all scanned linearly for now
        hit = bank.match(pdq=near(planted, 30, rng))
        assert hit is not None and hit.entry.label == "planted"
    assert bank._pdq.delta_size == 0  # built once at the end
    hit = bank.match(pdq=near(planted, 30, rng))
    assert hit is not None and hit.entry.label == "planted"


def test_lookups_during_writes_and_rebuilds_see_a_consistent_bank() -> None:
    """Readers (the fetch threads) never miss a permanent entry while one writer adds
    and removes thousands and the tables are rebuilt outside the lock."""
    rng = np.random.default_rng(7)
    bank = HashBank()
    planted = random_pdq(rng)
    bank.put(pdq_entry(planted, label="planted"))
    query = near(planted, 12, rng)
    batches = [[pdq_entry(random_pdq(rng)) for _ in range(2_000)] for _ in range(12)]
    done = threading.Event()
    errors: list[str] = []
    lookups = [0]

    def read() -> None:
        while not done.is_set():
            hit = bank.match(pdq=query)
            if hit is None or hit.entry.label != "planted" or hit.distance != 12:
                errors.append(repr(hit))
            lookups[0] += 1

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    rebuilds = 0
    try:
        for batch in batches:
            before = bank._pdq.delta_size
            bank.apply([(e.key, e) for e in batch])
            bank.apply([(e.key, None) for e in batch[:500]])
            rebuilds += bank._pdq.delta_size < before + 1_500
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert not errors
    assert rebuilds >= 1 and lookups[0] > 0
    assert len(bank) == 1 + 12 * 1_500
