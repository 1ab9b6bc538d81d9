"""The Kafka driver seam without a broker: settings mapping, driver choice, callbacks."""

from __future__ import annotations

import builtins
from typing import Any

import pytest
from kafka import TopicPartition

from worker.streaming.drivers import DriverUnavailable, load_driver
from worker.streaming.drivers.confluent_config import consumer_config, producer_config
from worker.streaming.kafka_config import KafkaConnection
from worker.streaming.rebalance import RebalanceEvents
from worker.streaming.types import Partition

SECURE = KafkaConnection(
    bootstrap_servers=" b1:9093, b2:9093 ",
    client_id="gs-w1",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_plain_username="user",
    sasl_plain_password="secret",
    ssl_cafile="/etc/ca.pem",
    ssl_certfile="/etc/cert.pem",
    ssl_keyfile="/etc/key.pem",
    ssl_password="keypass",
    ssl_check_hostname=False,
)


def test_consumer_settings_under_librdkafka_names() -> None:
    config = consumer_config(
        SECURE,
        group_id="g",
        group_instance_id="pod-1",
        isolation_level="read_committed",
        max_poll_interval_ms=120_000,
        session_timeout_ms=30_000,
    )
    assert config == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "client.id": "gs-w1",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "user",
        "sasl.password": "secret",
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.certificate.location": "/etc/cert.pem",
        "ssl.key.location": "/etc/key.pem",
        "ssl.key.password": "keypass",
        "ssl.endpoint.identification.algorithm": "none",
        "group.id": "g",
        "group.instance.id": "pod-1",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "max.poll.interval.ms": 120_000,
        "session.timeout.ms": 30_000,
        "heartbeat.interval.ms": 3000,
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.partition.eof": False,
        "statistics.interval.ms": 1000,
    }


def test_producer_settings_and_the_record_limit() -> None:
    plain = KafkaConnection(bootstrap_servers="k:9092")
    config = producer_config(plain, max_record_bytes=2_000_000, transactional_id="t-1")
    assert config == {
        "bootstrap.servers": "k:9092",
        "security.protocol": "plaintext",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "partitioner": "murmur2_random",
        "message.max.bytes": 2_000_000,
        "transactional.id": "t-1",
    }


def test_settings_librdkafka_cannot_take_are_refused() -> None:
    with pytest.raises(ValueError, match="sticky"):
        consumer_config(KafkaConnection("k:9092"), group_id="g", assignment="sticky")
    oauth = KafkaConnection("k:9092", extra={"sasl_oauth_token_provider": object()})
    with pytest.raises(ValueError, match="sasl_oauth_token_provider"):
        producer_config(oauth)
    dotted = KafkaConnection("k:9092", extra={"sasl.oauthbearer.method": "oidc"})
    assert producer_config(dotted)["sasl.oauthbearer.method"] == "oidc"


def test_a_missing_confluent_kafka_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_confluent(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "confluent_kafka":
            raise ImportError("No module named 'confluent_kafka'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_confluent)
    with pytest.raises(DriverUnavailable, match=r"pip install 'guardstream\[confluent\]'"):
        load_driver("confluent")
    assert load_driver("kafka-python").name == "kafka-python"
    with pytest.raises(ValueError, match="unknown kafka driver"):
        load_driver("pykafka")


def test_listener_with_on_event_hands_each_event_over_at_once() -> None:
    seen: list[list[tuple[str, frozenset[Partition]]]] = []
    events = RebalanceEvents(on_event=lambda: seen.append(events.drain()))
    events.on_partitions_assigned({TopicPartition("t", 0), TopicPartition("t", 1)})
    events.on_partitions_revoked({TopicPartition("t", 1)})
    assert seen == [
        [("assigned", frozenset({Partition("t", 0), Partition("t", 1)}))],
        [("revoked", frozenset({Partition("t", 1)}))],
    ]
    assert events.drain() == []


def test_a_transactional_call_that_never_returns_raises_instead_of_wedging() -> None:
    """librdkafka's send_offsets_to_transaction can ignore its timeout when the group
    coordinator goes away (librdkafka #5456): the driver's own deadline turns the hang
    into an error the processor stops on, and passes the timeout down to librdkafka."""
    import threading

    from worker.streaming.drivers.confluent import ConfluentProducer
    from worker.streaming.exceptions import TransactionStalled

    pytest.importorskip("confluent_kafka")
    never = threading.Event()
    timeouts: list[float] = []

    class Hanging:
        def send_offsets_to_transaction(
            self, positions: Any, metadata: Any, timeout: float
        ) -> None:
            timeouts.append(timeout)
            never.wait(30)

        def commit_transaction(self, timeout: float) -> None:
            timeouts.append(timeout)

    producer = ConfluentProducer({"bootstrap.servers": "127.0.0.1:1"}, max_block_s=0.05)
    real = producer._producer
    producer._producer = Hanging()
    try:
        with pytest.raises(TransactionStalled, match="send_offsets_to_transaction"):
            producer.send_offsets_to_transaction({TopicPartition("t", 0): 5}, object())
        producer.commit_transaction()  # a call that returns goes through
        assert timeouts == [0.05, 0.05]
    finally:
        never.set()
        producer._producer = real


@pytest.mark.parametrize("command", [["topics", "ensure"], ["replay"]])
def test_topics_and_replay_without_confluent_kafka_stop_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    from worker.cli import main

    real_import = builtins.__import__

    def no_confluent(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "confluent_kafka":
            raise ImportError("No module named 'confluent_kafka'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_confluent)
    # An unreachable broker: the driver is checked before any connection.
    args = [*command, "--kafka-driver", "confluent", "--kafka-bootstrap-servers", "127.0.0.1:1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "guardstream: KAFKA_DRIVER=confluent needs confluent-kafka: "
        "pip install 'guardstream[confluent]'"
    ]


def test_a_librdkafka_broker_error_gets_the_same_line_as_kafka_pythons() -> None:
    import confluent_kafka
    from kafka.errors import TopicAuthorizationFailedError

    from worker.config import Settings
    from worker.startup_errors import kafka_error_line

    settings = Settings(kafka_bootstrap_servers="k:9092")
    denied = confluent_kafka.KafkaError(
        confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED, "conversations.dlq"
    )
    line = kafka_error_line(confluent_kafka.KafkaException(denied), settings)
    assert line == kafka_error_line(TopicAuthorizationFailedError("conversations.dlq"), settings)
    assert line is not None and "README" in line
    local = confluent_kafka.KafkaError(confluent_kafka.KafkaError._TRANSPORT)
    assert kafka_error_line(confluent_kafka.KafkaException(local), settings) is None


def test_a_consumer_without_a_group_has_no_group_id() -> None:
    config = consumer_config(KafkaConnection("k:9092"), group_id=None)
    assert "group.id" not in config
    consumer = load_driver("confluent").consumer(KafkaConnection("127.0.0.1:1"), group_id=None)
    try:
        assert consumer.config["group_id"] is None  # replay neither resumes nor commits
    finally:
        consumer.close()
