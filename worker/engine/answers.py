"""The score and the parsing of Llama Guard's answer.

Llama Guard 3 answers ``\\n\\n`` then ``safe`` or ``unsafe\\nS1,S10`` then ``<|eot_id|>``.
The fast path appends ``\\n\\n`` (id 271) to the prompt and reads the logits of the
next token, the first answer token. The score is the softmax over just the two
answer tokens::

    P(unsafe) = exp(l_unsafe) / (exp(l_safe) + exp(l_unsafe)) = sigmoid(l_unsafe - l_safe)

with l_safe, l_unsafe the logits of ``safe`` (19193) and ``unsafe`` (39257). Greedy
decoding says ``unsafe`` exactly when l_unsafe > l_safe (the two tokens carry nearly
all the mass), so the default threshold 0.5 reproduces the model's own answer.

Per-category scores: after ``unsafe`` the model writes ``\\n`` (198), ``S`` (50) and the
number of the first category it lists, one token (``S10`` is ``S`` + ``10``: 605). One
teacher-forced step over ``unsafe \\n S`` gives that token's distribution; restricted
to the number tokens of the policy's active keys and renormalised over them::

    category_scores[k] = P(unsafe) × exp(l_k) / Σ_{j active} exp(l_j)

so the scores sum to P(unsafe).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping

from schemas.conversation import category_number
from worker.engine.exceptions import UnparseableOutput
from worker.engine.types import CategoryScores

# S<n> with 1 <= n <= 99 and no leading zero, not inside a longer word or number.
_CATEGORY = re.compile(r"(?<![A-Za-z0-9])S([1-9][0-9]?)(?![A-Za-z0-9])")


def unsafe_probability(safe_logit: float, unsafe_logit: float) -> float:
    """sigmoid(unsafe_logit - safe_logit), without overflow."""
    diff = unsafe_logit - safe_logit
    if diff >= 0:
        return 1.0 / (1.0 + math.exp(-diff))
    exp = math.exp(diff)
    return exp / (1.0 + exp)


def category_scores(
    unsafe_score: float, number_logits: Mapping[str, float], active_keys: Collection[str]
) -> CategoryScores:
    """``(key, P(unsafe) × softmax over the active keys' number logits)``, by key number.

    ``number_logits``: the logit of each key's number token at the step after
    ``unsafe\\nS``; keys the policy does not list carry no mass.
    """
    keys = sorted(set(active_keys), key=category_number)
    if not keys:
        return ()
    logits = [number_logits[key] for key in keys]
    top = max(logits)
    weights = [math.exp(logit - top) for logit in logits]  # stable: the largest is 1
    total = math.fsum(weights)
    return tuple(
        (key, unsafe_score * weight / total) for key, weight in zip(keys, weights, strict=True)
    )


def parse_categories(text: str, active_keys: Collection[str]) -> tuple[str, ...]:
    """``S<n>`` keys found in ``text`` that the prompt's policy lists, unique, by number."""
    found = {f"S{match.group(1)}" for match in _CATEGORY.finditer(text)}
    return tuple(sorted(found.intersection(active_keys), key=category_number))


def parse_answer(text: str, active_keys: Collection[str]) -> tuple[bool, tuple[str, ...]]:
    """Generated text -> (unsafe, categories), the way the model card reads it.

    The first non-blank line must be ``safe`` or ``unsafe``; categories come from the
    lines after it.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or lines[0] not in ("safe", "unsafe"):
        preview = text.strip()[:80]
        raise UnparseableOutput(f"answer does not start with 'safe' or 'unsafe': {preview!r}")
    if lines[0] == "safe":
        return False, ()
    return True, parse_categories("\n".join(lines[1:]), active_keys)
