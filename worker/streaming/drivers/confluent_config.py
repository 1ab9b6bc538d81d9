"""librdkafka configuration from the worker's connection and client settings (pure).

The same settings as ``kafka_config`` builds for kafka-python, under librdkafka's names
(https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md).
"""

from __future__ import annotations

from typing import Any

from worker.streaming.kafka_config import Assignment, KafkaConnection

#: kafka-python ``KafkaConnection`` field → librdkafka property.
SECURITY_NAMES = {
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
}

# librdkafka has no eager "sticky" assignor.
_ASSIGNORS = {
    "cooperative-sticky": "cooperative-sticky",
    "range": "range",
    "roundrobin": "roundrobin",
}


def common_config(conn: KafkaConnection, client_id: str | None = None) -> dict[str, Any]:
    """bootstrap.servers, client.id and the security settings, set ones only.

    ``conn.extra`` holds kafka-python settings; only its dotted (librdkafka) names are
    passed on, anything else is refused rather than silently dropped.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(
            s.strip() for s in conn.bootstrap_servers.split(",") if s.strip()
        ),
        "security.protocol": conn.security_protocol.lower(),
    }
    if client_id or conn.client_id:
        config["client.id"] = client_id or conn.client_id
    for field_name, property_name in SECURITY_NAMES.items():
        value = getattr(conn, field_name)
        if value is not None:
            config[property_name] = value
    if conn.ssl_check_hostname is False:
        config["ssl.endpoint.identification.algorithm"] = "none"
    for key, value in conn.extra.items():
        if "." not in key:
            raise ValueError(f"kafka setting {key!r} has no librdkafka equivalent here")
        config[key] = value
    return config


def consumer_config(
    conn: KafkaConnection,
    *,
    group_id: str | None,
    group_instance_id: str | None = None,
    isolation_level: str = "read_uncommitted",
    max_poll_interval_ms: int = 300_000,
    session_timeout_ms: int = 45_000,
    heartbeat_interval_ms: int | None = None,
    assignment: Assignment = "cooperative-sticky",
    client_id: str | None = None,
) -> dict[str, Any]:
    """The consumer ``StreamProcessor`` drives: offsets committed explicitly (never
    auto-committed, never auto-stored), earliest when the group has none, partition EOF
    events off, statistics once a second (``broker_connected``). ``group_id=None``: no
    ``group.id`` (the consumer gives itself one it never joins, ``ConfluentConsumer``)."""
    if assignment not in _ASSIGNORS:
        raise ValueError(f"librdkafka has no {assignment!r} assignor")
    config = common_config(conn, client_id)
    if group_id is not None:
        config["group.id"] = group_id
    config.update(
        {
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation_level,
            "max.poll.interval.ms": max_poll_interval_ms,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": heartbeat_interval_ms or min(3000, session_timeout_ms // 3),
            "partition.assignment.strategy": _ASSIGNORS[assignment],
            "enable.partition.eof": False,
            "statistics.interval.ms": 1000,
        }
    )
    if group_instance_id is not None:
        config["group.instance.id"] = group_instance_id
    return config


def producer_config(
    conn: KafkaConnection,
    *,
    max_record_bytes: int | None = None,
    transactional_id: str | None = None,
    linger_ms: int = 5,
) -> dict[str, Any]:
    """Durable (acks=all) and idempotent, like ``kafka_config.producer_kwargs``;
    ``max_record_bytes`` is librdkafka's ``message.max.bytes``."""
    config = common_config(conn)
    config.update({"acks": "all", "enable.idempotence": True, "linger.ms": linger_ms})
    # The Java client's (and kafka-python's) key hashing, not librdkafka's CRC32
    # default: a conversation's verdicts land on one partition whichever driver sends.
    config["partitioner"] = "murmur2_random"
    if max_record_bytes:
        config["message.max.bytes"] = max_record_bytes
    if transactional_id is not None:
        config["transactional.id"] = transactional_id
    return config
