"""Mllama's tile geometry: which canvas an image gets and what size it is resized to.

A float-for-float port of ``get_optimal_tiled_canvas``, ``get_image_size_fit_to_canvas``
and the aspect-ratio ids in transformers' ``models/mllama/image_processing*_mllama.py``
(5.17; both backends share them). Python floats are the same IEEE doubles numpy uses,
so ties and floors come out identical; ``tests/images`` checks it against transformers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from worker.images.types import TilingSpec


@dataclass(frozen=True)
class TilePlan:
    """Resize to ``height``×``width``, pad to ``tiles_high``×``tiles_wide`` tiles."""

    height: int
    width: int
    tiles_high: int
    tiles_wide: int
    aspect_ratio_id: int

    @property
    def num_tiles(self) -> int:
        return self.tiles_high * self.tiles_wide


@lru_cache(maxsize=16)
def supported_aspect_ratios(max_tiles: int) -> tuple[tuple[int, int], ...]:
    """(tiles high, tiles wide) arrangements in Mllama's order; id = index + 1.

    transformers' docstring calls the pairs (width, height), but its canvas code reads
    the first element as the height; we follow the code, which is what the model saw.
    """
    return tuple(
        (first, second)
        for first in range(1, max_tiles + 1)
        for second in range(1, max_tiles + 1)
        if first * second <= max_tiles
    )


@lru_cache(maxsize=4096)
def optimal_canvas(height: int, width: int, max_tiles: int, tile_size: int) -> tuple[int, int]:
    """The (height, width) canvas needing the least upscaling, else the least downscaling."""
    canvases = [(h * tile_size, w * tile_size) for h, w in supported_aspect_ratios(max_tiles)]
    scales = []
    for canvas_h, canvas_w in canvases:
        scale_h = canvas_h / height
        scale_w = canvas_w / width
        scales.append(scale_h if scale_w > scale_h else scale_w)
    upscaling = [scale for scale in scales if scale >= 1]
    selected = min(upscaling) if upscaling else max(scale for scale in scales if scale < 1)
    chosen = [canvas for canvas, scale in zip(canvases, scales, strict=True) if scale == selected]
    # Ties: the smallest area (least padding); first one wins, like np.argmin.
    return min(chosen, key=lambda canvas: canvas[0] * canvas[1])


def fit_to_canvas(
    height: int, width: int, canvas_h: int, canvas_w: int, tile_size: int
) -> tuple[int, int]:
    """Aspect-preserving (height, width) within the canvas, each side at least a tile."""
    target_w = min(max(width, tile_size), canvas_w)
    target_h = min(max(height, tile_size), canvas_h)
    scale_h = target_h / height
    scale_w = target_w / width
    if scale_w < scale_h:
        return min(math.floor(height * scale_w) or 1, target_h), target_w
    return target_h, min(math.floor(width * scale_h) or 1, target_w)


def plan_tiles(height: int, width: int, spec: TilingSpec) -> TilePlan:
    """Everything Mllama decides about an image of this size."""
    canvas_h, canvas_w = optimal_canvas(height, width, spec.max_tiles, spec.tile_size)
    new_h, new_w = fit_to_canvas(height, width, canvas_h, canvas_w, spec.tile_size)
    tiles = (canvas_h // spec.tile_size, canvas_w // spec.tile_size)
    ratio_id = supported_aspect_ratios(spec.max_tiles).index(tiles) + 1
    return TilePlan(new_h, new_w, tiles[0], tiles[1], ratio_id)


# ``Image.info`` key where decode_image records the encoded size when it decoded a JPEG
# at reduced scale (draft mode): tiles are planned from the original size, as for a
# full decode, so the canvas and resize target never depend on the shortcut.
SOURCE_SIZE_KEY = "guardstream.source_size"
