"""The values that flow through the pipeline, one type per stage reached.

consume → ``DecodedEvent`` → ``FetchedEvent`` (images fetched and tiled) →
``ClassifiedEvent`` → ``DecidedEvent`` (the policy's action) → records.
Any stage may instead produce a ``Failure``; later stages pass it along untouched
and the publish stage turns it into a dead-letter record (and, for tenants whose
policy asks for one, a fallback verdict).

The per-stage values are immutable by convention, not ``frozen``: one of each is built
per event, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field)
costs several times a plain one.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.conversation import ConversationEvent
from schemas.dead_letter import ErrorStage
from worker.engine.aggregate import AggregateVerdict
from worker.engine.types import ClassificationRequest, ClassificationResult
from worker.hashbank.bank import BankMatch
from worker.policy import Decision, Profile
from worker.prompt.types import Prompt


@dataclass(frozen=True)
class Failure:
    stage: ErrorStage
    error_class: str
    message: str
    attempts: int = 1
    event: ConversationEvent | None = None  # known once the event decoded; for logs

    @classmethod
    def from_exception(
        cls,
        stage: ErrorStage,
        exc: BaseException,
        attempts: int = 1,
        event: ConversationEvent | None = None,
    ) -> Failure:
        return cls(stage, type(exc).__name__, str(exc) or repr(exc), attempts, event)


@dataclass(slots=True)
class DecodedEvent:
    event: ConversationEvent
    prompts: tuple[Prompt, ...]
    consumed_at: float  # time.monotonic() when consumed, for end-to-end latency
    profile: Profile  # the tenant profile the event was decoded with (kept across a reload)


@dataclass(slots=True)
class FetchedEvent:
    decoded: DecodedEvent
    requests: tuple[ClassificationRequest, ...]  # one per prompt, images attached
    matches: tuple[BankMatch | None, ...] = ()
    """Per request, the known-bad image bank entry its image matched (empty: banks off)."""
    skips: tuple[bool, ...] = ()
    """Per request, whether the model is skipped (a match, ``HASH_MATCH_ACTION=block``)."""

    def match_of(self, index: int) -> BankMatch | None:
        return self.matches[index] if self.matches else None

    def skips_model(self, index: int) -> bool:
        return bool(self.skips) and self.skips[index]

    @property
    def model_requests(self) -> int:
        """Requests the model classifies (the others matched a bank)."""
        return sum(1 for i in range(len(self.requests)) if not self.skips_model(i))

    @property
    def tiles(self) -> int:
        """Cost in the batch budget: tile slots (the encoder runs on all of them), 1 for text;
        nothing for a request that skips the model."""
        return sum(
            int(request.image.pixel_values.shape[0]) if request.image is not None else 1
            for i, request in enumerate(self.requests)
            if not self.skips_model(i)
        )


@dataclass(slots=True)
class ClassifiedEvent:
    fetched: FetchedEvent
    results: tuple[ClassificationResult, ...]  # one per request


@dataclass(slots=True)
class DecidedEvent:
    classified: ClassifiedEvent
    overall: AggregateVerdict  # the per-image results aggregated (unsafe if any is, max score)
    category_scores: dict[str, float]  # per active key, the maximum over the images
    decision: Decision


Work = DecodedEvent | FetchedEvent | ClassifiedEvent | DecidedEvent | Failure
