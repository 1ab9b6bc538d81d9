"""The worker's network clients, built from the settings in one place.

``Worker`` takes them built (a unit test hands it fakes), and the commands that talk to
Kafka without a worker (``topics``, ``replay``, the benchmarks) share
``kafka_connection``. Nothing here starts consuming: a consumer is subscribed by the
processor that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.config import Settings
from worker.streaming.kafka_config import KafkaConnection, consumer_kwargs, producer_kwargs


@dataclass(frozen=True)
class WorkerClients:
    """A KafkaConsumer, a KafkaProducer (transactional in exactly-once mode) and an S3
    client, as ``Worker`` uses them."""

    consumer: Any
    producer: Any
    s3: Any


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
    """Build the worker's clients: the consumer (``read_committed`` in exactly-once mode),
    the producer, and the S3 client (``s3_client`` if given)."""
    from kafka import KafkaConsumer, KafkaProducer

    from worker.images.fetcher import make_s3_client

    conn = kafka_connection(settings)
    consumer = KafkaConsumer(
        **consumer_kwargs(
            conn,
            group_id=settings.group_id,
            group_instance_id=settings.group_instance_id,
            isolation_level="read_committed" if settings.exactly_once else "read_uncommitted",
            max_poll_records=settings.max_poll_records,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
        )
    )
    producer = KafkaProducer(
        **producer_kwargs(
            conn,
            max_request_size=settings.max_record_bytes,
            transactional_id=settings.effective_transactional_id if settings.exactly_once else None,
        )
    )
    s3 = s3_client or make_s3_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        max_pool_connections=settings.fetch_concurrency,
    )
    return WorkerClients(consumer=consumer, producer=producer, s3=s3)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _path(value: Any) -> str | None:
    return str(value) if value is not None else None
