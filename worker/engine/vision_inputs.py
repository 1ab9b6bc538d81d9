"""Image tensors in the shape MllamaProcessor gives them; the slow reference helpers."""

from __future__ import annotations

from typing import Any

from PIL.Image import Image

from worker.images.types import PreparedImage, TilingSpec


def prepared_image_from_processor(processor: Any, pil_image: Image, sha256: str) -> PreparedImage:
    """PreparedImage from the real MllamaImageProcessor (reference path, tests, benchmarks)."""
    out = processor.image_processor(images=[[pil_image]], return_tensors="pt")
    return PreparedImage(
        sha256=sha256,
        pixel_values=out["pixel_values"][0, 0].float(),
        aspect_ratio_id=int(out["aspect_ratio_ids"][0, 0]),
        num_tiles=int(out["num_tiles"][0][0]),
    )


def tiling_spec_from_processor(processor: Any) -> TilingSpec:
    """The tiling the model was trained with, read from its image processor config."""
    image_processor = processor.image_processor
    size = image_processor.size
    height = size["height"] if isinstance(size, dict) else size.height
    width = size["width"] if isinstance(size, dict) else size.width
    if height != width:
        raise ValueError(f"Mllama tiles are square, got {height}x{width}")
    mean = tuple(float(v) for v in image_processor.image_mean)
    std = tuple(float(v) for v in image_processor.image_std)
    return TilingSpec(
        tile_size=int(height),
        max_tiles=int(image_processor.max_image_tiles),
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        rescale_factor=float(image_processor.rescale_factor),
    )
