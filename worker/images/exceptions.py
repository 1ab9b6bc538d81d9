"""Why an image could not be used.

``permanent`` tells the pipeline what to do: a permanent error dead-letters the event
(stage ``fetch``, ``attempts`` as recorded here); a non-permanent one means "wait and
try again later". The fetcher retries transient S3 failures itself and raises
``FetchRetriesExhausted`` (permanent) once its budget is spent, so callers only ever
see ``TransientFetchError`` if they call the single-attempt helpers directly.

Messages name buckets, keys and sizes, never image content.
"""

from __future__ import annotations


class ImageError(Exception):
    """Base of every image-stage failure."""

    permanent: bool = True

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class InvalidImageUri(ImageError):
    """Not a strict ``s3://bucket/key`` URI (or one crafted to be read two ways)."""


class BucketNotAllowed(ImageError):
    """The bucket is not in ``ALLOWED_BUCKETS``."""


class ObjectNotFound(ImageError):
    """No such key, or no such bucket."""


class AccessDenied(ImageError):
    """S3 refused this object to our credentials."""


class FetchRejected(ImageError):
    """Any other client error S3 will keep returning (400 and friends)."""


class ImageTooLarge(ImageError):
    """The object is larger than ``max_bytes``."""

    def __init__(self, size: int | None, limit: int) -> None:
        shown = f"{size} bytes" if size is not None else "more bytes"
        super().__init__(f"object is {shown}, over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class TooManyPixels(ImageError):
    """Width × height over ``max_pixels``: refused from the header, before decoding."""

    def __init__(self, width: int | None, height: int | None, limit: int) -> None:
        if width is None or height is None:  # PIL's own hard limit tripped first
            super().__init__(f"image dimensions exceed the decoder's limit (and {limit} pixels)")
        else:
            super().__init__(f"image is {width}×{height} = {width * height} pixels, over {limit}")
        self.width = width
        self.height = height
        self.limit = limit


class UnsupportedImageFormat(ImageError):
    """Not one of the accepted formats (whatever the key's extension says)."""


class UndecodableImage(ImageError):
    """Claims an accepted format but cannot be decoded (empty, truncated, corrupt)."""


class ChecksumMismatch(ImageError):
    """The bytes' sha256 differs from the event's."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 is {actual}, event says {expected}")
        self.expected = expected
        self.actual = actual


class TransientFetchError(ImageError):
    """One failed attempt that may succeed later (throttling, 5xx, network)."""

    permanent = False


class FetchRetriesExhausted(ImageError):
    """Transient failures outlasted the retry budget; the event is dead-lettered."""

    def __init__(
        self, uri: str, attempts: int, elapsed_s: float, last_error: BaseException
    ) -> None:
        super().__init__(
            f"{uri}: gave up after {attempts} attempts in {elapsed_s:.1f} s; "
            f"last error: {type(last_error).__name__}: {last_error}",
            attempts=attempts,
        )
        self.elapsed_s = elapsed_s
        self.last_error = last_error
