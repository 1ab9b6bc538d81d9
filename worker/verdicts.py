"""Build the VerdictEvent of a classified event (pure).

A conversation with N images was classified as N prompts (one image each); they
aggregate into one verdict (``worker.engine.aggregate``) and the per-image results
are kept in ``images``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.verdict import ImageVerdict, ModelInfo, SourcePosition, VerdictEvent
from worker.engine.aggregate import aggregate
from worker.work import ClassifiedEvent


def build_verdict(
    classified: ClassifiedEvent,
    *,
    source: SourcePosition,
    model: ModelInfo,
    worker_id: str,
    latency_ms: float,
    processed_at: datetime | None = None,
) -> VerdictEvent:
    decoded = classified.prepared.decoded
    requests = classified.prepared.requests
    results = classified.results
    overall = aggregate(results)
    images = [
        ImageVerdict(
            s3_uri=request.prompt.image.s3_uri,
            sha256=request.image.sha256,
            verdict="unsafe" if result.unsafe else "safe",
            categories=list(result.categories),
            unsafe_score=result.unsafe_score,
        )
        for request, result in zip(requests, results, strict=True)
        if request.prompt.image is not None and request.image is not None
    ]
    first_prompt = decoded.prompts[0]
    return VerdictEvent(
        event_id=decoded.event.event_id,
        conversation_id=decoded.event.conversation_id,
        tenant_id=decoded.event.tenant_id,
        verdict="unsafe" if overall.unsafe else "safe",
        categories=list(overall.categories),
        unsafe_score=overall.unsafe_score,
        classified_role=first_prompt.assessed_role,
        images=images,
        model=model,
        policy_hash=first_prompt.policy_hash,
        source=source,
        worker_id=worker_id,
        latency_ms=max(latency_ms, 0.0),
        processed_at=processed_at or datetime.now(UTC),
    )
