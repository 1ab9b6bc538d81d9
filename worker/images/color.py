"""Colour-mode normalisation: every decoded image becomes 8-bit RGB."""

from __future__ import annotations

import numpy as np
from PIL import Image

# PIL's names for 16/32-bit single-channel images (16-bit greyscale PNGs open as I;16).
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def convert_to_rgb(image: Image.Image) -> Image.Image:
    """Exactly transformers' ``convert_to_rgb`` (the Mllama processor's ``do_convert_rgb``).

    Non-RGB images go through RGBA and are composited over opaque white, so transparent
    pixels read as white (what a viewer shows on a light page) rather than as whatever
    colour hides under alpha 0. Copied step for step: any shortcut (``convert("RGB")``,
    ``paste`` with a mask) rounds differently. Note: Meta's llama-models reference code
    calls ``convert("RGB")`` instead, which differs only on images with transparency.
    """
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def narrow_wide_greyscale(image: Image.Image) -> Image.Image:
    """16-bit greyscale → 8-bit by its top byte, as image viewers display it.

    PIL's own I;16 → RGB conversion clips at 255 instead of scaling, which turns almost
    any 16-bit greyscale image white; the transformers and Meta pipelines inherit that.
    A moderation model must see what people see, so here (and only here) we depart from
    the reference. 8-bit modes are returned untouched.
    """
    if image.mode not in _WIDE_GREY_MODES:
        return image
    values = np.asarray(image)
    if values.dtype.kind == "i":  # mode "I" is signed 32-bit; a PNG only fills 0..65535
        values = np.clip(values, 0, 0xFFFF)
    narrowed = (values >> 8).astype(np.uint8)
    return Image.fromarray(narrowed)  # mode "L" for a 2-D uint8 array
