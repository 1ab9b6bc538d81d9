"""``worker.lab``: the one event builder, and the tiny-model cache (atomic, refuses a
half-written directory). The lab's services side runs in tests/integration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.conversation import ConversationEvent
from worker.lab import assistant, conversation, encode_event, image_item, user
from worker.lab import models as lab_models


def test_conversation_is_a_valid_v1_event_with_its_options() -> None:
    document = conversation(
        "e1",
        "look",
        images=["s3://b/1.png", "s3://b/2.png"],
        role="assistant",
        classify="response",
        policy={"excluded_category_keys": ["S7"]},
        tenant="acme",
    )
    event = ConversationEvent.model_validate_json(encode_event(document))
    assert (event.event_id, event.conversation_id, event.tenant_id) == ("e1", "conv-e1", "acme")
    [only] = event.messages
    assert only.role == "assistant"
    assert [getattr(i, "s3_uri", None) for i in only.content] == [
        "s3://b/1.png",
        "s3://b/2.png",
        None,
    ]
    assert event.classify == "response"
    assert event.policy is not None and event.policy.excluded_category_keys == ["S7"]


def test_conversation_with_messages_and_extra_fields() -> None:
    document = conversation(
        "e2",
        messages=[user("hi", image_item("s3://b/k.png", "a" * 64)), assistant("hello")],
        padding="ignored",
    )
    assert document["padding"] == "ignored"
    assert "tenant_id" not in document and "policy" not in document
    event = ConversationEvent.model_validate(document)
    assert [m.role for m in event.messages] == ["user", "assistant"]
    assert event.messages[0].content[1].sha256 == "a" * 64  # type: ignore[union-attr]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A fast stand-in for write_tiny_model that records where it wrote."""
    import worker.engine

    written: list[Path] = []

    def write(directory: Path, kind: str, **_: Any) -> Path:
        written.append(Path(directory))
        (Path(directory) / "config.json").write_text(kind)
        return Path(directory)

    monkeypatch.setattr(worker.engine, "write_tiny_model", write)
    return written


def test_cached_model_is_written_once_by_rename(tmp_path: Path, writes: list[Path]) -> None:
    first = lab_models.cached_tiny_model("text", root=tmp_path)
    again = lab_models.cached_tiny_model("text", root=tmp_path)
    assert first == again
    assert len(writes) == 1 and writes[0] != first  # written elsewhere, then renamed
    assert (first / "config.json").read_text() == "text"
    assert lab_models.is_complete(first, lab_models.fingerprint("text", vision_heavy=False, seed=0))
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no staging left


def test_half_written_cache_is_rebuilt(tmp_path: Path, writes: list[Path]) -> None:
    expected = lab_models.fingerprint("vision", vision_heavy=False, seed=0)
    target = tmp_path / f"tiny-vision-{expected[:12]}"
    target.mkdir()
    (target / "config.json").write_text("half")  # no marker: a writer died here
    built = lab_models.cached_tiny_model("vision", root=tmp_path)
    assert built == target and len(writes) == 1
    assert (target / "config.json").read_text() == "vision"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import worker.engine

    def fail(directory: Path, kind: str, **_: Any) -> Path:
        (Path(directory) / "config.json").write_text("partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(worker.engine, "write_tiny_model", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        lab_models.cached_tiny_model("vision", root=tmp_path)
    assert list(tmp_path.iterdir()) == []
