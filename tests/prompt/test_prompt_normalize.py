"""Normalisation of messy chat logs into what the templates accept."""

from __future__ import annotations

from typing import Any

import pytest
from prompt_helpers import VISION_TEMPLATE, assistant, event, image, render_template, text, user

from worker.prompt import ConversationNotSupported, build_prompts
from worker.prompt.normalize import normalize


def _roles(messages: list[dict[str, Any]], classify: str = "auto") -> list[str]:
    return [turn.role for turn in normalize(event(messages, classify=classify)).turns]


def test_valid_conversation_is_unchanged() -> None:
    conversation = normalize(event([user("a"), assistant("b"), user("c")]))
    assert [(t.role, t.texts) for t in conversation.turns] == [
        ("user", ("a",)),
        ("assistant", ("b",)),
        ("user", ("c",)),
    ]
    assert conversation.assessed_role == "user"


def test_consecutive_same_role_messages_merge() -> None:
    messages = [user("a"), user("b", image("x")), assistant("c"), assistant("d")]
    conversation = normalize(event(messages))
    assert [(t.role, t.texts, len(t.images)) for t in conversation.turns] == [
        ("user", ("a", "b"), 1),
        ("assistant", ("c", "d"), 0),
    ]
    assert conversation.assessed_role == "assistant"


def test_merged_lines_render_like_the_template() -> None:
    (prompt,) = build_prompts(event([user("a"), user("b"), assistant("c")]), text_model=False)
    expected = render_template(
        VISION_TEMPLATE,
        [
            {"role": "user", "content": [text("a"), text("b")]},
            {"role": "assistant", "content": [text("c")]},
        ],
    )
    assert prompt.text == expected
    assert "User: a\n\nUser: b\n\nAgent: c\n\n" in prompt.text


def test_leading_assistant_gets_an_empty_user_turn() -> None:
    messages = [assistant("Welcome! How can I help?"), user("Hurt someone")]
    assert _roles(messages) == ["user", "assistant", "user"]
    (prompt,) = build_prompts(event(messages), text_model=False)
    assert "'User' messages" in prompt.text
    assert "<BEGIN CONVERSATION>\n\nAgent: Welcome! How can I help?\n\nUser: Hurt someone\n\n" in (
        prompt.text
    )


def test_only_assistant_is_assessed_as_agent() -> None:
    (prompt,) = build_prompts(event([assistant("Here is how to do it")]), text_model=False)
    assert prompt.assessed_role == "assistant"
    assert "ONLY THE LAST Agent message" in prompt.text


def test_classify_prompt_truncates_to_the_last_user_turn() -> None:
    messages = [user("q1"), assistant("a1"), user("q2", image("u")), assistant("a2", image("x"))]
    conversation = normalize(event(messages, classify="prompt"))
    assert [t.role for t in conversation.turns] == ["user", "assistant", "user"]
    prompts = build_prompts(event(messages, classify="prompt"), text_model=False)
    # The assistant's image came after the assessed turn: it is not judged.
    assert [p.image.s3_uri for p in prompts if p.image] == ["s3://bucket/u.png"]
    assert all(p.assessed_role == "user" for p in prompts)
    assert "a2" not in prompts[0].text


def test_classify_response_truncates_to_the_last_assistant_turn() -> None:
    messages = [user("q1"), assistant("a1"), user("q2")]
    assert _roles(messages, "response") == ["user", "assistant"]
    (prompt,) = build_prompts(event(messages, classify="response"), text_model=False)
    assert prompt.assessed_role == "assistant"
    assert "q2" not in prompt.text


def test_classify_auto_assesses_the_last_turn() -> None:
    assert _roles([user("q"), assistant("a")], "auto")[-1] == "assistant"
    assert _roles([user("q"), assistant("a"), user("b")], "auto")[-1] == "user"


@pytest.mark.parametrize(
    ("messages", "classify", "needle"),
    [
        ([assistant("only the agent")], "prompt", "no user message"),
        ([user("only the user")], "response", "no assistant message"),
        ([user("u"), user("v")], "response", "no assistant message"),
    ],
)
def test_unsupported_conversations_say_why(
    messages: list[dict[str, Any]], classify: str, needle: str
) -> None:
    with pytest.raises(ConversationNotSupported, match=needle):
        build_prompts(event(messages, classify=classify), text_model=False)


def test_role_follows_turn_parity_after_normalisation() -> None:
    for messages, role in [
        ([user("a")], "User"),
        ([user("a"), assistant("b")], "Agent"),
        ([assistant("b"), assistant("c")], "Agent"),
        ([user("a"), user("b"), assistant("c"), user("d")], "User"),
    ]:
        (prompt,) = build_prompts(event(messages), text_model=False)
        assert f"in '{role}' messages" in prompt.text
        assert f"ONLY THE LAST {role} message" in prompt.text
