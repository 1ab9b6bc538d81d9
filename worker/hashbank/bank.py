"""The in-memory bank of known-bad hashes: MD5 exact, PDQ within a Hamming distance.

Thread-safe for the worker's shape: many fetch threads look up, one follower thread
writes. Lookups and small writes share one short lock; the occasional rebuild of the
PDQ tables (~seconds at a million hashes) runs outside it, so lookups go on meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from schemas.hashbank import HashBankEntry, Signal, entry_key, split_entry_key
from schemas.verdict import HashMatch
from worker.hashbank.index import PdqIndex
from worker.metrics import Metrics

Update = tuple[str, HashBankEntry | None]
"""(key, entry) puts an entry, (key, None) removes the key: a compacted topic's records."""


@dataclass(frozen=True)
class BankMatch:
    entry: HashBankEntry
    distance: int
    """Hamming distance of the PDQ hashes; 0 for an MD5 match."""

    @property
    def signal(self) -> Signal:
        return self.entry.signal

    def to_schema(self) -> HashMatch:
        return HashMatch(
            bank=self.entry.bank,
            label=self.entry.label,
            distance=self.distance,
            signal=self.entry.signal,
        )


class HashBank:
    def __init__(self, max_distance: int = 31, *, metrics: Metrics | None = None) -> None:
        self._lock = threading.Lock()  # every read, and writes' short critical sections
        self._write_lock = threading.Lock()  # one writer at a time (held over rebuilds)
        self._pdq = PdqIndex(max_distance)
        self._entries: dict[str, HashBankEntry] = {}
        self._md5: dict[str, HashBankEntry] = {}
        self._pdq_entries: dict[str, HashBankEntry] = {}
        self._sizes: Counter[str] = Counter()
        self._bulk_depth = 0
        self._metrics = metrics

    @property
    def max_distance(self) -> int:
        return self._pdq.max_distance

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> HashBankEntry | None:
        with self._lock:
            return self._entries.get(key)

    def entries(self) -> list[HashBankEntry]:
        """A snapshot of every entry (for export)."""
        with self._lock:
            return list(self._entries.values())

    def sizes(self) -> dict[str, int]:
        """Entries per bank."""
        with self._lock:
            return {bank: n for bank, n in self._sizes.items() if n}

    def put(self, entry: HashBankEntry) -> None:
        self.apply([(entry.key, entry)])

    def remove(self, signal: str, hash_hex: str) -> bool:
        return self.apply([(entry_key(signal, hash_hex), None)]) > 0

    def apply(self, updates: Iterable[Update]) -> int:
        """Apply puts and removals in order; returns how many changed the bank.

        A key must be its entry's ``signal:hash`` (ValueError otherwise, nothing applied
        from that update on: the follower validates records before they get here).
        """
        changed = 0
        touched: set[str] = set()
        new_pdq: list[str] = []  # indexed in one batch: a per-hash add costs ~10x more
        with self._write_lock:
            try:
                with self._lock:
                    try:
                        for key, entry in updates:
                            changed += self._apply_one(key, entry, touched, new_pdq)
                    finally:
                        self._pdq.add_many(new_pdq)
            finally:
                self._after_write(touched)
        return changed

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Defer PDQ table rebuilds to the end (loading a topic from the beginning).

        Lookups stay exact meanwhile; new hashes are only scanned linearly until then.
        """
        with self._write_lock:
            self._bulk_depth += 1
        try:
            yield
        finally:
            with self._write_lock:
                self._bulk_depth -= 1
                self._after_write(set())

    def match(
        self, *, pdq: str | None = None, md5: str | None = None, max_distance: int | None = None
    ) -> BankMatch | None:
        """The entry an image's hashes match: MD5 exactly first, else the nearest PDQ."""
        started = time.perf_counter()
        found: BankMatch | None = None
        with self._lock:
            if md5 is not None and md5 in self._md5:
                found = BankMatch(self._md5[md5], 0)
            elif pdq is not None:
                nearest = self._pdq.nearest(pdq, max_distance)
                if nearest is not None:
                    found = BankMatch(self._pdq_entries[nearest[0]], nearest[1])
        if self._metrics is not None:
            self._metrics.hash_lookup_seconds.observe(time.perf_counter() - started)
            if found is not None:
                self._metrics.hash_matches.labels(found.entry.bank, found.signal).inc()
        return found

    # --- writes (callers hold _write_lock; _apply_one also _lock) --------------------------

    def _apply_one(
        self, key: str, entry: HashBankEntry | None, touched: set[str], new_pdq: list[str]
    ) -> int:
        signal, hash_hex = split_entry_key(key)
        if entry is not None and entry.key != key:
            raise ValueError("the entry's signal:hash differs from its key")
        old = self._entries.pop(key, None)
        if old is not None:
            self._sizes[old.bank] -= 1
            touched.add(old.bank)
        if entry is None:
            if old is None:
                return 0
            if signal == "pdq":
                if new_pdq:  # it may be among them: index them first, in order
                    self._pdq.add_many(new_pdq)
                    new_pdq.clear()
                self._pdq.remove(hash_hex)
                del self._pdq_entries[hash_hex]
            else:
                del self._md5[hash_hex]
            return 1
        self._entries[key] = entry
        self._sizes[entry.bank] += 1
        touched.add(entry.bank)
        if signal == "pdq":
            if old is None:
                new_pdq.append(hash_hex)
            self._pdq_entries[hash_hex] = entry
        else:
            self._md5[hash_hex] = entry
        return int(old != entry)

    def _after_write(self, touched: set[str]) -> None:
        if self._metrics is not None and touched:
            with self._lock:
                sizes = {bank: self._sizes[bank] for bank in touched}
            for bank, size in sizes.items():
                self._metrics.hash_bank_entries.labels(bank).set(size)
        if self._bulk_depth == 0:
            self._rebuild_if_due()

    def _rebuild_if_due(self) -> None:
        with self._lock:
            if not self._pdq.rebuild_due():
                return
            rebuild = self._pdq.prepare_rebuild()
        rebuild.build()  # the slow part, outside the lock: lookups continue
        with self._lock:
            installed = self._pdq.install(rebuild)
        assert installed  # nothing else writes while _write_lock is held
