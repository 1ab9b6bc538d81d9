"""Stage ``fetch``: an event's images from S3, decoded and tiled (``worker.images``).

Runs on the fetch threads (``RunTaskInThreads``); an event without images has nothing
to fetch and runs inline in the consumer thread (``needs_no_thread``).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from schemas.conversation import ImageContent
from schemas.dead_letter import ErrorStage
from worker.engine.types import ClassificationRequest
from worker.images.exceptions import ImageError
from worker.images.types import PreparedImage
from worker.streaming.types import Message
from worker.work import DecodedEvent, Failure, FetchedEvent, Work


def fetch_images(
    decoded: DecodedEvent, load_image: Callable[[ImageContent], PreparedImage]
) -> FetchedEvent | Failure:
    """Fetch and tile the event's images (stage ``fetch``); runs on a fetch thread.

    ``load_image`` raises ``ImageError``; a permanent one (or an exhausted retry
    budget) fails the whole event, since its verdict would be incomplete.
    """
    prepared: dict[str, PreparedImage] = {}  # an image repeated in one event is fetched once
    requests = []
    for prompt in decoded.prompts:
        image = None
        if prompt.image is not None:
            uri = prompt.image.s3_uri
            if uri not in prepared:
                try:
                    prepared[uri] = load_image(prompt.image)
                except ImageError as exc:
                    return Failure.from_exception(
                        ErrorStage.FETCH, exc, exc.attempts, decoded.event
                    )
            image = prepared[uri]
        requests.append(ClassificationRequest(prompt, image))
    return FetchedEvent(decoded, tuple(requests))


class Fetch:
    """``fetch_images`` as the worker's fetch step runs it: a log line from the image
    stage (a retry) names the event it is about."""

    def __init__(self, load_image: Callable[[ImageContent], PreparedImage]) -> None:
        self._load_image = load_image

    def __call__(self, message: Message[Work]) -> Work:
        work = message.payload
        if not isinstance(work, DecodedEvent):
            return work
        if not has_images(work):
            return fetch_images(work, self._load_image)  # nothing to fetch: no I/O, no logs
        with structlog.contextvars.bound_contextvars(
            event_id=work.event.event_id,
            conversation_id=work.event.conversation_id,
            topic=message.partition.topic,
            partition=message.partition.index,
            offset=message.offset,
        ):
            return fetch_images(work, self._load_image)


def has_images(work: DecodedEvent) -> bool:
    return any(prompt.image is not None for prompt in work.prompts)


def needs_no_thread(message: Message[Work]) -> bool:
    """Whether the fetch step can run in the consumer thread: nothing to fetch."""
    work = message.payload
    return not isinstance(work, DecodedEvent) or not has_images(work)
