"""A memory budget for decoded pixels: fetch threads wait instead of allocating.

A 40 MP PNG cannot be draft-decoded: its pixels (4 bytes each in PIL) and their RGB copy
take ~320 MB until it is tiled. Sixteen fetch threads meeting a burst of those would
allocate 5 GB at once. ``DecodeBudget`` counts the bytes that decodes in flight may hold
(estimated from the header, ``decode.decoded_bytes``) and makes a thread wait until its
image fits. One image larger than the whole budget still runs, alone: nothing waits
forever. Small images (and drafted JPEGs) cost little and rarely wait.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from worker.images.decode import ImageLimits, decode_image, decoded_bytes
from worker.images.preprocess import prepare_image
from worker.images.types import PreparedImage, TilingSpec

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def unmap_large_frees(threshold_bytes: int = 4 << 20) -> bool:
    """Make freed pixel memory go back to the OS, or the budget bounds nothing.

    glibc raises its mmap threshold after the first large free (up to 32 MB), so PIL's
    16 MB image blocks then come from per-thread arenas that keep them: RSS becomes the
    sum of every fetch thread's largest image, budget or not (measured: a burst of 40 MP
    PNGs through 16 threads grew RSS by 2.6 GB with an 800 MB budget). A fixed threshold,
    what ``MALLOC_MMAP_THRESHOLD_`` does, maps each large block on its own and unmaps it
    on free. Returns False where there is no glibc (the budget still counts, RSS may not
    follow).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False


#: Bytes per pixel of the budget's default: PIL's 4-byte storage plus the RGB copy.
DECODE_BYTES_PER_PIXEL = 8


def default_budget_bytes(max_pixels: int) -> int:
    """Two of the largest images the pixel limit admits in flight at once."""
    return 2 * max_pixels * DECODE_BYTES_PER_PIXEL


class DecodeBudget:
    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("a decode budget needs a positive size")
        self.max_bytes = max_bytes
        self._in_use = 0
        self._cond = threading.Condition()
        self.waits = 0
        """How often a thread had to wait (for tests and metrics)."""
        self.peak = 0
        """The most bytes reserved at once."""

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._in_use

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        nbytes = max(0, nbytes)
        with self._cond:
            if not self._fits(nbytes):
                self.waits += 1
                self._cond.wait_for(lambda: self._fits(nbytes))
            self._in_use += nbytes
            self.peak = max(self.peak, self._in_use)
        try:
            yield
        finally:
            with self._cond:
                self._in_use -= nbytes
                self._cond.notify_all()

    def _fits(self, nbytes: int) -> bool:
        # Larger than the whole budget: admitted once nothing else holds any.
        return self._in_use + nbytes <= self.max_bytes or self._in_use == 0


def decode_and_prepare(
    data: bytes,
    limits: ImageLimits,
    tiling: TilingSpec,
    sha256: str,
    *,
    draft: bool = True,
    budget: DecodeBudget | None = None,
    hasher: Callable[[Image.Image, bytes], Any] | None = None,
) -> PreparedImage:
    """``decode_image`` then ``prepare_image``; with a ``budget``, the decoded pixels
    are reserved before they are allocated and released once the tiles exist (the
    full-size image is gone by then). The result is the same either way. ``hasher``
    (known-bad image banks on) hashes the decoded image and the bytes, carried on the
    result as ``hashes``."""
    draft_for = tiling if draft else None
    if budget is None:
        image = decode_image(data, limits, draft_for=draft_for)
        return _hashed(prepare_image(image, tiling, sha256), image, data, hasher)
    with budget.reserve(decoded_bytes(data, limits, draft_for)):
        image = decode_image(data, limits, draft_for=draft_for)
        prepared = _hashed(prepare_image(image, tiling, sha256), image, data, hasher)
        del image  # before the reservation ends, not when the frame does
    return prepared


def _hashed(
    prepared: PreparedImage,
    image: Image.Image,
    data: bytes,
    hasher: Callable[[Image.Image, bytes], Any] | None,
) -> PreparedImage:
    if hasher is None:
        return prepared
    return dataclasses.replace(prepared, hashes=hasher(image, data))
