"""PDQ and MD5 of one image (pure; no I/O).

PDQ comes from ``pdqhash`` (Cython bindings to Meta's C++ reference, not re-implemented
here). Like Meta's reference hasher (``pdq/cpp/io/pdqio.cpp``), an image larger than
512 pixels on a side is first resized to 512×512: the full-size Jarosz filters cost
~0.8 s on a 12 MP photo, and PDQ downsamples to 64×64 regardless.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pdqhash  # type: ignore[import-untyped]  # no stubs: compute() -> (bits, quality)
from PIL import Image

PDQ_BITS = 256
# Meta's reference: images above this size are resized to DOWNSAMPLE_DIMS × DOWNSAMPLE_DIMS.
DOWNSAMPLE_DIMS = 512


@dataclass(frozen=True)
class ImageHashes:
    pdq: str
    """64 lower-case hex digits, the bit order of Meta's tools (``hashtool256``)."""
    pdq_quality: int
    """0..100: how much structure the image has; low-quality hashes match too easily."""
    md5: str
    """Of the bytes as stored (exact re-uploads)."""


def hash_image(image: Image.Image, data: bytes) -> ImageHashes:
    """The hashes of a decoded RGB ``image`` and the ``data`` it was decoded from."""
    pdq, quality = pdq_hash(image)
    return ImageHashes(pdq=pdq, pdq_quality=quality, md5=md5_hex(data))


def pdq_hash(image: Image.Image) -> tuple[str, int]:
    """PDQ hex and quality of ``image`` (any mode; converted to RGB)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.width > DOWNSAMPLE_DIMS or image.height > DOWNSAMPLE_DIMS:
        # BOX averages every source pixel (no aliasing from grain or edges).
        image = image.resize((DOWNSAMPLE_DIMS, DOWNSAMPLE_DIMS), Image.Resampling.BOX)
    bits, quality = pdqhash.compute(np.asarray(image))
    return bits_to_hex(bits), int(quality)


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 bits (first = most significant) → the canonical 64-digit hex."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def md5_hex(data: bytes) -> str:
    # Not a security use: MD5 is what hash-sharing programmes exchange for exact copies.
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
