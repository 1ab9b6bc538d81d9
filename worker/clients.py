"""The worker's network clients, built from the settings in one place.

``Worker`` takes them built (a unit test hands it fakes), and the commands that talk to
Kafka without a worker (``topics``, ``replay``, the benchmarks) share
``kafka_connection``. Nothing here starts consuming: a consumer is subscribed by the
processor that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.config import Settings
from worker.streaming.drivers import KafkaDriver, load_driver
from worker.streaming.drivers.kafka_python import KafkaPythonDriver
from worker.streaming.kafka_config import KafkaConnection


@dataclass(frozen=True)
class WorkerClients:
    """A consumer, a producer (transactional in exactly-once mode) and an S3 client, as
    ``Worker`` uses them, and the Kafka driver that built the first two; with known-bad
    image banks (``HASH_BANK_TOPIC``), the bank topic's consumer (a ``BankFollower``'s)."""

    consumer: Any
    producer: Any
    s3: Any
    driver: KafkaDriver = field(default_factory=KafkaPythonDriver)
    bank_consumer: Any = None


def kafka_connection(settings: Settings) -> KafkaConnection:
    """Bootstrap servers, client id and security settings for every Kafka client."""
    return KafkaConnection(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"guardstream-{settings.worker_id}",
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_plain_username=settings.kafka_sasl_username,
        sasl_plain_password=_secret(settings.kafka_sasl_password),
        ssl_cafile=_path(settings.kafka_ssl_cafile),
        ssl_certfile=_path(settings.kafka_ssl_certfile),
        ssl_keyfile=_path(settings.kafka_ssl_keyfile),
        ssl_password=_secret(settings.kafka_ssl_password),
    )


def connect(settings: Settings, *, s3_client: Any = None) -> WorkerClients:
    """Build the worker's clients with the ``KAFKA_DRIVER``: the consumer
    (``read_committed`` in exactly-once mode), the producer, the S3 client
    (``s3_client`` if given), and with ``HASH_BANK_TOPIC`` the bank consumer (kafka-python,
    no group: ``worker.hashbank.build_bank_consumer``). ``DriverUnavailable`` when the
    driver's library is missing."""
    from worker.hashbank import build_bank_consumer
    from worker.images.fetcher import make_s3_client

    driver = load_driver(settings.kafka_driver)
    conn = kafka_connection(settings)
    consumer = driver.consumer(
        conn,
        group_id=settings.group_id,
        group_instance_id=settings.group_instance_id,
        isolation_level="read_committed" if settings.exactly_once else "read_uncommitted",
        max_poll_records=settings.max_poll_records,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        session_timeout_ms=settings.session_timeout_ms,
    )
    producer = driver.producer(
        conn,
        max_record_bytes=settings.max_record_bytes,
        transactional_id=settings.effective_transactional_id if settings.exactly_once else None,
    )
    s3 = s3_client or make_s3_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        max_pool_connections=settings.fetch_concurrency,
    )
    bank_consumer = build_bank_consumer(conn) if settings.hash_bank_topic else None
    return WorkerClients(
        consumer=consumer, producer=producer, s3=s3, driver=driver, bank_consumer=bank_consumer
    )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _path(value: Any) -> str | None:
    return str(value) if value is not None else None
