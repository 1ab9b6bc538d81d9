"""decode_image refuses what is not an accepted, reasonably sized image before decoding."""

from __future__ import annotations

import io
import time
import warnings
import zipfile
from typing import Any

import numpy as np
import pytest
import torch
from image_builders import (
    animated_gif,
    encode,
    exif_rotated_jpeg,
    noise_rgb,
    photo_like,
    png_claiming,
)
from PIL import Image

from worker.images.color import convert_to_rgb
from worker.images.decode import ImageLimits, decode_image
from worker.images.exceptions import (
    ImageTooLarge,
    TooManyPixels,
    UndecodableImage,
    UnsupportedImageFormat,
)
from worker.images.preprocess import prepare_image
from worker.images.tiling import SOURCE_SIZE_KEY
from worker.images.types import TilingSpec

LIMITS = ImageLimits()


def _hf_rgb(data: bytes) -> Image.Image:
    """What the model-card usage hands the processor, after its do_convert_rgb."""
    return convert_to_rgb(Image.open(io.BytesIO(data)))


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode == "RGB" and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    data = encode(noise_rgb(64, 48), fmt)
    image = decode_image(data, LIMITS)
    assert image.mode == "RGB" and image.size == (64, 48)
    assert _same_pixels(image, _hf_rgb(data))


def test_png_bomb_beyond_pil_hard_limit_is_refused_before_decoding() -> None:
    data = png_claiming(100_000, 100_000)  # 10 gigapixels in 70 bytes
    started = time.perf_counter()
    with pytest.raises(TooManyPixels):
        decode_image(data, LIMITS)
    assert time.perf_counter() - started < 1


def test_png_bomb_over_our_limit_is_refused_from_its_header() -> None:
    # 100 MP: under PIL's own error threshold, over ours. Its pixel data is garbage, so
    # TooManyPixels (not UndecodableImage) proves nothing was decoded.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(TooManyPixels) as caught:
            decode_image(png_claiming(10_000, 10_000), LIMITS)
    assert (caught.value.width, caught.value.height) == (10_000, 10_000)
    assert caught.value.permanent


def test_pixel_limit_is_configurable() -> None:
    data = encode(noise_rgb(100, 100), "PNG")
    with pytest.raises(TooManyPixels):
        decode_image(data, ImageLimits(max_pixels=9_999))
    decode_image(data, ImageLimits(max_pixels=10_000))


def test_byte_limit() -> None:
    data = encode(noise_rgb(100, 100), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))


def test_one_by_100000_image(hf_processor: Any, spec: TilingSpec) -> None:
    data = encode(Image.new("RGB", (1, 100_000), (10, 200, 30)), "PNG")
    image = decode_image(data, LIMITS, draft_for=spec)
    assert image.size == (1, 100_000)
    prepared = prepare_image(image, spec, "0" * 64)
    reference = hf_processor(images=[[image]], return_tensors="pt")
    assert torch.equal(prepared.pixel_values, reference["pixel_values"][0, 0])
    assert (prepared.num_tiles, prepared.aspect_ratio_id) == (4, 8)  # 4 tiles high, 1 wide


def test_cmyk_jpeg() -> None:
    cmyk = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 4), np.uint8), "CMYK")
    data = encode(cmyk, "JPEG")
    image = decode_image(data, LIMITS)
    assert image.size == (60, 40)
    assert _same_pixels(image, _hf_rgb(data))


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 0 … 65535
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    image = decode_image(data, LIMITS)
    assert np.array_equal(np.asarray(image)[..., 0], (ramp >> 8).astype(np.uint8))
    # The reference path clips at 255: nearly all white. We deliberately differ.
    assert np.asarray(_hf_rgb(data)).mean() > 250


def test_16_bit_rgb_png() -> None:
    raw = np.random.default_rng(0).integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    image = Image.frombytes("RGB", (8, 8), raw.astype(">u2").tobytes(), "raw", "RGB;16B")
    data = encode(image, "PNG")
    decoded = decode_image(data, LIMITS)
    assert _same_pixels(decoded, _hf_rgb(data))


