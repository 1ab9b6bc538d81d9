"""kafka_config: kwargs are valid kafka-python settings with our defaults."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor

from worker.streaming.kafka_config import (
    PRODUCER_BATCH_BYTES,
    KafkaConnection,
    admin_kwargs,
    consumer_kwargs,
    producer_kwargs,
)

SECURE = KafkaConnection(
    bootstrap_servers="b1:9093, b2:9093",
    client_id="guardstream-pod-1",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_plain_username="svc",
    sasl_plain_password="s3cret",
    ssl_cafile="/etc/ca.pem",
    ssl_certfile="/etc/cert.pem",
    ssl_keyfile="/etc/key.pem",
)


def test_consumer_kwargs() -> None:
    kwargs = consumer_kwargs(
        SECURE, group_id="g", group_instance_id="pod-1", isolation_level="read_committed"
    )
    assert set(kwargs) <= set(KafkaConsumer.DEFAULT_CONFIG)
    assert kwargs["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert kwargs["enable_auto_commit"] is False
    assert kwargs["auto_offset_reset"] == "earliest"
    assert kwargs["isolation_level"] == "read_committed"
    assert kwargs["group_instance_id"] == "pod-1"
    assert kwargs["partition_assignment_strategy"] == (CooperativeStickyAssignor,)
    assert kwargs["heartbeat_interval_ms"] == 3000
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert kwargs["ssl_keyfile"] == "/etc/key.pem"
    assert "key_deserializer" not in kwargs
    assert consumer_kwargs(SECURE, group_id="g", assignment="range")[
        "partition_assignment_strategy"
    ] == (RangePartitionAssignor,)
    assert "group_instance_id" not in consumer_kwargs(SECURE, group_id="g")


def test_producer_and_admin_kwargs() -> None:
    kwargs = producer_kwargs(SECURE, compression_type="zstd", transactional_id="tx-1")
    assert set(kwargs) <= set(KafkaProducer.DEFAULT_CONFIG)
    assert kwargs["acks"] == "all" and kwargs["enable_idempotence"] is True
    assert kwargs["compression_type"] == "zstd" and kwargs["transactional_id"] == "tx-1"
    assert kwargs["linger_ms"] == 5
    # librdkafka's batch size, not kafka-python's 16 KiB (a sender wake-up per send once
    # a batch is in flight), and never above what one request may carry.
    assert kwargs["batch_size"] == PRODUCER_BATCH_BYTES == 1_000_000
    assert producer_kwargs(SECURE, max_request_size=200_000)["batch_size"] == 200_000
    plain = producer_kwargs(KafkaConnection("localhost:9092"))
    assert "transactional_id" not in plain and "compression_type" not in plain
    assert "sasl_mechanism" not in plain
    assert set(admin_kwargs(SECURE)) <= set(KafkaAdminClient.DEFAULT_CONFIG)


def test_secrets_not_in_repr() -> None:
    assert "s3cret" not in repr(SECURE)
