"""Builders for the image tests: encoded images, crafted bombs, fakes of S3."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour fields, hard edges and fine grain: JPEG-realistic content."""
    rng = np.random.default_rng(seed)
    small_w, small_h = max(1, width // 8), max(1, height // 8)
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    fields = np.full((small_h, small_w, 3), 128, np.float32)
    for _ in range(12):  # soft blobs, drawn small and upscaled: they are smooth anyway
        cx, cy = rng.uniform(0, small_w), rng.uniform(0, small_h)
        radius = rng.uniform(0.05, 0.4) * max(small_w, small_h)
        weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        fields += weight[..., None] * rng.uniform(-120, 120, 3).astype(np.float32)
    smooth = Image.fromarray(np.clip(fields, 0, 255).astype(np.uint8))
    out = np.asarray(smooth.resize((width, height), Image.Resampling.BICUBIC)).astype(np.float32)
    for _ in range(20):  # hard-edged rectangles
        x0, y0 = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        x1 = x0 + int(rng.uniform(0.02, 0.2) * width)
        y1 = y0 + int(rng.uniform(0.02, 0.2) * height)
        out[y0:y1, x0:x1] = rng.uniform(0, 255, 3)
    out += rng.standard_normal(out.shape, dtype=np.float32) * 6  # sensor-like grain
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header claims width×height RGB pixels (decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def exif_rotated_jpeg(width: int = 40, height: int = 20) -> bytes:
    """A landscape JPEG whose EXIF says 'rotate 90° CW to display' (orientation 6)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def animated_gif() -> bytes:
    frames = [
        Image.new("RGB", (32, 16), color) for color in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    ]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


class FakeBody:
    """A StreamingBody stand-in that records how much was read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.amount_read = 0
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        end = len(self._data) if amt is None else self.amount_read + amt
        chunk = self._data[self.amount_read : end]
        self.amount_read += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


class FakeS3:
    """get_object that plays a script: each step is bytes (served), an exception (raised),
    or a dict (returned as is). The last step repeats."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, str]] = []
        self.bodies: list[FakeBody] = []

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append((Bucket, Key))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, dict):
            return step
        body = FakeBody(step)
        self.bodies.append(body)
        return {"Body": body, "ContentLength": len(step)}


def client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")
