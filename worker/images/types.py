"""Image values handed from the image stage to the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from worker.hashbank.hashing import ImageHashes

# Llama 3.2 Vision's image processor settings (560×560 tiles, up to 4, CLIP mean/std).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TilingSpec:
    """How images become tiles; built from the model's image processor config."""

    tile_size: int = 560
    max_tiles: int = 4
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    rescale_factor: float = 1 / 255


@dataclass(frozen=True)
class PreparedImage:
    """One image as the model consumes it, equal to what MllamaImageProcessor makes.

    ``pixel_values`` is ``(max_tiles, 3, tile_size, tile_size)`` float32; tile slots past
    ``num_tiles`` are zeros (the model still runs on them: real tiles attend to them).
    """

    sha256: str
    pixel_values: torch.Tensor
    aspect_ratio_id: int
    num_tiles: int
    hashes: ImageHashes | None = None
    """PDQ and MD5 of the image, with known-bad image banks on (``load_image(hasher=)``)."""
