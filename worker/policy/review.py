"""ReviewRequest records: the verdict plus what was judged (pure)."""

from __future__ import annotations

from schemas.review import ReviewReason, ReviewRequest
from schemas.verdict import VerdictEvent


def review_request_value(
    verdict: VerdictEvent,
    original_value: bytes,
    reason: ReviewReason,
    *,
    max_bytes: int | None = None,
) -> bytes:
    """The review record's value (UTF-8 JSON; its key is ``verdict.conversation_id``)
    for an event whose decision has ``review`` set.

    ``original_value`` is the consumed value (UTF-8: it decoded, or the event would
    have no verdict). With ``max_bytes``, a request whose JSON would be larger leaves
    the value out and says so in ``omitted``; reviewers then read it at
    ``verdict.source``. The producer's size limit would otherwise refuse the record
    and stop the worker on it after every restart.
    """
    request = ReviewRequest(
        reason=reason, verdict=verdict, original_value=original_value.decode("utf-8")
    )
    encoded = request.model_dump_json().encode("utf-8")
    if max_bytes is not None and len(encoded) > max_bytes:
        request = ReviewRequest(
            reason=reason,
            verdict=verdict,
            original_value=None,
            omitted=f"value={len(original_value)}",
        )
        encoded = request.model_dump_json().encode("utf-8")
    return encoded
