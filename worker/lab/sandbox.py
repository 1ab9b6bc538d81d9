"""A lab on the real services: private topics and a bucket for one test, benchmark
run or demo, and the worker settings that point at them.

``Lab(settings)`` takes the connection settings (``GUARDSTREAM_*``: bootstrap servers,
security, S3 endpoint) and names everything it creates after ``name``. Its own topic
set is ``<name>.in``, ``.out``, ``.review`` and ``.dlq`` with group ``<name>-group`` (``create``
makes it); a benchmark that compares two runs asks for more with ``topic_set(label)``.
Nothing is deleted unless ``close`` is called.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.config import Settings
from worker.lab.events import encode_event, record_key
from worker.lab.outputs import (
    Outputs,
    count_records,
    output_consumer,
    read_outputs,
    read_to_end,
    read_values,
)

Headers = Sequence[tuple[str, bytes]]
Record = tuple[bytes | None, bytes | None]

# Producing a large backlog fast: batched, one broker ack (the worker's own producer
# is the durable one).
BULK_PRODUCER = {
    "acks": 1,
    "linger_ms": 20,
    "batch_size": 512 * 1024,
    "max_request_size": 8 * 1024 * 1024,
}


@dataclass(frozen=True)
class TopicSet:
    """One worker's input, output, review and dead-letter topics, and its consumer group."""

    name: str
    partitions: int = 1

    @property
    def input(self) -> str:
        return f"{self.name}.in"

    @property
    def output(self) -> str:
        return f"{self.name}.out"

    @property
    def review(self) -> str:
        return f"{self.name}.review"

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    @property
    def group(self) -> str:
        return f"{self.name}-group"

    @property
    def names(self) -> tuple[str, str, str, str]:
        return (self.input, self.output, self.review, self.dlq)


