"""Llama 3 token ids Llama Guard 3 relies on (Meta's tokenizer.model + Mllama's <|image|>).

``check_token_ids`` verifies them against a loaded tokenizer, so a model with another
vocabulary fails at load instead of scoring the wrong tokens.
"""

from __future__ import annotations

from typing import Any

from worker.engine.exceptions import ModelLoadError

BEGIN_OF_TEXT = 128000
SAFE = 19193  # "safe"
UNSAFE = 39257  # "unsafe"
DOUBLE_NEWLINE = 271  # "\n\n": the model's first answer token
NEWLINE = 198  # "\n" after "unsafe"
S = 50  # "S" of the first category key: "S10" is "S" + "10"
# Teacher-forced after the prompt + "\n\n": the next token is the first category's number.
CATEGORY_PREFIX = (UNSAFE, NEWLINE, S)
PAD = 128004  # <|finetune_right_pad_id|>; the model card's pad_token_id=0 is wrong for batches
IMAGE = 128256  # <|image|>
STOP_IDS = (128001, 128008, 128009)  # <|end_of_text|>, <|eom_id|>, <|eot_id|>

_TEXT_IDS = {"safe": SAFE, "unsafe": UNSAFE, "\n\n": DOUBLE_NEWLINE, "\n": NEWLINE, "S": S}
MAX_CATEGORY_NUMBER = 99  # category keys are S1..S99 (schemas.conversation)
_SPECIAL_IDS = {
    "<|begin_of_text|>": BEGIN_OF_TEXT,
    "<|finetune_right_pad_id|>": PAD,
    "<|end_of_text|>": STOP_IDS[0],
    "<|eom_id|>": STOP_IDS[1],
    "<|eot_id|>": STOP_IDS[2],
}


def check_token_ids(tokenizer: Any, *, vision: bool) -> None:
    """Raise ModelLoadError when ``tokenizer`` disagrees with the ids above."""
    problems = []
    for text, expected in _TEXT_IDS.items():
        got = tokenizer.encode(text, add_special_tokens=False)
        if got != [expected]:
            problems.append(f"{text!r} -> {got}, expected [{expected}]")
    specials = dict(_SPECIAL_IDS)
    if vision:
        specials["<|image|>"] = IMAGE
    for token, expected in specials.items():
        got_id = tokenizer.convert_tokens_to_ids(token)
        if got_id != expected:
            problems.append(f"{token} -> {got_id}, expected {expected}")
    if problems:
        raise ModelLoadError("not a Llama 3 / Llama Guard 3 tokenizer: " + "; ".join(problems))


def category_number_ids(tokenizer: Any) -> dict[str, int]:
    """Category key -> the id of its number token after ``unsafe\\nS`` (``S1`` -> 16, ``S10``
    -> 605): Llama 3 writes numbers up to 999 as one token. ModelLoadError otherwise."""
    ids: dict[str, int] = {}
    for number in range(1, MAX_CATEGORY_NUMBER + 1):
        got = tokenizer.encode(f"unsafe\nS{number}", add_special_tokens=False)
        if len(got) != len(CATEGORY_PREFIX) + 1 or tuple(got[:-1]) != CATEGORY_PREFIX:
            raise ModelLoadError(
                f"'unsafe\\nS{number}' -> {got}: expected {list(CATEGORY_PREFIX)} + one number token"
            )
        ids[f"S{number}"] = got[-1]
    return ids
