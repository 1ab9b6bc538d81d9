"""Exact Hamming-radius search over 256-bit PDQ hashes: multi-index hashing in numpy.

Each hash is cut into 16 chunks of 16 bits. Two hashes at most ``d`` bits apart have a
chunk that differs in at most ``d // 16`` bits (pigeonhole: 16 chunks each differing in
more would make ``d`` larger). So probing each chunk's table with every value within
that chunk radius (for d = 31: the value and its 16 one-bit flips) yields every hash
within ``d``, among few candidates (a bucket holds ~size / 65,536 hashes); each candidate
is then measured with a full popcount. The answers are exactly a linear scan's
(``linear_scan``, the plain path the tests and ``guardstream bench hashbank`` compare).

Additions land in a delta that is scanned linearly; removals clear an alive flag. When
the delta or the removed outgrow a fraction of the indexed base, the tables are rebuilt
from the live hashes. Not thread-safe by itself: ``HashBank`` serialises access.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from worker.hashbank.exceptions import InvalidHash

PDQ_BYTES = 32
_CHUNKS = 16  # of 16 bits: one table of 65,536 buckets each
_BUCKETS = 1 << 16
# Radius 3 would mean 697 probes per chunk (~11,000 buckets): a scan is as cheap by then.
_MAX_CHUNK_RADIUS = 2
# Below this many hashes a scan beats the tables' fixed cost (272 probes at d = 31);
# measured: at 10,000 the tables answer in ~40 % of a scan's time.
TABLES_MIN = 4_096
# The delta is built into the tables beyond max(DELTA_MIN, base / DELTA_FRACTION) hashes:
# at a million, a scan of <= 7,812 rows per query and a rebuild per 7,812 additions.
DELTA_MIN = 1_024
DELTA_FRACTION = 128


def pdq_codes(hexes: Sequence[str]) -> np.ndarray:
    """64-digit hex hashes → an (n, 32) uint8 array (InvalidHash for a bad one)."""
    if not hexes:
        return np.zeros((0, PDQ_BYTES), np.uint8)
    try:
        raw = bytes.fromhex("".join(hexes))
    except ValueError:
        raw = b""
    if len(raw) != PDQ_BYTES * len(hexes) or any(len(h) != 2 * PDQ_BYTES for h in hexes):
        raise InvalidHash("a PDQ hash is 64 hex digits")
    return np.frombuffer(raw, np.uint8).reshape(len(hexes), PDQ_BYTES).copy()


def distances(words: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance from each row of ``words`` (n, 4) uint64 to ``query`` (4,) uint64."""
    counts = np.bitwise_count(words ^ query)  # (n, 4) uint8
    # Four column adds: numpy's sum(axis=1) over rows this short is several times slower.
    return counts[:, 0].astype(np.uint16) + counts[:, 1] + counts[:, 2] + counts[:, 3]


def linear_scan(words: np.ndarray, query: np.ndarray, max_distance: int) -> tuple[int, int] | None:
    """The plain path: (row, distance) of the nearest row within ``max_distance``."""
    if len(words) == 0:
        return None
    dist = distances(words, query)
    row = int(np.argmin(dist))
    return (row, int(dist[row])) if dist[row] <= max_distance else None


_FAR = np.uint16(PDQ_BYTES * 8 + 1)  # farther than any hash: marks removed rows in a scan


def _query_code(hex_hash: str) -> np.ndarray:
    try:
        raw = bytes.fromhex(hex_hash)
    except ValueError:
        raw = b""
    if len(raw) != PDQ_BYTES or len(hex_hash) != 2 * PDQ_BYTES:
        raise InvalidHash("a PDQ hash is 64 hex digits")
    return np.frombuffer(raw, np.uint8)


def _chunk_masks(radius: int) -> np.ndarray:
    """Every 16-bit XOR mask with at most ``radius`` bits set."""
    values = np.arange(_BUCKETS, dtype=np.uint32)
    weights = np.bitwise_count(values)
    return values[weights <= radius].astype(np.int64)


