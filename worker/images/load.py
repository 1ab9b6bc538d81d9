"""The image stage as one call: S3 → bytes → RGB → tiles. Safe to run from many threads."""

from __future__ import annotations

import time
from collections.abc import Callable

from schemas.conversation import ImageContent
from worker.images.decode import ImageLimits, decode_image
from worker.images.fetcher import ImageFetcher
from worker.images.preprocess import prepare_image
from worker.images.types import PreparedImage, TilingSpec

LoadObserver = Callable[[int, float], None]
"""Called once per loaded image with the bytes read from S3 and the seconds it took
(fetch + decode + tiling): the images package knows nothing of Prometheus; the worker
passes a callback that counts."""


def load_image(
    fetcher: ImageFetcher,
    item: ImageContent,
    spec: TilingSpec,
    limits: ImageLimits | None = None,
    *,
    draft: bool = True,
    observer: LoadObserver | None = None,
) -> PreparedImage:
    """Raises ImageError subclasses only; ``permanent`` ones dead-letter at stage ``fetch``.

    ``draft`` decodes large JPEGs at reduced scale (faster, near-identical tiles);
    ``limits`` defaults to the fetcher's.
    """
    started = time.monotonic()
    limits = limits or fetcher.limits
    fetched = fetcher.fetch(item)
    image = decode_image(fetched.data, limits, draft_for=spec if draft else None)
    prepared = prepare_image(image, spec, fetched.sha256)
    if observer is not None:
        observer(fetched.size, time.monotonic() - started)
    return prepared