def test_palette_png_with_transparency_composites_on_white() -> None:
    palette_image = Image.new("P", (20, 10), 0)
    palette_image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette_image.paste(1, (10, 0, 20, 10))  # right half red, left half index 0
    data = encode(palette_image, "PNG", transparency=0)  # index 0 (black) transparent
    image = decode_image(data, LIMITS)
    pixels = np.asarray(image)
    assert (pixels[:, :10] == 255).all()  # transparent → white, not black
    assert (pixels[:, 10:] == [255, 0, 0]).all()
    assert _same_pixels(image, _hf_rgb(data))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "1"])
def test_other_modes_match_the_processor(mode: str) -> None:
    rng = np.random.default_rng(5)
    rgba = Image.fromarray(rng.integers(0, 256, (30, 50, 4), np.uint8), "RGBA")
    data = encode(rgba.convert(mode), "PNG")
    assert _same_pixels(decode_image(data, LIMITS), _hf_rgb(data))


def test_exif_orientation_is_not_applied() -> None:
    data = exif_rotated_jpeg(40, 20)
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == 6
    image = decode_image(data, LIMITS)
    assert image.size == (40, 20)  # as stored, like Image.open in the model card usage


def test_animated_gif_first_frame() -> None:
    image = decode_image(animated_gif(), LIMITS)
    assert image.size == (32, 16)
    red, green, blue = np.asarray(image).reshape(-1, 3).mean(axis=0)
    assert red > 250 and green < 5 and blue < 5


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.jpg", encode(noise_rgb(8, 8), "JPEG"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"<!DOCTYPE html><html><body><img src=x></body></html>", "HTML"),
        (_zip(), "ZIP"),
        (b"%PDF-1.7\n", "PDF"),
        (encode(noise_rgb(8, 8), "BMP"), "BMP"),
        (encode(noise_rgb(8, 8), "TIFF"), "TIFF"),
        (b"\x00" * 100, ""),
        (b"definitely not an image", ""),
    ],
)
def test_other_content_named_jpg_is_refused(data: bytes, hint: str) -> None:
    with pytest.raises(UnsupportedImageFormat, match=hint or None) as caught:
        decode_image(data, LIMITS)
    assert caught.value.permanent


def test_formats_outside_the_allowed_list_are_refused() -> None:
    data = encode(noise_rgb(8, 8), "PNG")
    with pytest.raises(UnsupportedImageFormat):
        decode_image(data, ImageLimits(allowed_formats=("JPEG",)))


def test_zero_bytes() -> None:
    with pytest.raises(UndecodableImage, match="empty"):
        decode_image(b"", LIMITS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_image(fmt: str) -> None:
    data = encode(noise_rgb(200, 200), fmt)
    with pytest.raises(UndecodableImage):
        decode_image(data[: len(data) // 2], LIMITS)


def test_corrupt_jpeg_body() -> None:
    data = bytearray(encode(noise_rgb(64, 64), "JPEG"))
    data[200:] = b"\xff" * (len(data) - 200)
    with pytest.raises(UndecodableImage):
        decode_image(bytes(data), LIMITS)


def test_large_jpeg_is_drafted_and_tiles_stay_close(hf_processor: Any, spec: TilingSpec) -> None:
    data = encode(photo_like(4000, 3000), "JPEG", quality=90)
    full = decode_image(data, LIMITS)
    drafted = decode_image(data, LIMITS, draft_for=spec)
    assert full.size == (4000, 3000)
    assert drafted.size == (2000, 1500)  # target 1120×840 → 1/2 scale is the smallest safe
    assert drafted.info[SOURCE_SIZE_KEY] == (4000, 3000)
    exact = prepare_image(full, spec, "0" * 64)
    fast = prepare_image(drafted, spec, "0" * 64)
    assert (fast.aspect_ratio_id, fast.num_tiles) == (exact.aspect_ratio_id, exact.num_tiles)
    n = exact.num_tiles
    diff = (fast.pixel_values[:n] - exact.pixel_values[:n]).abs()
    # Normalised units: 0.015 is about one 8-bit level (1/255/0.27).
    assert diff.mean() < 0.03
    reference = hf_processor(images=[[full]], return_tensors="pt")["pixel_values"][0, 0]
    assert torch.equal(exact.pixel_values, reference)


def test_small_jpeg_is_not_drafted(spec: TilingSpec) -> None:
    data = encode(photo_like(800, 600), "JPEG")
    assert decode_image(data, LIMITS, draft_for=spec).size == (800, 600)
