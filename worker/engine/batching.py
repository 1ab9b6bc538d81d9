"""Model inputs for a micro-batch, built the way MllamaProcessor and generate() build them.

Left padding with <|finetune_right_pad_id|>; position ids count real tokens only
(as generate() derives them from the attention mask), so a padded row sees the same
positions as when it runs alone. For image rows the cross-attention mask lets every
token from ``<|image|>`` to the end attend to the image's real tiles, as
``MllamaProcessor`` does for a prompt with one image.

On CUDA, pixel tensors go to the device through pinned (page-locked) host memory
(``to_device``), so the copy is a DMA that does not stall the CPU thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from worker.engine.prefix import PrefixKey
from worker.images.types import PreparedImage


@dataclass(frozen=True)
class TokenizedSample:
    """A request ready for the model: token ids (prompt + ``\\n\\n``) and its image."""

    index: int
    input_ids: tuple[int, ...]
    image: PreparedImage | None
    image_position: int | None
    category_keys: tuple[str, ...] = ()
    # Text-only prompts with prefix reuse: the policy prefix's key and its token count
    # (input_ids[:prefix_length] are the prefix's ids); None/0 for the plain path.
    prefix_key: PrefixKey | None = None
    prefix_length: int = 0


@dataclass(frozen=True)
class ModelBatch:
    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    position_ids: torch.Tensor  # (B, L)
    cross_attention_mask: torch.Tensor | None = None  # (B, L, 1, max_tiles)
    pixel_values: torch.Tensor | None = None  # (B, 1, max_tiles, 3, H, W)
    aspect_ratio_ids: torch.Tensor | None = None  # (B, 1)
    aspect_ratio_mask: torch.Tensor | None = None  # (B, 1, max_tiles)

    def model_kwargs(self) -> dict[str, torch.Tensor]:
        kwargs = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "position_ids": self.position_ids,
        }
        optional = {
            "cross_attention_mask": self.cross_attention_mask,
            "pixel_values": self.pixel_values,
            "aspect_ratio_ids": self.aspect_ratio_ids,
            "aspect_ratio_mask": self.aspect_ratio_mask,
        }
        kwargs.update({name: value for name, value in optional.items() if value is not None})
        return kwargs


def build_batch(
    samples: Sequence[TokenizedSample],
    *,
    pad_id: int,
    device: torch.device,
    pixel_dtype: torch.dtype = torch.float32,
    pixels: bool = True,
) -> ModelBatch:
    """Left-padded tensors for ``samples``: all with an image, or all without.

    ``pixels=False`` leaves out ``pixel_values`` and the aspect-ratio inputs: the caller
    passes ``cross_attention_states`` (vision encoded once per distinct image) instead.
    """
    with_image = [sample.image is not None for sample in samples]
    if any(with_image) and not all(with_image):
        # transformers changes the logits of text-only rows batched with image rows.
        raise ValueError("image and text-only samples never share a batch")
    length = max(len(sample.input_ids) for sample in samples)
    input_ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, sample in enumerate(samples):
        offset = length - len(sample.input_ids)
        input_ids[row, offset:] = torch.tensor(sample.input_ids, dtype=torch.long)
        attention_mask[row, offset:] = 1
    # As generate(): count real tokens, padding at position 0.
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    batch = ModelBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
    )
    if not all(with_image):
        return batch
    images = [sample.image for sample in samples if sample.image is not None]
    max_tiles = images[0].pixel_values.shape[0]
    cross_attention_mask = torch.zeros((len(samples), length, 1, max_tiles), dtype=torch.long)
    for row, (sample, image) in enumerate(zip(samples, images, strict=True)):
        if sample.image_position is None:
            raise ValueError("an image sample without an <|image|> token")
        start = length - len(sample.input_ids) + sample.image_position
        cross_attention_mask[row, start:, 0, : image.num_tiles] = 1
    if not pixels:
        return ModelBatch(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            cross_attention_mask=cross_attention_mask.to(device),
        )
    vision = vision_inputs(images, device=device, pixel_dtype=pixel_dtype)
    return ModelBatch(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        cross_attention_mask=cross_attention_mask.to(device),
        pixel_values=vision.pixel_values,
        aspect_ratio_ids=vision.aspect_ratio_ids,
        aspect_ratio_mask=vision.aspect_ratio_mask,
    )


def build_suffix_batch(
    samples: Sequence[TokenizedSample], *, prefix_length: int, pad_id: int, device: torch.device
) -> ModelBatch:
    """Tensors for text-only ``samples`` sharing a cached prefix of ``prefix_length``
    tokens: ``input_ids`` hold only the suffixes, left-padded; ``attention_mask`` covers
    prefix + suffix, the padding between them masked; positions continue after the
    prefix, counting real tokens only (as the whole prompt's would)."""
    suffixes = []
    for sample in samples:
        if sample.image is not None or sample.prefix_length != prefix_length:
            raise ValueError("a suffix batch takes text-only samples of one prefix")
        suffixes.append(sample.input_ids[prefix_length:])
    length = max(len(suffix) for suffix in suffixes)
    input_ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    suffix_mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, suffix in enumerate(suffixes):
        offset = length - len(suffix)
        input_ids[row, offset:] = torch.tensor(suffix, dtype=torch.long)
        suffix_mask[row, offset:] = 1
    position_ids = (suffix_mask.cumsum(-1) - 1 + prefix_length).masked_fill(suffix_mask == 0, 0)
    attention_mask = torch.cat(
        [torch.ones((len(samples), prefix_length), dtype=torch.long), suffix_mask], 1
    )
    return ModelBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
    )


