"""Prometheus metrics: prefix ``guardstream_``, base units, no per-event labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_LOOKUP_BUCKETS = (1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1)


class Metrics:
    """All of the worker's metrics on one registry (tests pass a fresh one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_consumed = Counter(
            "guardstream_events_consumed", "Records consumed from the input topic.", registry=r
        )
        self.verdicts = Counter(
            "guardstream_verdicts", "Verdict events published.", ["verdict"], registry=r
        )
        self.dead_letters = Counter(
            "guardstream_dead_letters", "Dead-letter records published.", ["stage"], registry=r
        )
        self.batch_size = Histogram(
            "guardstream_batch_size", "Prompts per model batch.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.classify_seconds = Histogram(
            "guardstream_classify_seconds",
            "Model time per batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fetch_seconds = Histogram(
            "guardstream_fetch_seconds",
            "S3 fetch + decode + preprocess time per image.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "guardstream_end_to_end_seconds",
            "From consume to the broker's ack of the verdict or dead letter.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fetched_bytes = Counter(
            "guardstream_fetched_bytes", "Image bytes fetched from S3.", registry=r
        )
        self.fetch_retries = Counter(
            "guardstream_fetch_retries", "Transient S3 errors that were retried.", registry=r
        )
        self.in_flight = Gauge(
            "guardstream_in_flight_events", "Events consumed and not yet committed.", registry=r
        )
        self.paused_partitions = Gauge(
            "guardstream_paused_partitions", "Partitions paused by backpressure.", registry=r
        )
        self.consumer_lag = Gauge(
            "guardstream_consumer_lag",
            "Records behind the log end, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.cache_hits = Counter("guardstream_cache_hits", "Cache hits.", ["cache"], registry=r)
        self.cache_misses = Counter(
            "guardstream_cache_misses", "Cache misses.", ["cache"], registry=r
        )
        self.hash_bank_entries = Gauge(
            "guardstream_hash_bank_entries",
            "Known-bad image hashes in memory, per bank.",
            ["bank"],
            registry=r,
        )
        self.hash_matches = Counter(
            "guardstream_hash_matches",
            "Images that matched a known-bad bank entry.",
            ["bank", "signal"],
            registry=r,
        )
        self.hash_lookup_seconds = Histogram(
            "guardstream_hash_lookup_seconds",
            "Time to look one image's hashes up in the banks.",
            buckets=_LOOKUP_BUCKETS,
            registry=r,
        )
        self.hash_bank_bad_records = Counter(
            "guardstream_hash_bank_bad_records",
            "Bank topic records that were not a valid entry or tombstone (skipped).",
            registry=r,
        )
        self.hash_bank_caught_up = Gauge(
            "guardstream_hash_bank_caught_up",
            "1 once the bank topic was read up to its end offsets seen at start.",
            registry=r,
        )
        self.model_info = Gauge(
            "guardstream_model_info",
            "The loaded model (value 1).",
            ["role", "model_id", "revision", "dtype", "device"],
            registry=r,
        )
        # The decision layer (worker.policy).
        self.policy_reloads = Counter(
            "guardstream_policy_reloads",
            "Policy file reloads: ok, or error (refused whole, the old profiles stay).",
            ["result"],
            registry=r,
        )
        self.actions = Counter(
            "guardstream_actions",
            "Verdicts by action (allow, review, block).",
            ["action"],
            registry=r,
        )
        self.review_records = Counter(
            "guardstream_review_records",
            "ReviewRequest records published, by reason (band, audit).",
            ["reason"],
            registry=r,
        )
