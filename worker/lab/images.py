"""Images for the lab: small PNGs for tests, camera-like JPEGs for benchmarks.

PIL and numpy are imported when an image is made: the CLI imports this package
while it builds its parser.
"""

from __future__ import annotations

import io
import os
from typing import Any

# Camera photo, full-HD screenshot, portrait post, small picture: one of each in turn.
IMAGE_SIZES = ((4000, 3000), (1920, 1080), (1080, 1350), (800, 600))


def encode(image: Any, fmt: str, **options: Any) -> bytes:
    """A PIL image as ``fmt`` (PNG, JPEG, WEBP...) bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    """A plain one-colour PNG (compresses to almost nothing)."""
    from PIL import Image

    return encode(Image.new("RGB", (width, height), color), "PNG")


def noise_png(width: int, height: int) -> bytes:
    """Incompressible: its size grows with its pixels."""
    from PIL import Image

    return encode(Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)), "PNG")


class PhotoMaker:
    """Photo-like JPEGs (smooth shapes plus sensor-like noise), distinct per seed.

    A shared base picture is drawn once; each image is a shifted crop of it with its
    own noise and a coloured block, so bytes and sha256 differ while the JPEG size
    stays typical of a camera photo (~1.5 MB at 12 MP, quality 90).
    """

    def __init__(self, max_width: int = 4000, max_height: int = 3000) -> None:
        from PIL import Image

        self._base = (
            Image.effect_mandelbrot((max_width + 64, max_height + 64), (-2.0, -1.2, 1.0, 1.2), 60)
            .convert("RGB")
            .resize((max_width + 64, max_height + 64))
        )

    def jpeg(self, width: int, height: int, seed: int, quality: int = 90) -> bytes:
        import numpy as np
        from PIL import Image, ImageDraw

        rng = np.random.default_rng(seed)
        dx, dy = int(rng.integers(0, 64)), int(rng.integers(0, 64))
        crop = self._base.crop((dx, dy, dx + width, dy + height))
        noise = Image.fromarray(rng.integers(0, 48, (height, width, 3), dtype=np.uint8))
        image = Image.blend(crop, noise, 0.25)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        ImageDraw.Draw(image).rectangle((x, y, x + width // 4, y + height // 4), fill=color)
        return encode(image, "JPEG", quality=quality)

    def photos(self, count: int, prefix: str = "img") -> list[tuple[str, bytes]]:
        """``count`` (key, JPEG) pairs, one of each of ``IMAGE_SIZES`` in turn."""
        return [
            (f"{prefix}-{i}.jpg", self.jpeg(*IMAGE_SIZES[i % len(IMAGE_SIZES)], seed=i))
            for i in range(count)
        ]
