"""Hazard categories: Meta's defaults, an event's policy, and the policy hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TypeVar

from schemas.conversation import Policy
from worker.prompt.exceptions import ConversationNotSupported
from worker.prompt.types import Category

# The MLCommons hazard taxonomy as the Llama Guard 3 Vision / 1B template lists it.
DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("S1", "Violent Crimes."),
    Category("S2", "Non-Violent Crimes."),
    Category("S3", "Sex Crimes."),
    Category("S4", "Child Exploitation."),
    Category("S5", "Defamation."),
    Category("S6", "Specialized Advice."),
    Category("S7", "Privacy."),
    Category("S8", "Intellectual Property."),
    Category("S9", "Indiscriminate Weapons."),
    Category("S10", "Hate."),
    Category("S11", "Self-Harm."),
    Category("S12", "Sexual Content."),
    Category("S13", "Elections."),
)

# The Llama Guard 3 8B template adds S14.
LG3_8B_CATEGORIES: tuple[Category, ...] = (
    *DEFAULT_CATEGORIES,
    Category("S14", "Code Interpreter Abuse."),
)


def active_categories(
    policy: Policy | None, defaults: Sequence[Category] = DEFAULT_CATEGORIES
) -> tuple[Category, ...]:
    """The categories a prompt lists, in the order the template renders them.

    ``policy.categories`` replaces the defaults (in its own order, as the template
    iterates the dict); ``excluded_category_keys`` drops keys and the others keep their
    numbers. Unknown excluded keys are ignored, as in the template.
    """
    if policy is None:
        return tuple(defaults)
    base = (
        [Category(key, text) for key, text in policy.categories.items()]
        if policy.categories is not None
        else list(defaults)
    )
    excluded = set(policy.excluded_category_keys)
    active = tuple(category for category in base if category.key not in excluded)
    if not active:
        raise ConversationNotSupported(
            "the policy excludes every category: there is nothing to classify against"
        )
    return active


def render_category_list(categories: Sequence[Category]) -> str:
    """The lines between <BEGIN UNSAFE CONTENT CATEGORIES> and <END ...>."""
    return "".join(f"{category.key}: {category.description}\n" for category in categories)


T = TypeVar("T")


def per_policy(function: Callable[[tuple[Category, ...]], T]) -> Callable[[Sequence[Category]], T]:
    """Memoise ``function(categories)`` (pure, result immutable) per policy.

    Rendering runs for every event, and nearly every event uses the default policy:
    the 64 category lists used last are kept, and the list object seen last (the
    defaults' tuple, usually) is recognised by identity, without hashing it.
    """
    cached = lru_cache(maxsize=64)(function)
    last: list[tuple[Sequence[Category] | None, T | None]] = [(None, None)]

    def memoised(categories: Sequence[Category]) -> T:
        seen, value = last[0]  # one tuple, replaced whole: safe across threads
        if seen is not categories or value is None:
            value = cached(tuple(categories))
            last[0] = (categories, value)
        return value

    return memoised


@per_policy
def policy_hash(categories: tuple[Category, ...]) -> str:
    """sha256 (hex) of the rendered category list: equal hashes, equal policies."""
    return hashlib.sha256(render_category_list(categories).encode("utf-8")).hexdigest()


@per_policy
def category_keys(categories: tuple[Category, ...]) -> tuple[str, ...]:
    return tuple(category.key for category in categories)
