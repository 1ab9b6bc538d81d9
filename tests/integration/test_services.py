"""Smoke tests for the local services started by `scripts/services up`.

They prove that the broker and the S3 server behave like the real thing for
what guardstream needs: consumer groups, headers, transactions with
read_committed isolation, path-style S3 and signature checking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="gs-test-admin")
    try:
        admin.create_topics([NewTopic(name=name, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


def _drain(consumer: KafkaConsumer, want: int, timeout_s: float = 30.0) -> list[Any]:
    """Poll until `want` records arrived or the timeout passed; return them all."""
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(records) < want:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def test_kafka_produce_consume_roundtrip(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("roundtrip")
    _create_topic(kafka_bootstrap, topic)

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(
            topic,
            key=b"k-1",
            value=b"hello guardstream",
            headers=[("content-type", b"text/plain"), ("trace-id", b"abc123")],
        ).get(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name("group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        records = _drain(consumer, want=1)
        assert len(records) == 1
        rec = records[0]
        assert rec.key == b"k-1"
        assert rec.value == b"hello guardstream"
        assert list(rec.headers) == [("content-type", b"text/plain"), ("trace-id", b"abc123")]

        # The group coordinator stores offsets (needs __consumer_offsets).
        consumer.commit()
        tp = TopicPartition(topic, rec.partition)
        assert consumer.committed(tp) == rec.offset + 1
    finally:
        consumer.close()


def test_kafka_transactions_read_committed(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("txn")
    _create_topic(kafka_bootstrap, topic)

    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=unique_name("txn-id"),
        enable_idempotence=True,
        acks="all",
    )
    try:
        producer.init_transactions()

        producer.begin_transaction()
        producer.send(topic, key=b"a", value=b"committed-1")
        producer.commit_transaction()

        producer.begin_transaction()
        producer.send(topic, key=b"b", value=b"aborted")
        producer.flush()  # the record really reaches the log before the abort
        producer.abort_transaction()

        producer.begin_transaction()
        producer.send(topic, key=b"c", value=b"committed-2")
        producer.commit_transaction()
    finally:
        producer.close()

    def read(isolation: str, want: int) -> list[bytes]:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=unique_name(isolation),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level=isolation,
        )
        try:
            records = _drain(consumer, want=want, timeout_s=15 if want > 2 else 30)
            # Give a straggler (e.g. an aborted record leaking through) a chance.
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
            return [r.value for r in records]
        finally:
            consumer.close()

    assert read("read_committed", want=2) == [b"committed-1", b"committed-2"]
    # Control: the aborted record is in the log, only hidden by the isolation level.
    assert read("read_uncommitted", want=3) == [b"committed-1", b"aborted", b"committed-2"]


def test_s3_put_get_roundtrip(
    s3_client: Callable[..., Any], unique_name: Callable[[str], str]
) -> None:
    s3 = s3_client()
    bucket = unique_name("bucket")
    key = "images/2024/01/frame.png"
    body = bytes(range(256)) * 64

    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["ContentType"] == "image/png"
        assert got["ContentLength"] == len(body)
        listed = s3.list_objects_v2(Bucket=bucket)
        assert [o["Key"] for o in listed.get("Contents", [])] == [key]
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)


def test_s3_rejects_wrong_secret(
    s3_client: Callable[..., Any], unique_name: Callable[[str], str]
) -> None:
    good = s3_client()
    bucket = unique_name("authz")
    good.create_bucket(Bucket=bucket)
    try:
        bad = s3_client(secret_key="definitely-not-the-secret")
        calls: list[Callable[[], object]] = [
            lambda: bad.list_buckets(),
            lambda: bad.put_object(Bucket=bucket, Key="x", Body=b"nope"),
            lambda: bad.get_object(Bucket=bucket, Key="x"),
        ]
        for call in calls:
            with pytest.raises(ClientError) as excinfo:
                call()
            err = excinfo.value.response
            assert (
                err["Error"]["Code"] == "SignatureDoesNotMatch"
                or err["ResponseMetadata"]["HTTPStatusCode"] == 403
            ), err
        # Nothing was written by the refused put.
        assert good.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    finally:
        good.delete_bucket(Bucket=bucket)
