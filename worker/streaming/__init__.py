"""Generic stream processing on kafka-python 3 (modelled on getsentry/arroyo).

A pipeline is a chain of ``ProcessingStep``s driven by ``StreamProcessor``:
the consumer loop submits each record as a ``Message``; a full step raises
``MessageRejected`` and the loop pauses the partitions instead of blocking;
terminal steps mark offsets done in an ``OffsetTracker`` and commit its
watermarks (``CommitOffsets``, at-least-once) or commit them inside a Kafka
transaction (``TransactionalProduceAndCommit``, exactly-once). Nothing here
knows about models, images or event schemas.
"""

from worker.streaming.consumer import KafkaPayload, ProcessorStats, StreamProcessor
from worker.streaming.exceptions import (
    CommitFailed,
    InvalidState,
    KafkaClientStalled,
    MessageRejected,
    ProduceFailed,
    StreamingError,
)
from worker.streaming.kafka_commit import kafka_commit
from worker.streaming.offsets import OffsetTracker
from worker.streaming.types import (
    Commit,
    Headers,
    Lease,
    Message,
    OutgoingRecord,
    Partition,
    ProcessingStep,
)
from worker.streaming.watchdog import StallWatchdog

__all__ = [
    "Commit",
    "CommitFailed",
    "Headers",
    "InvalidState",
    "KafkaClientStalled",
    "KafkaPayload",
    "Lease",
    "Message",
    "MessageRejected",
    "OffsetTracker",
    "OutgoingRecord",
    "Partition",
    "ProcessingStep",
    "ProcessorStats",
    "ProduceFailed",
    "StallWatchdog",
    "StreamProcessor",
    "StreamingError",
    "kafka_commit",
]