class Lab:
    """Private topics and a bucket on the real Kafka and S3 services."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str | None = None,
        partitions: int = 1,
        bucket: str | None = None,
        s3: Any = None,
        defaults: Mapping[str, Any] | None = None,
        on_cleanup_error: Callable[[str], None] | None = None,
    ) -> None:
        """``bucket``: an existing or shared bucket (default: one named like the lab).
        ``defaults``: settings every ``worker_settings`` call starts from (a test
        profile, say). ``s3``: the client for uploads (default: one from ``settings``)."""
        self.settings = settings
        self.name = name or f"gs-lab-{uuid.uuid4().hex[:10]}"
        self.topics = TopicSet(self.name, partitions)
        self.bucket = bucket or self.name
        self.defaults = dict(defaults or {})
        self.created_topics: list[str] = []
        self._s3 = s3
        self._bucket_state: str | None = None  # None, "created" or "existed"
        self._on_cleanup_error = on_cleanup_error

    # --- names -------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers

    @property
    def partitions(self) -> int:
        return self.topics.partitions

    @property
    def input_topic(self) -> str:
        return self.topics.input

    @property
    def output_topic(self) -> str:
        return self.topics.output

    @property
    def dlq_topic(self) -> str:
        return self.topics.dlq

    @property
    def review_topic(self) -> str:
        return self.topics.review

    def kafka(self) -> dict[str, Any]:
        """kafka-python kwargs for the lab's own clients (security included)."""
        return self._connection().common_kwargs()

    # --- creating ----------------------------------------------------------------

    def create(self, *, bucket: bool = True) -> Lab:
        """Create the lab's topic set (and its bucket); returns the lab."""
        self.create_topics(self.topics.names, self.partitions)
        if bucket:
            self.ensure_bucket()
        return self

    def topic_set(self, label: str, partitions: int | None = None) -> TopicSet:
        """Another topic set, ``<name>-<label>.*``, created now."""
        topics = TopicSet(f"{self.name}-{label}", partitions or self.partitions)
        self.create_topics(topics.names, topics.partitions)
        return topics

    def create_topics(self, names: Sequence[str], partitions: int | None = None) -> None:
        from worker.streaming.topics import TopicSpec, ensure_topics

        admin = self._admin()
        try:
            ensure_topics(admin, [TopicSpec(n, partitions or self.partitions) for n in names])
        finally:
            admin.close()
        self.created_topics.extend(names)

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            from worker.images.fetcher import make_s3_client

            self._s3 = make_s3_client(
                self.settings.s3_endpoint_url, self.settings.s3_region, max_pool_connections=8
            )
        return self._s3

    def ensure_bucket(self) -> str:
        """Create the bucket unless it exists (a shared one may)."""
        if self._bucket_state is None:
            try:
                self.s3.create_bucket(Bucket=self.bucket)
                self._bucket_state = "created"
            except Exception as exc:  # servers differ in which of the two they answer
                if not any(
                    code in str(exc) for code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
                ):
                    raise
                self._bucket_state = "existed"
        return self.bucket

    def put_image(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Upload one object to the lab's bucket; returns its s3:// URI."""
        self.ensure_bucket()
        extra = {"ContentType": content_type} if content_type else {}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        return f"s3://{self.bucket}/{key}"

    def put_images(
        self, images: Iterable[tuple[str, bytes]], content_type: str | None = None
    ) -> list[str]:
        return [self.put_image(key, data, content_type) for key, data in images]

    # --- writing -----------------------------------------------------------------

    def produce(
        self,
        values: Iterable[bytes | None],
        keys: Iterable[bytes | None] | None = None,
        *,
        topic: str | None = None,
        headers: Headers = (),
        bulk: bool = False,
    ) -> list[tuple[int, int]]:
        """Write raw values (keys default to ``k<index>``); see ``produce_records``."""
        if keys is None:
            records: Iterable[Record] = ((f"k{i}".encode(), v) for i, v in enumerate(values))
        else:
            records = zip(keys, values, strict=True)
        return self.produce_records(records, topic=topic, headers=headers, bulk=bulk)

    def produce_events(
        self, events: Iterable[Mapping[str, Any]], *, topic: str | None = None, bulk: bool = False
    ) -> list[tuple[int, int]]:
        """Write event documents, keyed by their conversation id."""
        records = ((record_key(event), encode_event(event)) for event in events)
        return self.produce_records(records, topic=topic, bulk=bulk)

    def produce_records(
        self,
        records: Iterable[Record],
        *,
        topic: str | None = None,
        headers: Headers = (),
        bulk: bool = False,
    ) -> list[tuple[int, int]]:
        """Write (key, value) records to ``topic`` (default: the lab's input topic);
        returns each one's (partition, offset), in order. ``bulk``: batched, one broker
        ack, records up to 8 MiB: for large backlogs."""
        from kafka import KafkaProducer

        options: dict[str, Any] = dict(BULK_PRODUCER) if bulk else {"acks": "all"}
        producer = KafkaProducer(**self.kafka(), **options)
        try:
            futures = [
                producer.send(
                    topic or self.input_topic, key=key, value=value, headers=list(headers)
                )
                for key, value in records
            ]
            producer.flush()
            written = [future.get(timeout=30) for future in futures]
        finally:
            producer.close()
        return [(metadata.partition, metadata.offset) for metadata in written]

    # --- the worker's settings ---------------------------------------------------

    def wiring(self, topics: TopicSet | None = None) -> dict[str, Any]:
        """The settings that point a worker at ``topics`` (default: the lab's own)."""
        topics = topics or self.topics
        return {
            "kafka_bootstrap_servers": self.bootstrap,
            "s3_endpoint_url": self.settings.s3_endpoint_url,
            "input_topic": topics.input,
            "output_topic": topics.output,
            "review_topic": topics.review,
            "dlq_topic": topics.dlq,
            "group_id": topics.group,
            "metrics_port": 0,
        }

    def worker_settings(self, topics: TopicSet | None = None, **overrides: Any) -> Settings:
        """The connection settings, the lab's ``defaults``, the topics' wiring, then
        ``overrides``; a fresh ``worker_id`` unless one of them sets it."""
        values = self.settings.model_dump()
        values.update(worker_id=f"lab-{uuid.uuid4().hex[:6]}", session_timeout_ms=10_000)
        values.update(self.defaults)
        values.update(self.wiring(topics))
        values.update(overrides)
        return Settings(**values)

    # --- reading -----------------------------------------------------------------

    def output_consumer(
        self, topics: TopicSet | None = None, *, isolation_level: str = "read_uncommitted"
    ) -> tuple[Any, list[Any]]:
        return output_consumer(self.kafka(), topics or self.topics, isolation_level=isolation_level)

    def read_outputs(
        self,
        expected: int | None = None,
        timeout_s: float = 60.0,
        *,
        topics: TopicSet | None = None,
        isolation_level: str = "read_uncommitted",
        on_poll: Callable[[Outputs], None] | None = None,
    ) -> Outputs:
        """See ``worker.lab.outputs.read_outputs``: until ``expected`` are accounted
        for, or (``expected`` None) everything up to the current end."""
        return read_outputs(
            self.kafka(),
            topics or self.topics,
            expected,
            timeout_s,
            isolation_level=isolation_level,
            on_poll=on_poll,
        )

    def read_to_end(
        self, topic: str, *, isolation_level: str = "read_uncommitted", timeout_s: float = 60.0
    ) -> list[Any]:
        """Every record of ``topic`` (all partitions) up to its current end."""
        return read_to_end(
            self.kafka(), topic, isolation_level=isolation_level, timeout_s=timeout_s
        )

    def count_records(self, topics: Sequence[str]) -> int:
        return count_records(self.kafka(), list(topics))

    def read_values(self, topic: str, expected: int, timeout_s: float = 60.0) -> list[bytes]:
        return read_values(self.kafka(), topic, expected, timeout_s)

    # --- cleaning up -------------------------------------------------------------

    def close(self) -> None:
        """Best effort: delete the topics created, and the bucket if the lab made it."""
        try:
            admin = self._admin()
            try:
                admin.delete_topics(self.created_topics)
            finally:
                admin.close()
        except Exception as exc:
            self._cleanup_error(f"could not delete topics: {exc}")
        if self._bucket_state == "created":
            try:
                listing = self.s3.list_objects_v2(Bucket=self.bucket)
                for item in listing.get("Contents", []):
                    self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
                self.s3.delete_bucket(Bucket=self.bucket)
            except Exception as exc:
                self._cleanup_error(f"could not delete bucket {self.bucket}: {exc}")

    def _cleanup_error(self, text: str) -> None:
        if self._on_cleanup_error is not None:
            self._on_cleanup_error(text)

    def _admin(self) -> Any:
        """The admin of the settings' ``KAFKA_DRIVER``."""
        from worker.streaming.drivers import load_driver

        return load_driver(self.settings.kafka_driver).admin(self._connection())

    def _connection(self) -> Any:
        from worker.clients import kafka_connection

        return kafka_connection(self.settings)
