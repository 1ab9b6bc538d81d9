"""kafka-python client kwargs from one small connection description.

Only settings that are set are passed on: kafka-python rejects unknown keys
and some security keys are only valid together, so defaults stay kafka-python's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from worker.streaming.murmur2 import Murmur2Partitioner

Assignment = Literal["cooperative-sticky", "sticky", "range", "roundrobin"]

# kafka-python refuses to mix EAGER and COOPERATIVE assignors in one consumer,
# so each choice is a single assignor.
_ASSIGNORS: dict[str, Any] = {
    "cooperative-sticky": CooperativeStickyAssignor,
    "sticky": StickyPartitionAssignor,
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
}


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    """Comma separated host:port list."""
    client_id: str | None = None
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Any other kafka-python setting valid for *all* clients (e.g. sasl_oauth_token_provider)."""

    def common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "bootstrap_servers": [
                s.strip() for s in self.bootstrap_servers.split(",") if s.strip()
            ],
            "security_protocol": self.security_protocol,
        }
        optional = {
            "client_id": self.client_id,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_plain_username,
            "sasl_plain_password": self.sasl_plain_password,
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_password": self.ssl_password,
            "ssl_check_hostname": self.ssl_check_hostname,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        kwargs.update(self.extra)
        return kwargs


def consumer_kwargs(
    conn: KafkaConnection,
    *,
    group_id: str | None,
    group_instance_id: str | None = None,
    isolation_level: Literal["read_uncommitted", "read_committed"] = "read_uncommitted",
    max_poll_records: int = 256,
    max_poll_interval_ms: int = 300_000,
    session_timeout_ms: int = 45_000,
    heartbeat_interval_ms: int | None = None,
    assignment: Assignment = "cooperative-sticky",
    **overrides: Any,
) -> dict[str, Any]:
    """kwargs for ``KafkaConsumer`` driven by ``StreamProcessor``.

    Offsets are committed explicitly by the pipeline (never auto-committed);
    a group without offsets starts from the earliest record so nothing is
    skipped. No deserializers: steps get raw bytes (dead letters copy them).
    ``group_instance_id`` makes this a static member (KIP-345): a restart
    within ``session_timeout_ms`` gets its partitions back without a rebalance.
    Use ``isolation_level="read_committed"`` when inputs are transactional.
    ``group_id=None``: no group (an assigned consumer that commits nothing).
    """
    kwargs = conn.common_kwargs()
    kwargs.update(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        max_poll_records=max_poll_records,
        max_poll_interval_ms=max_poll_interval_ms,
        session_timeout_ms=session_timeout_ms,
        # Members learn about a rebalance from a heartbeat response: keep it
        # frequent (kafka's 3 s default), and below a third of the session timeout.
        heartbeat_interval_ms=heartbeat_interval_ms or min(3000, session_timeout_ms // 3),
        partition_assignment_strategy=(_ASSIGNORS[assignment],),
    )
    if group_instance_id is not None:
        kwargs["group_instance_id"] = group_instance_id
    kwargs.update(overrides)
    return kwargs


# librdkafka's batch.size default, under the broker's default record-batch limit
# (message.max.bytes, 1,048,588). kafka-python's own 16 KiB fills in ~20 verdicts:
# with idempotence one batch per partition is in flight, the next one fills while it
# waits, and from then on kafka-python wakes its sender thread (a socket write, a GIL
# hand-off) on every send. Its batches grow as records arrive; nothing is allocated
# up front.
PRODUCER_BATCH_BYTES = 1_000_000


def producer_kwargs(
    conn: KafkaConnection,
    *,
    linger_ms: int = 5,
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None,
    transactional_id: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """kwargs for ``KafkaProducer``: durable (acks=all) and idempotent (no
    duplicates from internal retries). ``transactional_id`` makes it a
    transactional producer for ``TransactionalProduceAndCommit``."""
    kwargs = conn.common_kwargs()
    kwargs.update(acks="all", enable_idempotence=True, linger_ms=linger_ms)
    # A batch is one record to the broker: never larger than a request may be.
    max_request = overrides.get(
        "max_request_size", KafkaProducer.DEFAULT_CONFIG["max_request_size"]
    )
    kwargs["batch_size"] = min(PRODUCER_BATCH_BYTES, max_request)
    # DefaultPartitioner's choices at a third of its per-send cost (murmur2.py).
    kwargs["partitioner"] = Murmur2Partitioner()
    if compression_type is not None:
        kwargs["compression_type"] = compression_type
    if transactional_id is not None:
        kwargs["transactional_id"] = transactional_id
    kwargs.update(overrides)
    return kwargs


def admin_kwargs(conn: KafkaConnection, **overrides: Any) -> dict[str, Any]:
    """kwargs for ``KafkaAdminClient`` (the kafka-python driver's admin)."""
    kwargs = conn.common_kwargs()
    kwargs.update(overrides)
    return kwargs
