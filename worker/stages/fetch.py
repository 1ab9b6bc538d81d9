"""Stage ``fetch``: an event's images from S3, decoded and tiled (``worker.images``),
and, with known-bad image banks, hashed (by the loader) and looked up in the bank.

Runs on the fetch threads (``RunTaskInThreads``); an event without images has nothing
to fetch and runs inline in the consumer thread (``needs_no_thread``).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from schemas.conversation import ImageContent
from schemas.dead_letter import ErrorStage
from worker.engine.types import ClassificationRequest
from worker.hashbank.bank import BankMatch
from worker.hashbank.hashing import ImageHashes
from worker.hashbank.matching import HashMatchAction, skips_model
from worker.images.exceptions import ImageError
from worker.images.types import PreparedImage
from worker.streaming.types import Message
from worker.work import DecodedEvent, Failure, FetchedEvent, Work

ImageMatcher = Callable[[ImageHashes], BankMatch | None]
"""An image's hashes → the bank entry they match (``partial(match_image, bank)``)."""


def fetch_images(
    decoded: DecodedEvent,
    load_image: Callable[[ImageContent], PreparedImage],
    match: ImageMatcher | None = None,
    action: HashMatchAction = "block",
) -> FetchedEvent | Failure:
    """Fetch and tile the event's images (stage ``fetch``); runs on a fetch thread.

    ``load_image`` raises ``ImageError``; a permanent one (or an exhausted retry
    budget) fails the whole event, since its verdict would be incomplete. ``match``
    (banks on): each image is looked up once; with ``action`` ``block`` a matched
    image's request skips the model.
    """
    prepared: dict[str, PreparedImage] = {}  # an image repeated in one event is fetched once
    found: dict[str, BankMatch | None] = {}
    requests = []
    matches: list[BankMatch | None] = []
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
                hashes = prepared[uri].hashes
                found[uri] = match(hashes) if match is not None and hashes is not None else None
            image = prepared[uri]
        requests.append(ClassificationRequest(prompt, image))
        matches.append(found.get(prompt.image.s3_uri) if prompt.image is not None else None)
    if match is None:
        return FetchedEvent(decoded, tuple(requests))
    return FetchedEvent(
        decoded,
        tuple(requests),
        matches=tuple(matches),
        skips=tuple(skips_model(action, m) for m in matches),
    )


class Fetch:
    """``fetch_images`` as the worker's fetch step runs it: a log line from the image
    stage (a retry) names the event it is about."""

    def __init__(
        self,
        load_image: Callable[[ImageContent], PreparedImage],
        match: ImageMatcher | None = None,
        action: HashMatchAction = "block",
    ) -> None:
        self._load_image = load_image
        self._match = match
        self._action = action

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
            return fetch_images(work, self._load_image, self._match, self._action)


def has_images(work: DecodedEvent) -> bool:
    return any(prompt.image is not None for prompt in work.prompts)


def needs_no_thread(message: Message[Work]) -> bool:
    """Whether the fetch step can run in the consumer thread: nothing to fetch."""
    work = message.payload
    return not isinstance(work, DecodedEvent) or not has_images(work)
