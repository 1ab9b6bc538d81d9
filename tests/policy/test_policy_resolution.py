"""Which profile judges an event; precedence defaults < tenant < event policy."""

from __future__ import annotations

from builders import event, image, user
from policy_helpers import policy

from schemas.conversation import ConversationEvent
from schemas.dead_letter import ErrorStage
from worker.policy import PolicyRefusal, Profile, builtin_policy, resolve
from worker.prompt import PromptFormat, build_prompts
from worker.prompt.categories import DEFAULT_CATEGORIES, LG3_8B_CATEGORIES

FILE = """
[defaults]
excluded_category_keys = ["S13"]
[tenants.kids]
excluded_category_keys = ["S7", "S8"]
[tenants.custom]
categories = { S1 = "Violence.", S2 = "Fraud.", S3 = "Spam." }
[tenants.strict]
allow_event_policy = false
"""


def keys(
    ev: ConversationEvent, resolved: Profile | PolicyRefusal, *, text_model: bool = False
) -> tuple[str, ...]:
    assert isinstance(resolved, Profile)
    prompt, *_ = build_prompts(
        ev, text_model=text_model, base_categories=resolved.prompt_categories
    )
    return prompt.category_keys


def test_precedence_template_defaults_tenant_event() -> None:
    loaded = policy(FILE)
    all13 = tuple(c.key for c in DEFAULT_CATEGORIES)
    unknown = event([user("hi")], tenant_id="someone-else")
    assert keys(unknown, resolve(unknown, loaded)) == tuple(k for k in all13 if k != "S13")
    kids = event([user("hi")], tenant_id="kids")
    # The tenant's key replaces the defaults' (S13 is back), whole.
    assert keys(kids, resolve(kids, loaded)) == tuple(k for k in all13 if k not in ("S7", "S8"))
    narrowed = event(
        [user("hi")], tenant_id="kids", policy={"excluded_category_keys": ["S1", "S13"]}
    )
    # The event narrows the tenant's list, as it narrows Meta's without a policy file.
    assert keys(narrowed, resolve(narrowed, loaded)) == tuple(
        k for k in all13 if k not in ("S1", "S7", "S8", "S13")
    )
    replaced = event([user("hi")], tenant_id="kids", policy={"categories": {"S5": "Rude."}})
    assert keys(replaced, resolve(replaced, loaded)) == ("S5",)


def test_tenant_categories_replace_the_template_for_every_format() -> None:
    loaded = policy(FILE)
    ev = event([user("hi", image("a"))], tenant_id="custom")
    assert keys(ev, resolve(ev, loaded)) == ("S1", "S2", "S3")
    text_only = event([user("hi")], tenant_id="custom")
    assert keys(text_only, resolve(text_only, loaded), text_model=True) == ("S1", "S2", "S3")
    excluded = event([user("hi")], tenant_id="custom", policy={"excluded_category_keys": ["S2"]})
    assert keys(excluded, resolve(excluded, loaded)) == ("S1", "S3")


def test_without_a_file_prompts_are_todays() -> None:
    builtin = builtin_policy()
    for ev, text_model in [
        (event([user("hi")]), False),
        (event([user("hi")]), True),
        (event([user("hi", image("a"))], tenant_id="t"), False),
        (event([user("hi")], policy={"excluded_category_keys": ["S2"]}), False),
    ]:
        resolved = resolve(ev, builtin)
        assert not isinstance(resolved, PolicyRefusal)
        plain = build_prompts(ev, text_model=text_model)
        with_profile = build_prompts(
            ev, text_model=text_model, base_categories=resolved.prompt_categories
        )
        assert [p.text for p in plain] == [p.text for p in with_profile]
        assert [p.policy_hash for p in plain] == [p.policy_hash for p in with_profile]
    # The very template tuples: the prompt cache's identity fast path still hits.
    profile = builtin.defaults
    assert profile.prompt_categories[PromptFormat.LG3_VISION] is DEFAULT_CATEGORIES
    assert profile.prompt_categories[PromptFormat.LG3_8B] is LG3_8B_CATEGORIES


def test_event_policy_refused_when_the_tenant_does_not_allow_it() -> None:
    loaded = policy(FILE)
    ev = event([user("hi")], tenant_id="strict", policy={"excluded_category_keys": ["S1"]})
    refusal = resolve(ev, loaded)
    assert isinstance(refusal, PolicyRefusal)
    assert (refusal.stage, refusal.error_class) == (ErrorStage.VALIDATE, "EventPolicyNotAllowed")
    plain = event([user("hi")], tenant_id="strict")
    assert resolve(plain, loaded) is loaded.tenants["strict"]


def test_unknown_or_missing_tenant_refused_when_required() -> None:
    loaded = policy("[defaults]\nrequire_known_tenant = true\n[tenants.kids]\n")
    for ev in (event([user("hi")], tenant_id="nobody"), event([user("hi")])):
        refusal = resolve(ev, loaded)
        assert isinstance(refusal, PolicyRefusal)
        assert (refusal.stage, refusal.error_class) == (ErrorStage.VALIDATE, "UnknownTenant")
        assert "nobody" not in refusal.message
    assert resolve(event([user("hi")], tenant_id="kids"), loaded) is loaded.tenants["kids"]
    # Not required: unknown tenants get [defaults].
    relaxed = policy("[tenants.kids]\n")
    assert resolve(event([user("hi")], tenant_id="nobody"), relaxed) is relaxed.defaults
