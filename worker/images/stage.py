"""The image stage as one call: S3 → bytes → RGB → tiles. Safe to run from many threads."""

from __future__ import annotations

from schemas.conversation import ImageContent
from worker.images.decode import ImageLimits, decode_image
from worker.images.fetcher import ImageFetcher
from worker.images.preprocess import prepare_image
from worker.images.types import PreparedImage, TilingSpec


def fetch_and_prepare(
    fetcher: ImageFetcher,
    item: ImageContent,
    spec: TilingSpec,
    limits: ImageLimits | None = None,
    *,
    draft: bool = True,
) -> PreparedImage:
    """Raises ImageError subclasses only; ``permanent`` ones dead-letter at stage ``fetch``.

    ``draft`` decodes large JPEGs at reduced scale (faster, near-identical tiles);
    ``limits`` defaults to the fetcher's.
    """
    limits = limits or fetcher.limits
    fetched = fetcher.fetch(item)
    image = decode_image(fetched.data, limits, draft_for=spec if draft else None)
    return prepare_image(image, spec, fetched.sha256)
