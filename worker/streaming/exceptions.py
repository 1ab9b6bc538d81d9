"""Exceptions of the stream-processing layer.

Backpressure is signalled with an exception (``MessageRejected``) rather than a
return value so that a step deep in the chain can refuse work and the refusal
travels back up to the consumer loop without every step checking results.
"""

from __future__ import annotations


class StreamingError(Exception):
    """Base class of everything this package raises on purpose."""


class MessageRejected(StreamingError):
    """The step is full: retry the same message later, after ``poll()``.

    Not an error. The consumer loop pauses the partitions and keeps polling
    Kafka (so the member stays in the group) until the step accepts it.
    """


class InvalidState(StreamingError):
    """A step or the offset tracker was used out of protocol (a bug)."""


class CommitFailed(StreamingError):
    """An offset commit was refused for a transient reason.

    Typically a rebalance in progress or a generation that moved on. Nothing is
    lost: either a later commit covers the same offsets, or the partition went
    to another member which re-processes from the last committed offset
    (at-least-once).
    """


class ProduceFailed(StreamingError):
    """A record could not be written even after the producer's own retries."""


class KafkaClientStalled(StreamingError):
    """A kafka-python consumer call outlived its own timeout by ``stall_timeout_s``.

    Its I/O thread is dead or wedged: the client cannot recover, so the
    processor stops with this error (the process should exit non-zero and be
    restarted) instead of hanging.
    """


class TransactionStalled(StreamingError):
    """A transactional producer call did not return within its deadline.

    librdkafka can leave ``send_offsets_to_transaction`` waiting forever when the group
    coordinator goes away under it. The transaction cannot be trusted to finish: the
    processor stops without committing, the restarted worker fences it."""
