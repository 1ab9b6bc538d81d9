"""Steps after the prefill, reusing its KV cache.

- ``forced_step_logits``: a teacher-forced step over a few fixed tokens for every row
  (``unsafe \\n S``, whose next token is the first category's number); the cache is
  rewound afterwards, so it holds exactly the prefill again.
- ``decode_after``: greedy decoding of the category line for rows judged unsafe.

Both mirror ``generate()``: appended tokens extend the attention mask, advance the
position ids, and repeat the last row of the cross-attention mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from worker.engine.batching import ModelBatch


def forced_step_logits(
    model: Any, batch: ModelBatch, cache: Any, tokens: Sequence[int], keep_ids: Sequence[int]
) -> torch.Tensor:
    """Feed ``tokens`` to every row of a prefilled batch in one forward pass; the logits
    (rows, len(keep_ids)) of the token after the last one, at the ``keep_ids``.

    The self-attention layers' cache grows by ``len(tokens)`` and is cropped back (the
    cross-attention layers only read theirs), so the prefix keys and values are the
    prefill's, bit for bit, for a decode that follows.
    """
    device = batch.input_ids.device
    rows, count = batch.input_ids.shape[0], len(tokens)
    before = [layer.get_seq_length() for layer in cache.layers]
    steps = torch.arange(1, count + 1, device=device)
    kwargs: dict[str, Any] = {
        "input_ids": torch.tensor([list(tokens)] * rows, dtype=torch.long, device=device),
        "attention_mask": torch.cat(
            [batch.attention_mask, batch.attention_mask.new_ones((rows, count))], 1
        ),
        "position_ids": batch.position_ids[:, -1:] + steps,
        "past_key_values": cache,
        "use_cache": True,
        "logits_to_keep": 1,
    }
    if batch.cross_attention_mask is not None:
        mask = batch.cross_attention_mask
        kwargs["cross_attention_mask"] = torch.cat(
            [mask, mask[:, -1:].expand(-1, count, -1, -1)], 1
        )
    try:
        logits = model(**kwargs).logits[:, -1, :]
    finally:
        for layer, length in zip(cache.layers, before, strict=True):
            grown = layer.get_seq_length() - length
            if grown > 0:
                layer.crop(-grown)
    keep = torch.tensor(list(keep_ids), dtype=torch.long, device=device)
    return logits[:, keep]


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