@dataclass(frozen=True)
class _Tables:
    """Per chunk, the base's rows sorted by chunk value, and each bucket's start."""

    order: np.ndarray  # (16 * m,) int32: row ids, chunk c's at [c*m, (c+1)*m)
    starts: np.ndarray  # (16 * 65,537,) int64: chunk c's bucket v starts at order[c*m + s]
    size: int  # m

    @classmethod
    def build(cls, codes: np.ndarray) -> _Tables:
        m = len(codes)
        chunks = np.ascontiguousarray(codes).view(">u2").reshape(m, _CHUNKS)
        order = np.empty(_CHUNKS * m, np.int32)
        starts = np.zeros((_CHUNKS, _BUCKETS + 1), np.int64)
        for c in range(_CHUNKS):
            values = chunks[:, c].astype(np.uint16)
            order[c * m : (c + 1) * m] = np.argsort(values, kind="stable")  # radix sort
            np.cumsum(np.bincount(values, minlength=_BUCKETS), out=starts[c, 1:])
            starts[c] += c * m
        return cls(order=order, starts=starts.reshape(-1), size=m)

    def candidates(self, query: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Rows sharing a chunk with ``query`` up to the masks' radius (with repeats)."""
        qchunks = query.view(">u2").astype(np.int64)  # (16,)
        probes = (qchunks[:, None] ^ masks[None, :]) + (
            np.arange(_CHUNKS, dtype=np.int64)[:, None] * (_BUCKETS + 1)
        )
        lo = self.starts[probes.ravel()]
        hi = self.starts[probes.ravel() + 1]
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        # Expand the [lo, hi) ranges into one index array without a Python loop.
        shift = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
        return self.order[np.arange(total, dtype=np.int64) + shift].astype(np.int64)


@dataclass
class Rebuild:
    """A snapshot of the live rows, turned into new tables by ``build`` (no lock needed)."""

    version: int
    with_tables: bool
    codes: np.ndarray
    alive: np.ndarray
    hexes: list[str | None]
    tables: _Tables | None = None
    row_of: dict[str, int] | None = None

    def build(self) -> Rebuild:
        if not self.alive.all():
            live = np.flatnonzero(self.alive)
            self.codes = self.codes[live]
            self.hexes = [self.hexes[row] for row in live]
            self.row_of = {h: row for row, h in enumerate(self.hexes) if h is not None}
        self.tables = _Tables.build(self.codes if self.with_tables else self.codes[:0])
        return self


class PdqIndex:
    """A set of PDQ hashes with exact nearest-within-radius queries.

    Rebuilding the tables costs ~O(size) (radix sorts): ``prepare_rebuild`` → ``build``
    → ``install`` lets a caller do the middle step outside its lock, while queries go on.
    """

    def __init__(
        self, max_distance: int = 31, *, delta_min: int = DELTA_MIN, tables_min: int = TABLES_MIN
    ) -> None:
        if not 0 <= max_distance <= 256:
            raise ValueError("max_distance is 0..256")
        self.max_distance = max_distance
        radius = max_distance // _CHUNKS
        self._masks = _chunk_masks(radius) if radius <= _MAX_CHUNK_RADIUS else None
        self._delta_min = delta_min
        self._tables_min = tables_min
        self._codes = np.zeros((0, PDQ_BYTES), np.uint8)  # rows: the base, then the delta
        self._alive = np.zeros(0, bool)
        self._hexes: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._count = 0  # rows in use
        self._dead = 0
        self._version = 0
        self._tables = _Tables.build(self._codes)

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, hex_hash: object) -> bool:
        return hex_hash in self._row_of

    @property
    def delta_size(self) -> int:
        """Hashes added since the tables were built (scanned linearly)."""
        return self._count - self._tables.size

    def add(self, hex_hash: str) -> None:
        self.add_many([hex_hash])

    def add_many(self, hexes: Iterable[str]) -> None:
        """Add hashes (ones already present are left as they are)."""
        new = list(dict.fromkeys(h for h in hexes if h not in self._row_of))
        if not new:
            return
        codes = pdq_codes(new)
        end = self._count + len(new)
        self._reserve(end)
        # Rows below _count are never written again: a rebuild may read them unlocked.
        self._codes[self._count : end] = codes
        self._alive[self._count : end] = True
        self._row_of.update(zip(new, range(self._count, end), strict=True))
        self._hexes.extend(new)
        self._count = end
        self._version += 1

    def remove(self, hex_hash: str) -> bool:
        row = self._row_of.pop(hex_hash, None)
        if row is None:
            return False
        self._alive[row] = False
        self._hexes[row] = None
        self._dead += 1
        self._version += 1
        return True

    def nearest(self, hex_hash: str, max_distance: int | None = None) -> tuple[str, int] | None:
        """The indexed hash nearest to ``hex_hash`` within the radius, and its distance.

        Among equally near hashes, the lowest row wins (rows keep insertion order).
        """
        limit = self.max_distance if max_distance is None else max_distance
        if limit > self.max_distance:
            raise ValueError(f"this index answers up to distance {self.max_distance}")
        query = _query_code(hex_hash)
        all_words = self._codes.view(np.uint64)
        if self._tables.size == 0 or self._masks is None:
            words = all_words[: self._count]
            dist = distances(words, query.view(np.uint64))
            dist[~self._alive[: self._count]] = _FAR
            rows = np.arange(self._count, dtype=np.int64)
        else:
            delta = np.arange(self._tables.size, self._count, dtype=np.int64)
            rows = np.concatenate([self._tables.candidates(query, self._masks), delta])
            rows = rows[self._alive[rows]]
            rows.sort()
            dist = distances(np.take(all_words, rows, axis=0), query.view(np.uint64))
        if len(rows) == 0:
            return None
        best = int(np.argmin(dist))
        if dist[best] > limit:
            return None
        found = self._hexes[int(rows[best])]
        assert found is not None  # a live row has its hash
        return found, int(dist[best])

    def rebuild_due(self) -> bool:
        """The delta or the removed rows outgrew their share of the base."""
        too_many_dead = self._dead > max(self._delta_min, self._count // 4)
        if self._masks is None or self._count - self._dead < self._tables_min:
            return too_many_dead
        return too_many_dead or self.delta_size > max(
            self._delta_min, self._tables.size // DELTA_FRACTION
        )

    @property
    def _tables_wanted(self) -> bool:
        return self._masks is not None and self._count - self._dead >= self._tables_min

    def prepare_rebuild(self) -> Rebuild:
        # Copies of the small things; the rows themselves are a view (never rewritten).
        return Rebuild(
            version=self._version,
            with_tables=self._tables_wanted,
            codes=self._codes[: self._count],
            alive=self._alive[: self._count].copy(),
            hexes=self._hexes[: self._count],
        )

    def install(self, rebuild: Rebuild) -> bool:
        """Swap in built tables; False (nothing changed) if hashes changed meanwhile."""
        if rebuild.version != self._version or rebuild.tables is None:
            return False
        if rebuild.row_of is not None:  # rows were dropped: new numbering
            self._codes = np.ascontiguousarray(rebuild.codes)
            self._alive = np.ones(len(rebuild.codes), bool)
            self._hexes = rebuild.hexes
            self._row_of = rebuild.row_of
            self._count = len(rebuild.codes)
            self._dead = 0
        self._tables = rebuild.tables
        return True

    def rebuild(self) -> None:
        """Index every live hash in the tables (drops removed rows; the delta empties)."""
        installed = self.install(self.prepare_rebuild().build())
        assert installed

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._codes):
            return
        capacity = max(rows, 2 * len(self._codes), 1024)
        codes = np.zeros((capacity, PDQ_BYTES), np.uint8)
        codes[: self._count] = self._codes[: self._count]
        alive = np.zeros(capacity, bool)
        alive[: self._count] = self._alive[: self._count]
        self._codes, self._alive = codes, alive
