"""``guardstream bench hashbank``: PDQ lookups/s in banks of 10^4..10^6 hashes.

guardstream: ``HashBank.match`` (multi-index hashing over 16-bit chunks, loaded through
``apply`` in bulk as the follower does). Baseline, same run, same hashes: a linear numpy
scan (XOR, popcount, argmin) of the whole bank per query. Each bank holds random hashes
plus planted originals; queries are near-duplicates of those at distances 0..d (recall
must be 1.0) and random hashes (nothing within d, almost surely). The scan's answers
are compared with the bank's (``exact``). One JSON line per size, then one line of the
per-image cost of hashing (resize to 512, PDQ, MD5) next to that of decoding the JPEG.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from worker.bench.machine import machine_info, rss_bytes
from worker.bench.report import progress, ratio

NAME = "hashbank"
HELP = "PDQ bank lookups/s at 10^4..10^6 entries vs a linear numpy scan; hashing vs decoding"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="bank sizes, comma separated (default 10000,100000; add 1000000: ~1 GB, minutes)",
    )
    parser.add_argument("--queries", type=int, default=2000, help="lookups per size")
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=5.0,
        help="time budget of the linear scan per size (it answers fewer queries)",
    )
    parser.add_argument("--distance", type=int, default=31, help="HASH_MATCH_DISTANCE")
    parser.add_argument(
        "--hash-images", type=int, default=6, help="JPEGs per size for hashing vs decoding"
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    machine = machine_info()
    lines = [_bank_line(size, args, machine) for size in sizes]
    lines.append(_hashing_line(args, machine))
    return lines


def _bank_line(size: int, args: argparse.Namespace, machine: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from schemas.hashbank import HashBankEntry
    from worker.hashbank import HashBank
    from worker.hashbank.index import linear_scan

    rng = np.random.default_rng(args.seed + size)
    planted = min(1000, max(1, size // 10))
    progress(f"size {size:,}: {size:,} random PDQ hashes ({planted} of them planted originals)")
    codes = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    hexes = [row.tobytes().hex() for row in codes]
    added_at = datetime.now(UTC)
    entries = [
        # model_construct: the bench measures lookups, not 10^6 validations
        HashBankEntry.model_construct(
            signal="pdq", hash=h, bank="bench", label="", categories=["S4"], added_at=added_at
        )
        for h in hexes
    ]

    rss_before = rss_bytes()
    bank = HashBank(args.distance)
    started = time.perf_counter()
    with bank.bulk():
        for start in range(0, size, 2000):  # poll-sized batches, as the follower applies
            bank.apply((e.key, e) for e in entries[start : start + 2000])
    load_s = time.perf_counter() - started
    rss_mb = (rss_bytes() - rss_before) / 1e6
    del entries

    # Queries: near-duplicates of planted originals at 0..d bits, then random hashes.
    near_count = args.queries * 3 // 4
    originals = rng.integers(0, planted, near_count)
    planted_distance = rng.integers(0, args.distance + 1, near_count)
    queries: list[np.ndarray] = []
    for row, bits in zip(originals, planted_distance, strict=True):
        query = codes[row].copy()
        for bit in rng.choice(256, int(bits), replace=False):
            query[bit // 8] ^= np.uint8(1 << (bit % 8))
        queries.append(query)
    queries += list(rng.integers(0, 256, (args.queries - near_count, 32), dtype=np.uint8))
    query_hexes = [q.tobytes().hex() for q in queries]

    progress(f"size {size:,}: {len(queries)} lookups through the bank")
    started = time.perf_counter()
    answers = [bank.match(pdq=q) for q in query_hexes]
    bank_s = time.perf_counter() - started

    words = codes.view(np.uint64)
    progress(f"size {size:,}: linear numpy scan for up to {args.baseline_seconds:g} s")
    scanned: list[tuple[int, tuple[int, int] | None]] = []
    started = time.perf_counter()
    while len(scanned) < len(queries) and (
        time.perf_counter() - started < args.baseline_seconds or len(scanned) < 5
    ):
        i = len(scanned)
        scanned.append((i, linear_scan(words, queries[i].view(np.uint64), args.distance)))
    scan_s = time.perf_counter() - started

    # Exactness on the scanned queries: the same distance (a tie may name another hash).
    got = [None if a is None else a.distance for a in answers]
    exact = all(got[i] == (None if want is None else want[1]) for i, want in scanned)
    found = sum(
        1 for i in range(near_count) if got[i] is not None and got[i] <= planted_distance[i]
    )
    random_matched = sum(answers[i] is not None for i in range(near_count, len(queries)))
    value = len(queries) / bank_s
    base = len(scanned) / scan_s
    return {
        "benchmark": NAME,
        "size": size,
        "unit": "lookups/s",
        "guardstream": round(value, 1),
        "baseline": round(base, 2),
        "baseline_path": "linear numpy scan (xor, bitwise_count, argmin) per query",
        "ratio": ratio(value, base),
        "queries": len(queries),
        "baseline_queries": len(scanned),
        "exact": exact,
        "planted_queries": near_count,
        "recall": round(found / near_count, 4) if near_count else None,
        "random_queries": len(queries) - near_count,
        "random_matched": random_matched,
        "distance": args.distance,
        "mean_lookup_us": round(bank_s / len(queries) * 1e6, 1),
        "load_s": round(load_s, 2),
        "load_entries_per_s": round(size / load_s) if load_s > 0 else None,
        "bank_rss_mb": round(rss_mb, 1),
        "machine": machine,
    }


def _hashing_line(args: argparse.Namespace, machine: dict[str, Any]) -> dict[str, Any]:
    from worker.hashbank import hash_image
    from worker.images.decode import ImageLimits, decode_image
    from worker.lab import PhotoMaker

    limits = ImageLimits()
    maker = PhotoMaker(4000, 3000)
    figures: dict[str, Any] = {}
    for width, height in ((4000, 3000), (1024, 768)):
        jpegs = [maker.jpeg(width, height, seed=i) for i in range(args.hash_images)]
        progress(f"decode vs hash: {len(jpegs)} JPEGs of {width}x{height}")
        hash_image(decode_image(jpegs[0], limits), jpegs[0])  # warm up
        decode_s = hash_s = 0.0
        for data in jpegs:
            started = time.perf_counter()
            image = decode_image(data, limits)
            decode_s += time.perf_counter() - started
            started = time.perf_counter()
            hash_image(image, data)
            hash_s += time.perf_counter() - started
        figures[f"{width}x{height}"] = {
            "decode_ms": round(decode_s / len(jpegs) * 1e3, 2),
            "hash_ms": round(hash_s / len(jpegs) * 1e3, 2),
            "hash_over_decode": ratio(hash_s, decode_s),
        }
    return {
        "benchmark": NAME,
        "part": "hashing",
        "unit": "ms per image",
        "hash_path": "hash_image: BOX resize to 512x512 when larger, pdqhash.compute, md5",
        "decode_path": "decode_image (full decode, no draft)",
        "images": figures,
        "machine": machine,
    }
