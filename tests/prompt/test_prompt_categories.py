"""Policies: default list, replacement, exclusion, hash."""

from __future__ import annotations

import hashlib

import pytest
from prompt_helpers import event, user

from schemas.conversation import Policy
from worker.prompt import ConversationNotSupported, build_prompts
from worker.prompt.categories import (
    DEFAULT_CATEGORIES,
    LG3_8B_CATEGORIES,
    active_categories,
    policy_hash,
    render_category_list,
)


def test_defaults_are_the_mlcommons_list() -> None:
    assert [c.key for c in DEFAULT_CATEGORIES] == [f"S{i}" for i in range(1, 14)]
    assert [c.key for c in LG3_8B_CATEGORIES] == [f"S{i}" for i in range(1, 15)]
    assert DEFAULT_CATEGORIES[9].description == "Hate."


def test_replacement_keeps_the_policy_order() -> None:
    policy = Policy(categories={"S9": "Weapons.", "S2": "Crimes."})
    assert [c.key for c in active_categories(policy)] == ["S9", "S2"]


def test_exclusion_keeps_numbers() -> None:
    keys = [c.key for c in active_categories(Policy(excluded_category_keys=["S1", "S5"]))]
    assert keys == ["S2", "S3", "S4", "S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13"]


def test_excluding_everything_is_not_supported() -> None:
    policy = {"categories": {"S1": "A."}, "excluded_category_keys": ["S1"]}
    with pytest.raises(ConversationNotSupported, match="excludes every category"):
        build_prompts(event([user("x")], policy=policy), text_model=False)


def test_policy_hash_is_sha256_of_the_rendered_list() -> None:
    categories = active_categories(Policy(categories={"S1": "Violent Crimes."}))
    assert render_category_list(categories) == "S1: Violent Crimes.\n"
    assert policy_hash(categories) == hashlib.sha256(b"S1: Violent Crimes.\n").hexdigest()


def test_prompt_carries_keys_and_hash() -> None:
    (plain,) = build_prompts(event([user("x")]), text_model=False)
    (custom,) = build_prompts(
        event([user("x")], policy={"excluded_category_keys": ["S13"]}), text_model=False
    )
    assert plain.category_keys == tuple(f"S{i}" for i in range(1, 14))
    assert custom.category_keys == tuple(f"S{i}" for i in range(1, 13))
    assert plain.policy_hash == policy_hash(DEFAULT_CATEGORIES)
    assert plain.policy_hash != custom.policy_hash


def test_text_8b_policy_replaces_the_fixed_list() -> None:
    (prompt,) = build_prompts(
        event([user("x")], policy={"categories": {"S3": "Sex Crimes."}}), text_model=True
    )
    assert "<BEGIN UNSAFE CONTENT CATEGORIES>\nS3: Sex Crimes.\n<END UNSAFE" in prompt.text
    assert prompt.category_keys == ("S3",)


def test_descriptions_are_untrusted_segments() -> None:
    (prompt,) = build_prompts(
        event([user("x")], policy={"categories": {"S1": "<|eot_id|>"}}), text_model=False
    )
    untrusted = [s.text for s in prompt.segments if not s.trusted]
    assert "<|eot_id|>" in untrusted


def test_per_policy_results_are_shared_and_follow_the_policy() -> None:
    from worker.prompt.categories import Category, category_keys

    custom = active_categories(Policy(categories={"S9": "Weapons.", "S2": "Crimes."}))
    same = active_categories(Policy(categories={"S9": "Weapons.", "S2": "Crimes."}))
    assert custom is not same and custom == same
    for _ in range(2):  # the second round comes from the memo (identity and hash)
        assert category_keys(custom) == ("S9", "S2")
        assert category_keys(DEFAULT_CATEGORIES) == tuple(f"S{i}" for i in range(1, 14))
        assert category_keys(list(same)) == ("S9", "S2")
        assert policy_hash(same) == policy_hash(custom) != policy_hash(DEFAULT_CATEGORIES)
    edited = (Category("S9", "Weapons!"), Category("S2", "Crimes."))
    assert policy_hash(edited) != policy_hash(custom)
    assert policy_hash(edited) == hashlib.sha256(b"S9: Weapons!\nS2: Crimes.\n").hexdigest()
