"""Generated photo-like images for the PDQ tests: no photos can be shipped here.

``natural_photo``: what photos have in common statistically, a 1/f amplitude spectrum
(texture at every scale, most energy at low frequencies), plus a lighting gradient,
opaque shapes with hard edges, a slight lens blur and sensor grain.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def natural_photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    amplitude = 1.0 / radius
    amplitude[0, 0] = 0.0
    phases = np.exp(2j * np.pi * rng.random(amplitude.shape))
    texture = np.fft.irfft2(amplitude * phases, s=(height, width))
    texture = (texture - texture.mean()) / texture.std()
    gy = np.linspace(0.0, 1.0, height)[:, None]
    gx = np.linspace(0.0, 1.0, width)[None, :]
    slope_y, slope_x = rng.uniform(-60, 60, 2)
    pixels = np.empty((height, width, 3), np.float32)
    for channel, tint in enumerate(rng.uniform(-0.3, 0.3, 3)):
        pixels[..., channel] = (
            128 + slope_y * gy + slope_x * gx + 40 * (1 + tint) * texture + rng.uniform(-30, 30)
        )
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        size = rng.uniform(0.1, 0.35) * min(width, height)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = (x0, y0, x0 + size * rng.uniform(0.5, 1.5), y0 + size)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(max(1.0, min(width, height) / 300)))
    grain = rng.standard_normal((height, width, 3)).astype(np.float32) * 4
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)


def crop(image: Image.Image, fraction: float) -> Image.Image:
    """Cut ``fraction`` of the width and of the height, half on each side."""
    dx, dy = round(image.width * fraction / 2), round(image.height * fraction / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def area_crop(image: Image.Image, area: float) -> Image.Image:
    """Cut ``area`` of the pixels, centrally (the same fraction of each dimension)."""
    return crop(image, 1 - (1 - area) ** 0.5)


def greyscale(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")
