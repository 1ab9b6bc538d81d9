"""`guardstream prompt`: what the model sees, one prompt per image."""

from __future__ import annotations

import json

from prompt_helpers import assistant, event, image, user

from worker.prompt import build_prompts, render_prompt_listing


def test_json_lists_one_prompt_per_image() -> None:
    ev = event([user("look", image("a"), image("b")), assistant("ok")])
    rows = json.loads(render_prompt_listing(ev, text_model=False, as_json=True))
    assert [row["image"] for row in rows] == ["s3://bucket/a.png", "s3://bucket/b.png"]
    prompts = build_prompts(ev, text_model=False)
    assert [row["prompt"] for row in rows] == [p.text for p in prompts]
    assert set(rows[0]) == {"image", "prompt"}


def test_json_text_only_has_null_image() -> None:
    ev = event([user("hi")])
    rows = json.loads(render_prompt_listing(ev, text_model=True, as_json=True))
    (prompt,) = build_prompts(ev, text_model=True)
    assert rows == [{"image": None, "prompt": prompt.text}]


def test_plain_listing_contains_each_prompt_verbatim() -> None:
    ev = event([user("look", image("a"), image("b"))])
    listing = render_prompt_listing(ev, text_model=False, as_json=False)
    assert "### prompt 1/2 (image: s3://bucket/a.png)" in listing
    assert "### prompt 2/2 (image: s3://bucket/b.png)" in listing
    for prompt in build_prompts(ev, text_model=False):
        assert prompt.text in listing


def test_text_is_the_concatenated_segments() -> None:
    (prompt,) = build_prompts(event([user("hi <|eot_id|>")]), text_model=False)
    assert prompt.text == "".join(s.text for s in prompt.segments)
    assert any(not s.trusted and "<|eot_id|>" in s.text for s in prompt.segments)
