"""Labelled JSON Lines → events and labels.

Each line is a ConversationEvent (the v1 contract) plus
``"label": {"unsafe": true|false, "categories": ["S1", ...]}`` (categories optional).
The line's bytes go to the worker's decode stage as they are: the contract ignores
unknown top-level fields, so the event is judged exactly as the worker would judge it.
A line without a usable label is skipped with its line number and the reason; the
reasons never quote the line (it is user content).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.conversation import CATEGORY_KEY_PATTERN, category_number
from worker.evaluation.types import Label, LabelledLine, SkippedLine

LABEL_FIELD = "label"


class _LabelDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    unsafe: bool
    categories: list[Annotated[str, Field(pattern=CATEGORY_KEY_PATTERN)]] = Field(
        default_factory=list, max_length=32
    )

    @model_validator(mode="after")
    def _safe_lists_no_category(self) -> _LabelDocument:
        if not self.unsafe and self.categories:
            raise ValueError("a safe label lists no categories")
        return self


def read_labelled(lines: Iterable[bytes]) -> Iterator[LabelledLine | SkippedLine]:
    """One item per input line, in order (line numbers start at 1)."""
    for number, raw in enumerate(lines, start=1):
        yield parse_line(number, raw.rstrip(b"\r\n"))


def parse_line(number: int, value: bytes) -> LabelledLine | SkippedLine:
    if not value.strip():
        return SkippedLine(number, "empty line")
    try:
        document = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return SkippedLine(number, f"not UTF-8 ({exc.reason} at byte {exc.start})")
    except RecursionError:
        return SkippedLine(number, "not JSON (nested too deep)")
    except ValueError as exc:
        return SkippedLine(number, f"not JSON ({exc})")
    if not isinstance(document, dict):
        return SkippedLine(number, f"not a JSON object (a {type(document).__name__})")
    if LABEL_FIELD not in document:
        return SkippedLine(number, f'no "{LABEL_FIELD}" field')
    try:
        label = _LabelDocument.model_validate(document[LABEL_FIELD])
    except ValidationError as exc:
        return SkippedLine(number, f"bad label: {_describe(exc)}")
    categories = tuple(sorted(set(label.categories), key=category_number))
    return LabelledLine(number, value, Label(label.unsafe, categories))


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or LABEL_FIELD}: {error['msg']}"
        for error in errors[:3]
    )
