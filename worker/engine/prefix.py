"""Shared-prefix KV reuse for text-only prompts.

A text-only prompt starts with the policy prefix: the template's header, the task
sentence (which names the assessed role), the category list and
``<BEGIN CONVERSATION>\\n\\n``. It is the same for every event of one policy and role,
so its keys and values are computed once per (model, revision, prompt format, policy
hash, assessed role) and kept in a bounded LRU on the model's device; a batch then
runs only the suffixes (conversation + tail + ``\\n\\n``), attending to the prefix.

Token-exact: the prefix ends at ``>\\n\\n`` and the conversation starts with a letter
(``User: ``), a pre-tokenizer boundary of the Llama 3 tokenizer, so the prefix's ids
are a prefix of the whole prompt's ids. That is checked for every prompt
(``split_length``): a prompt whose ids do not start with the prefix's goes the plain
path.

Image prompts never use it: text after ``<|image|>`` depends on the image through the
cross-attention layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from worker.engine.types import ModelInfo
from worker.prompt.types import Prompt, PromptSegment
from worker.prompt.vision import CONVERSATION_START

# (model id, model revision, prompt format, policy hash, assessed role)
PrefixKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class PrefixEntry:
    """The prefix's ids and, per decoder layer, its (keys, values) of shape
    (1, kv_heads, prefix_len, head_dim); None for a layer the text-only forward skips
    (Mllama's cross-attention layers)."""

    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...]

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for kv in self.layers if kv is not None for k, v in [kv])


def prefix_key(prompt: Prompt, model: ModelInfo) -> PrefixKey:
    return (model.id, model.revision, str(prompt.format), prompt.policy_hash, prompt.assessed_role)


def prefix_segments(prompt: Prompt) -> tuple[PromptSegment, ...] | None:
    """The segments up to and including ``<BEGIN CONVERSATION>\\n\\n`` (trusted template
    text: an untrusted category description cannot end the prefix); None if absent."""
    if prompt.image is not None:
        return None
    for index, segment in enumerate(prompt.segments):
        if segment.trusted and segment.text.endswith(CONVERSATION_START):
            return prompt.segments[: index + 1]
    return None


def split_length(full_ids: Sequence[int], prefix_ids: Sequence[int]) -> int:
    """``len(prefix_ids)`` when they are exactly a proper prefix of ``full_ids``, else 0."""
    length = len(prefix_ids)
    if 0 < length < len(full_ids) and tuple(full_ids[:length]) == tuple(prefix_ids):
        return length
    return 0


def compute_prefix(model: Any, ids: Sequence[int], device: torch.device) -> PrefixEntry:
    """One forward pass over the prefix alone (batch of one)."""
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=device)
    with torch.inference_mode():
        output = model(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            position_ids=torch.arange(len(ids), device=device).unsqueeze(0),
            use_cache=True,
            logits_to_keep=1,
        )
    layers: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for layer in output.past_key_values.layers:
        if layer.get_seq_length() == 0:
            layers.append(None)
        else:
            if layer.get_seq_length() != len(ids):
                raise RuntimeError("a prefix cache layer does not hold the prefix")
            layers.append((layer.keys, layer.values))
    return PrefixEntry(tuple(ids), tuple(layers))


def batch_cache(model: Any, entry: PrefixEntry, rows: int) -> Any:
    """A fresh ``DynamicCache`` holding the prefix for each of ``rows`` rows (copies:
    the batch's steps grow and crop its layers, the entry stays as it is)."""
    from transformers import DynamicCache

    cache: Any = DynamicCache(config=model.config)
    if len(cache.layers) != len(entry.layers):
        raise RuntimeError(f"cache has {len(cache.layers)} layers, prefix {len(entry.layers)}")
    for layer, kv in zip(cache.layers, entry.layers, strict=True):
        if kv is not None:
            keys, values = kv
            # update() concatenates onto an empty tensor: a contiguous copy per row.
            layer.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))
    return cache
