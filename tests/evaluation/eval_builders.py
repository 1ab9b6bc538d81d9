"""Labelled JSON Lines for the evaluation tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image


def labelled(
    event_id: str,
    text: str,
    *,
    unsafe: bool,
    categories: tuple[str, ...] = (),
    images: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """One line: a v1 ConversationEvent with a user turn (images first, then text) + label."""
    content: list[dict[str, Any]] = [{"type": "image", "s3_uri": uri} for uri in images]
    content.append({"type": "text", "text": text})
    return {
        "schema_version": 1,
        "event_id": event_id,
        "conversation_id": f"conv-{event_id}",
        "created_at": "2026-11-24T09:00:00Z",
        "messages": [{"role": "user", "content": content}],
        **extra,
        "label": {"unsafe": unsafe, "categories": list(categories)},
    }


def write_jsonl(path: Path, lines: list[dict[str, Any] | bytes | str]) -> Path:
    with path.open("wb") as stream:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            stream.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return path


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()
