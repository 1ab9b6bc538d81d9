"""Injection-proof tokenization of prompt segments.

Hugging Face tokenizers turn ``<|eot_id|>`` written inside user text into the real
special token, so a user could close the turn early and write the model's answer.
Here only trusted template text can produce special tokens: trusted segments are
split at special-token strings, everything else (untrusted text included) is
tokenized by a copy of the tokenizer with ``encode_special_tokens`` on, which treats
special-token strings as plain text (``<|eot_id|>`` -> ``<``, ``|``, ``eot``, ...).

Text between two special tokens is tokenized as one run, exactly as the tokenizer
itself does for the whole prompt, so benign prompts get the same ids the model-card
usage gets (tests compare with ``MllamaProcessor``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer

from worker.engine.exceptions import MalformedRequest
from worker.prompt.types import PromptSegment


class PromptTokenizer:
    def __init__(self, tokenizer: Any) -> None:
        # A private copy: flipping encode_special_tokens on the shared tokenizer would race.
        self._plain = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._plain.encode_special_tokens = True
        self._added = {
            token.content: token_id for token_id, token in tokenizer.added_tokens_decoder.items()
        }
        self.special_ids = frozenset(self._added.values())
        alternatives = "|".join(re.escape(t) for t in sorted(self._added, key=len, reverse=True))
        self._split = re.compile(f"({alternatives})")

    def tokenize(self, segments: Sequence[PromptSegment]) -> list[int]:
        pieces: list[str | int] = []
        for segment in segments:
            parts = self._split.split(segment.text) if segment.trusted else [segment.text]
            for part in parts:
                if segment.trusted and part in self._added:
                    pieces.append(self._added[part])
                elif part:
                    if pieces and isinstance(pieces[-1], str):
                        pieces[-1] += part
                    else:
                        pieces.append(part)
        runs = [piece for piece in pieces if isinstance(piece, str)]
        tokenized = iter(self._plain.encode_batch(runs, add_special_tokens=False))
        ids: list[int] = []
        for piece in pieces:
            if isinstance(piece, int):
                ids.append(piece)
                continue
            run_ids = next(tokenized).ids
            if self.special_ids.intersection(run_ids):
                raise MalformedRequest("plain text produced a special token id")  # defensive
            ids.extend(run_ids)
        return ids

    def tokenize_plain(self, text: str) -> list[int]:
        """Ids of ``text`` with every special-token string treated as ordinary text."""
        return list(self._plain.encode(text, add_special_tokens=False).ids)
