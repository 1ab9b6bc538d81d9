"""The raw confluent-kafka (librdkafka) echo loop for ``bench overhead``.

The same work as the raw kafka-python loop in ``overhead``: consume → produce each record
→ flush → commit about once a second, with the confluent driver's client settings
(``drivers.confluent_config``), timed from the first consumed record to the last ack.
"""

from __future__ import annotations

import time
from typing import Any


def confluent_echo(settings: Any, input_topic: str, output_topic: str, expected: int) -> float:
    """Seconds from the first record consumed to the last output acknowledged."""
    import confluent_kafka

    from worker.clients import kafka_connection
    from worker.streaming.drivers.confluent_config import consumer_config, producer_config

    conn = kafka_connection(settings)
    consumer = confluent_kafka.Consumer(
        consumer_config(conn, group_id=f"{input_topic}-raw-confluent", session_timeout_ms=10_000)
    )
    producer = confluent_kafka.Producer(producer_config(conn))
    consumer.subscribe([input_topic])
    interval = settings.commit_interval_ms / 1000
    done = 0
    first: float | None = None
    last_commit = time.monotonic()
    deadline = time.monotonic() + 600
    try:
        while done < expected and time.monotonic() < deadline:
            messages = consumer.consume(settings.max_poll_records, 0.1)
            offsets: dict[tuple[str, int], int] = {}
            for message in messages:
                if message.error() is not None:
                    continue
                if first is None:
                    first = time.monotonic()
                producer.produce(output_topic, message.value(), message.key())
                offsets[(str(message.topic()), int(message.partition() or 0))] = (
                    int(message.offset() or 0) + 1
                )
                done += 1
            if offsets:
                producer.flush()
                for (topic, partition), offset in offsets.items():
                    consumer.store_offsets(
                        offsets=[confluent_kafka.TopicPartition(topic, partition, offset)]
                    )
                if time.monotonic() - last_commit >= interval or done >= expected:
                    consumer.commit(asynchronous=False)
                    last_commit = time.monotonic()
        finished = time.monotonic()
    finally:
        consumer.close()
    if done < expected:
        raise TimeoutError(f"the raw confluent loop saw {done} of {expected} records")
    return finished - (first or finished)
