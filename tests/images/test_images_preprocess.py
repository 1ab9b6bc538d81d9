"""prepare_image equals transformers' Mllama image processor, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from image_builders import noise_rgb
from PIL import Image
from transformers.models.mllama import image_processing_pil_mllama as hf_mllama

from worker.images.preprocess import prepare_image, tiling_spec_from_config
from worker.images.tiling import plan_tiles, supported_aspect_ratios
from worker.images.types import TilingSpec


def _sizes() -> list[tuple[int, int]]:
    rng = np.random.default_rng(1)
    edges = [1, 2, 279, 280, 559, 560, 561, 839, 840, 1119, 1120, 1121, 1679, 1680, 2239, 2240]
    edges += [2241, 4000]
    grid = [(h, w) for h in edges for w in edges]
    randoms = rng.integers(1, 6000, (2000, 2))
    return grid + [(int(h), int(w)) for h, w in randoms]


def test_geometry_equals_transformers() -> None:
    spec = TilingSpec()
    ratios = supported_aspect_ratios(spec.max_tiles)
    assert list(ratios) == hf_mllama.get_all_supported_aspect_ratios(spec.max_tiles)
    for height, width in _sizes():
        plan = plan_tiles(height, width, spec)
        canvas = hf_mllama.get_optimal_tiled_canvas(height, width, spec.max_tiles, spec.tile_size)
        size = hf_mllama.get_image_size_fit_to_canvas(
            height, width, int(canvas[0]), int(canvas[1]), spec.tile_size
        )
        assert (plan.tiles_high * spec.tile_size, plan.tiles_wide * spec.tile_size) == canvas
        assert (plan.height, plan.width) == size, (height, width)


@pytest.mark.parametrize("max_tiles", [1, 2, 6, 9])
def test_geometry_other_tile_budgets(max_tiles: int) -> None:
    spec = TilingSpec(tile_size=448, max_tiles=max_tiles)
    for height, width in _sizes()[::7]:
        plan = plan_tiles(height, width, spec)
        canvas = hf_mllama.get_optimal_tiled_canvas(height, width, max_tiles, 448)
        assert (plan.tiles_high * 448, plan.tiles_wide * 448) == canvas


def _reference(hf_processor: Any, image: Image.Image) -> dict[str, Any]:
    out = hf_processor(images=[[image]], return_tensors="pt")
    return {
        "pixel_values": out["pixel_values"][0, 0],
        "aspect_ratio_id": int(out["aspect_ratio_ids"][0, 0]),
        "num_tiles": int(out["num_tiles"][0][0]),
    }


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (1, 1),
        (7, 5),
        (1000, 1),
        (1, 1000),
        (560, 560),
        (561, 559),
        (1120, 1120),
        (800, 600),
        (2240, 560),
        (560, 2240),
        (300, 1200),
        (1200, 300),
        (4000, 3000),  # 12 MP
    ],
)
def test_equals_mllama_image_processor(
    hf_processor: Any, spec: TilingSpec, width: int, height: int
) -> None:
    image = noise_rgb(width, height, seed=width * 7 + height)
    ours = prepare_image(image, spec, "ab" * 32)
    ref = _reference(hf_processor, image)
    assert ours.pixel_values.dtype == torch.float32
    assert ours.pixel_values.shape == (spec.max_tiles, 3, spec.tile_size, spec.tile_size)
    assert ours.aspect_ratio_id == ref["aspect_ratio_id"]
    assert ours.num_tiles == ref["num_tiles"]
    assert ours.sha256 == "ab" * 32
    assert torch.equal(ours.pixel_values, ref["pixel_values"])  # max abs diff 0
    assert not ours.pixel_values[ours.num_tiles :].any()  # unused tile slots are zeros


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "PA", "CMYK", "1", "I;16"])
def test_non_rgb_input_converted_like_the_processor(
    hf_processor: Any, spec: TilingSpec, mode: str
) -> None:
    rng = np.random.default_rng(3)
    rgba = Image.fromarray(rng.integers(0, 256, (300, 700, 4), dtype=np.uint8), "RGBA")
    image = rgba.convert(mode) if mode not in ("P", "PA") else rgba.convert("RGB").quantize(64)
    if mode == "PA":
        image = image.convert("PA")
    ours = prepare_image(image, spec, "0" * 64)
    assert torch.equal(ours.pixel_values, _reference(hf_processor, image)["pixel_values"])


def test_config_spec_is_llama_3_2_vision(spec: TilingSpec) -> None:
    assert spec == TilingSpec()


@pytest.mark.parametrize(
    "override",
    [
        {"resample": 3},
        {"do_normalize": False},
        {"do_convert_rgb": False},
        {"size": {"height": 560, "width": 448}},
        {"image_mean": [0.5, 0.5]},
        {"max_image_tiles": 0},
    ],
)
def test_config_settings_we_cannot_reproduce_are_refused(
    preprocessor_config: dict[str, Any], override: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        tiling_spec_from_config({**preprocessor_config, **override})
