"""Dead-letter records: the consumed record, byte for byte, plus error headers.

A dead-letter record keeps the original key, value and headers exactly as
consumed and adds the `guardstream.*` headers below (UTF-8 values). The one
exception: a record that would be too large to produce with the added headers
(over the worker's `MAX_RECORD_BYTES`) is sent without the parts named in
`guardstream.omitted`; the original stays at `guardstream.original.*`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

HEADER_PREFIX = "guardstream."
STAGE = "guardstream.error.stage"
ERROR_CLASS = "guardstream.error.class"
ERROR_MESSAGE = "guardstream.error.message"
ORIGINAL_TOPIC = "guardstream.original.topic"
ORIGINAL_PARTITION = "guardstream.original.partition"
ORIGINAL_OFFSET = "guardstream.original.offset"
ORIGINAL_TIMESTAMP = "guardstream.original.timestamp"
ATTEMPTS = "guardstream.attempts"
WORKER = "guardstream.worker"
# Parts of the consumed record not copied because the dead letter would exceed the
# producer's size limit: "value=<bytes>", "headers=<count>", "key=<bytes>", comma separated.
OMITTED = "guardstream.omitted"
# Set by `guardstream replay` on the record it re-drives; survives header stripping.
REPLAY_COUNT = "guardstream.replay.count"

MAX_MESSAGE_CHARS = 1000


class ErrorStage(StrEnum):
    DECODE = "decode"
    VALIDATE = "validate"
    FETCH = "fetch"
    CLASSIFY = "classify"
    PUBLISH = "publish"


class DeadLetterHeaders(BaseModel):
    """The headers guardstream adds to a dead-letter record."""

    model_config = ConfigDict(frozen=True)

    stage: ErrorStage = Field(alias=STAGE)
    error_class: Annotated[str, Field(alias=ERROR_CLASS)]
    error_message: Annotated[str, Field(alias=ERROR_MESSAGE, max_length=MAX_MESSAGE_CHARS)]
    original_topic: Annotated[str, Field(alias=ORIGINAL_TOPIC)]
    original_partition: Annotated[int, Field(alias=ORIGINAL_PARTITION, ge=0)]
    original_offset: Annotated[int, Field(alias=ORIGINAL_OFFSET, ge=0)]
    original_timestamp: Annotated[int, Field(alias=ORIGINAL_TIMESTAMP, description="ms epoch")]
    attempts: Annotated[int, Field(alias=ATTEMPTS, ge=1)]
    worker: Annotated[str, Field(alias=WORKER)]
    omitted: Annotated[
        str | None,
        Field(
            alias=OMITTED,
            description="Parts of the consumed record not copied (too large), e.g. "
            "'value=1048400'; absent when the record is copied whole.",
        ),
    ] = None

    def to_kafka_headers(self) -> list[tuple[str, bytes]]:
        return [
            (name, str(value).encode("utf-8"))
            for name, value in self.model_dump(
                by_alias=True, mode="json", exclude_none=True
            ).items()
        ]

    @classmethod
    def from_kafka_headers(cls, headers: list[tuple[str, bytes]]) -> DeadLetterHeaders:
        values = {
            name: value.decode("utf-8", errors="replace")
            for name, value in headers
            if name.startswith(HEADER_PREFIX)
        }
        return cls.model_validate(values)


def truncate_message(message: str) -> str:
    """Error messages go into a header: keep them short."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"
