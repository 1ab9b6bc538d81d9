"""Untrusted bytes → an 8-bit RGB PIL image, refusing what is not a safe, accepted image.

Order matters: the format is sniffed from the bytes (only the accepted decoders are
even tried, so an SVG, HTML page or ZIP named ``.jpg`` is refused), then width×height
is checked from the header, and only then are pixels decoded.

Choices, to give the model what Meta's reference usage gives it:
- No EXIF orientation: the model card and llama-models feed ``Image.open(...)`` to the
  processor as stored; transformers only applies ``exif_transpose`` when it loads a
  path/URL itself. A rotated photo is classified as stored, like the reference does.
- Animated GIF/WebP/PNG: the first frame, which is what ``Image.open`` yields.
- Colour: transformers' ``convert_to_rgb`` (alpha over white); 16-bit greyscale is
  narrowed to 8 bits first (see ``color.narrow_wide_greyscale``).
- JPEGs much larger than their resize target are decoded at 1/2, 1/4 or 1/8 scale by
  libjpeg (``draft``), never below the target size. The planned canvas and target are
  unchanged; pixels differ slightly from a full decode (see ``tests/images``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from worker.images.color import convert_to_rgb, narrow_wide_greyscale
from worker.images.exceptions import (
    ImageError,
    ImageTooLarge,
    TooManyPixels,
    UndecodableImage,
    UnsupportedImageFormat,
)
from worker.images.tiling import SOURCE_SIZE_KEY, plan_tiles
from worker.images.types import TilingSpec

# Formats whose bytes PIL's JPEG opener also returns (camera multi-picture JPEGs).
_FORMAT_ALIASES = {"MPO": "JPEG"}
# Only used to word the refusal; never to decide anything.
_SIGNATURES = (
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
    (b"<!doctype html", "HTML"),
    (b"<html", "HTML"),
    (b"PK\x03\x04", "ZIP"),
    (b"%PDF", "PDF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20_000_000
    # Above 2 × PIL.Image.MAX_IMAGE_PIXELS (~179 MP) PIL itself refuses at open; that is
    # reported as TooManyPixels too, so larger limits have no effect.
    max_pixels: int = 50_000_000
    allowed_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF")


def decode_image(
    data: bytes, limits: ImageLimits, draft_for: TilingSpec | None = None
) -> Image.Image:
    """Decode ``data`` to RGB; with ``draft_for``, large JPEGs decode at reduced scale."""
    if not data:
        raise UndecodableImage("object is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(len(data), limits.max_bytes)
    try:
        return _decode(data, limits, draft_for)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(None, None, limits.max_pixels) from exc
    except Exception as exc:  # hostile input can make any decoder raise anything
        raise UndecodableImage(f"cannot decode image: {type(exc).__name__}: {exc}") from exc


def _decode(data: bytes, limits: ImageLimits, draft_for: TilingSpec | None) -> Image.Image:
    image = _open_checked(data, limits, draft_for)
    width, height = image.info[SOURCE_SIZE_KEY]
    image.load()  # the first frame of animations; truncated data raises here
    rgb = convert_to_rgb(narrow_wide_greyscale(image))
    rgb.info[SOURCE_SIZE_KEY] = (width, height)
    return rgb


def _open_checked(data: bytes, limits: ImageLimits, draft_for: TilingSpec | None) -> Image.Image:
    """Opened (header only), format and pixel count checked, JPEG draft set: nothing
    decoded yet. ``info[SOURCE_SIZE_KEY]`` holds the stored size."""
    allowed = [name.upper() for name in limits.allowed_formats]
    try:
        image = Image.open(io.BytesIO(data), formats=allowed)
    except UnidentifiedImageError:
        raise UnsupportedImageFormat(f"not a {'/'.join(allowed)} image{_sniff(data)}") from None
    image_format = _FORMAT_ALIASES.get(image.format or "", image.format)
    if image_format not in allowed:  # defence in depth: `formats=` already restricts
        raise UnsupportedImageFormat(f"{image.format} is not accepted")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise TooManyPixels(width, height, limits.max_pixels)
    if draft_for is not None and image_format == "JPEG":
        plan = plan_tiles(height, width, draft_for)
        if plan.width < width and plan.height < height:
            # libjpeg picks the largest 1/2^k scale that still covers the target.
            image.draft(image.mode, (plan.width, plan.height))
    image.info[SOURCE_SIZE_KEY] = (width, height)
    return image


# Bytes per pixel of PIL's storage: one byte for 1/L/P, two for I;16*, four for every
# multi-band mode (RGB is stored as RGBX) and for I/F.
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def decoded_bytes(data: bytes, limits: ImageLimits, draft_for: TilingSpec | None = None) -> int:
    """An upper estimate of the memory ``decode_image`` + tiling hold at their peak for
    ``data``: the decoded frame (after any JPEG draft) plus its RGB copy; from the
    header only. 0 when the header is refused: ``decode_image`` then says why, cheaply."""
    try:
        image = _open_checked(data, limits, draft_for)
    except Exception:
        return 0
    width, height = image.size
    return width * height * (_STORED_BYTES.get(image.mode, 4) + 4)


def _sniff(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    for signature, name in _SIGNATURES:
        if head.startswith(signature.lower()):
            return f" (looks like {name})"
    return ""
