"""Greedy decoding of the category line for rows judged unsafe, reusing the prefill cache.

It mirrors ``generate()``: each step appends one token, extends the attention mask,
advances the position ids, and repeats the last row of the cross-attention mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from worker.engine.batching import ModelBatch


def decode_after(
    model: Any,
    batch: ModelBatch,
    cache: Any,
    rows: Sequence[int],
    *,
    first_token: int,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
) -> list[list[int]]:
    """Feed ``first_token`` to ``rows`` of a prefilled batch and decode greedily.

    Returns, per row, the tokens generated after ``first_token`` up to (not including)
    the first stop id, at most ``max_new_tokens``. ``cache`` is consumed.
    """
    device = batch.input_ids.device
    index = torch.tensor(list(rows), dtype=torch.long, device=device)
    cache.batch_select_indices(index)
    attention_mask = batch.attention_mask[index]
    position = batch.position_ids[index, -1:]
    cross_mask = (
        batch.cross_attention_mask[index] if batch.cross_attention_mask is not None else None
    )
    stops = torch.tensor(list(stop_ids), device=device)
    tokens = torch.full((len(rows), 1), first_token, dtype=torch.long, device=device)
    finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
    generated: list[torch.Tensor] = []
    for _ in range(max_new_tokens):
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], 1)
        position = position + 1
        kwargs: dict[str, Any] = {
            "input_ids": tokens,
            "attention_mask": attention_mask,
            "position_ids": position,
            "past_key_values": cache,
            "use_cache": True,
            "logits_to_keep": 1,
        }
        if cross_mask is not None:
            cross_mask = torch.cat([cross_mask, cross_mask[:, -1:]], 1)
            kwargs["cross_attention_mask"] = cross_mask
        logits = model(**kwargs).logits[:, -1, :]
        next_tokens = logits.argmax(-1).masked_fill(finished, pad_id)
        generated.append(next_tokens)
        finished |= torch.isin(next_tokens, stops)
        if bool(finished.all()):
            break
        tokens = next_tokens.unsqueeze(1)
    if not generated:
        return [[] for _ in rows]
    table = torch.stack(generated, 1).tolist()
    return [_until_stop(row, set(stop_ids)) for row in table]


def _until_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    for position, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:position]
    return tokens