@dataclass(frozen=True)
class VisionInputs:
    """The vision encoder's inputs for ``n`` images, one image per row."""

    pixel_values: torch.Tensor  # (n, 1, max_tiles, 3, H, W)
    aspect_ratio_ids: torch.Tensor  # (n, 1)
    aspect_ratio_mask: torch.Tensor  # (n, 1, max_tiles)


def vision_inputs(
    images: Sequence[PreparedImage], *, device: torch.device, pixel_dtype: torch.dtype
) -> VisionInputs:
    max_tiles = images[0].pixel_values.shape[0]
    aspect_ratio_mask = torch.zeros((len(images), 1, max_tiles), dtype=torch.long)
    for row, image in enumerate(images):
        aspect_ratio_mask[row, 0, : image.num_tiles] = 1
    first = images[0].pixel_values
    pixel_values = torch.empty(
        (len(images), *first.shape), dtype=first.dtype, pin_memory=_pinned(device)
    )
    torch.stack([image.pixel_values for image in images], out=pixel_values)
    aspect_ratio_ids = torch.tensor([[image.aspect_ratio_id] for image in images], dtype=torch.long)
    return VisionInputs(
        pixel_values=to_device(pixel_values, device).to(pixel_dtype).unsqueeze(1),
        aspect_ratio_ids=aspect_ratio_ids.to(device),
        aspect_ratio_mask=aspect_ratio_mask.to(device),
    )


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host → device; asynchronous when ``tensor`` is pinned (same CUDA stream, so safe)."""
    return tensor.to(device, non_blocking=tensor.is_pinned())


def _pinned(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()


def validate_image(
    image: PreparedImage, *, max_tiles: int, tile_size: int, max_aspect_ratio_id: int
) -> None:
    """Raise ValueError when ``image`` is not what the model takes."""
    expected = (max_tiles, 3, tile_size, tile_size)
    if tuple(image.pixel_values.shape) != expected:
        raise ValueError(f"pixel_values shape {tuple(image.pixel_values.shape)} != {expected}")
    if not 1 <= image.num_tiles <= max_tiles:
        raise ValueError(f"num_tiles {image.num_tiles} not in 1..{max_tiles}")
    if not 1 <= image.aspect_ratio_id <= max_aspect_ratio_id:
        raise ValueError(f"aspect_ratio_id {image.aspect_ratio_id} not in 1..{max_aspect_ratio_id}")
    if not torch.isfinite(image.pixel_values).all():
        raise ValueError("pixel_values hold NaN or infinity")
