"""``guardstream prompt``: show exactly what the model sees for an event."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from schemas.conversation import ConversationEvent
from worker.prompt.build import build_prompts
from worker.prompt.types import Category, PromptFormat


def render_prompt_listing(
    event: ConversationEvent,
    *,
    text_model: bool,
    as_json: bool,
    text_format: PromptFormat = PromptFormat.LG3_8B,
    base_categories: Mapping[PromptFormat, Sequence[Category]] | None = None,
) -> str:
    """The prompts of ``event``, one per image.

    JSON: a list of ``{"image": s3_uri or null, "prompt": str}``. Text: each prompt
    after a ``### prompt i/n (image: ...)`` line, verbatim. The scorer then appends the
    model's first answer token, ``\\n\\n``, before reading ``safe``/``unsafe``.
    """
    prompts = build_prompts(
        event, text_model=text_model, text_format=text_format, base_categories=base_categories
    )
    if as_json:
        rows = [
            {"image": p.image.s3_uri if p.image is not None else None, "prompt": p.text}
            for p in prompts
        ]
        return json.dumps(rows, ensure_ascii=False, indent=2)
    blocks = []
    for index, prompt in enumerate(prompts, start=1):
        image = prompt.image.s3_uri if prompt.image is not None else "none"
        blocks.append(f"### prompt {index}/{len(prompts)} (image: {image})\n{prompt.text}\n")
    return "\n".join(blocks)
