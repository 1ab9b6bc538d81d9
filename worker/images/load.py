"""The image stage as one call: S3 → bytes → RGB → tiles. Safe to run from many threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image

from schemas.conversation import ImageContent
from worker.images.budget import DecodeBudget, decode_and_prepare
from worker.images.decode import ImageLimits
from worker.images.fetcher import ImageFetcher
from worker.images.types import PreparedImage, TilingSpec

if TYPE_CHECKING:
    from worker.hashbank.hashing import ImageHashes

LoadObserver = Callable[[int, float], None]
"""Called once per loaded image with the bytes read from S3 and the seconds it took
(fetch + decode + tiling): the images package knows nothing of Prometheus; the worker
passes a callback that counts."""

Hasher = Callable[[Image.Image, bytes], "ImageHashes"]
"""The decoded image and its bytes → their hashes (``worker.hashbank.hash_image``)."""


def load_image(
    fetcher: ImageFetcher,
    item: ImageContent,
    spec: TilingSpec,
    limits: ImageLimits | None = None,
    *,
    draft: bool = True,
    observer: LoadObserver | None = None,
    budget: DecodeBudget | None = None,
    hasher: Hasher | None = None,
) -> PreparedImage:
    """Raises ImageError subclasses only; ``permanent`` ones dead-letter at stage ``fetch``.

    ``draft`` decodes large JPEGs at reduced scale (faster, near-identical tiles);
    ``limits`` defaults to the fetcher's. With a ``budget`` the thread waits, after the
    fetch and before decoding, until the image's decoded pixels fit in it. ``hasher``
    (known-bad image banks on) hashes the decoded image and the bytes, carried on the
    result as ``hashes``.
    """
    started = time.monotonic()
    limits = limits or fetcher.limits
    fetched = fetcher.fetch(item)
    prepared = decode_and_prepare(
        fetched.data, limits, spec, fetched.sha256, draft=draft, budget=budget, hasher=hasher
    )
    if observer is not None:
        observer(fetched.size, time.monotonic() - started)
    return prepared
