"""RGB image → Mllama pixel values, equal to ``MllamaImageProcessor``'s output.

transformers 5.17 ships two backends. ``MllamaImageProcessor`` is the torchvision one
when torchvision is installed and otherwise falls back to ``MllamaImageProcessorPil``
(as ``AutoProcessor`` does); guardstream does not depend on torchvision, so the PIL
backend is the reference. It: converts to RGB (white under alpha), resizes with PIL
bilinear to the planned size, zero-pads (uint8) to the canvas, rescales in float64
and casts to float32, normalises in float32, splits the canvas row-major into tiles
and zero-fills unused tile slots.

We do the same resize (PIL, which releases the GIL), then map every uint8 value
through a 256-entry table per channel built with the very same float operations, so
the result is bit-identical to the processor's and costs one gather per value.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from worker.images.color import convert_to_rgb
from worker.images.tiling import SOURCE_SIZE_KEY, plan_tiles
from worker.images.types import PreparedImage, TilingSpec

BILINEAR = 2  # PIL.Image.Resampling.BILINEAR, the only resample Mllama is trained with


def prepare_image(image: Image.Image, spec: TilingSpec, sha256: str) -> PreparedImage:
    """Tiles, aspect-ratio id and tile count for one image."""
    width, height = image.info.get(SOURCE_SIZE_KEY, image.size)
    plan = plan_tiles(height, width, spec)
    resized = convert_to_rgb(image).resize((plan.width, plan.height), Image.Resampling.BILINEAR)
    tile = spec.tile_size
    canvas = np.zeros((plan.tiles_high * tile, plan.tiles_wide * tile, 3), np.uint8)
    canvas[: plan.height, : plan.width] = np.asarray(resized)
    # (rows·tile, cols·tile, 3) → (rows·cols, 3, tile, tile), row-major like split_to_tiles.
    tiles = (
        canvas.reshape(plan.tiles_high, tile, plan.tiles_wide, tile, 3)
        .transpose(0, 2, 4, 1, 3)
        .reshape(plan.num_tiles, 3, tile, tile)
    )
    pixel_values = np.zeros((spec.max_tiles, 3, tile, tile), np.float32)
    table = _normalisation_table(spec.rescale_factor, spec.mean, spec.std)
    for channel in range(3):
        np.take(
            table[channel],
            tiles[:, channel],
            out=pixel_values[: plan.num_tiles, channel],
            mode="clip",
        )
    return PreparedImage(
        sha256=sha256,
        pixel_values=torch.from_numpy(pixel_values),
        aspect_ratio_id=plan.aspect_ratio_id,
        num_tiles=plan.num_tiles,
    )


@lru_cache(maxsize=8)
def _normalisation_table(
    rescale_factor: float, mean: tuple[float, ...], std: tuple[float, ...]
) -> npt.NDArray[np.float32]:
    """(3, 256): value v of channel c → what rescale() then normalize() make of it."""
    rescaled = (np.arange(256, dtype=np.float64) * rescale_factor).astype(np.float32)
    mean32 = np.asarray(mean, dtype=np.float32)[:, None]
    std32 = np.asarray(std, dtype=np.float32)[:, None]
    table = (rescaled[None, :] - mean32) / std32
    table.flags.writeable = False
    return table


def tiling_spec_from_config(config: Mapping[str, Any]) -> TilingSpec:
    """The TilingSpec of a ``preprocessor_config.json``; refuses settings we do not reproduce."""
    size = config.get("size", {"height": 560, "width": 560})
    if size.get("height") != size.get("width") or not size.get("height"):
        raise ValueError(f"Mllama needs square tiles, got size={size!r}")
    required: dict[str, object] = {"do_resize": True, "do_pad": True, "do_rescale": True}
    required |= {"do_normalize": True, "do_convert_rgb": True, "resample": BILINEAR}
    for key, expected in required.items():
        if config.get(key, expected) != expected:
            raise ValueError(f"unsupported image processor setting {key}={config[key]!r}")
    defaults = TilingSpec()
    mean = tuple(float(v) for v in config.get("image_mean", defaults.mean))
    std = tuple(float(v) for v in config.get("image_std", defaults.std))
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("image_mean and image_std need 3 values (RGB)")
    max_tiles = int(config.get("max_image_tiles", defaults.max_tiles))
    if max_tiles < 1:
        raise ValueError(f"max_image_tiles must be positive, got {max_tiles}")
    return TilingSpec(
        tile_size=int(size["height"]),
        max_tiles=max_tiles,
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        rescale_factor=float(config.get("rescale_factor", defaults.rescale_factor)),
    )
