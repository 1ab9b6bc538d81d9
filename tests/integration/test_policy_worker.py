"""Tenant policy profiles in the running worker, on the real broker: actions, the
review topic, fallback verdicts, hot reload (issue 12)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from schemas.review import ReviewRequest
from worker.engine.models import Models
from worker.engine.types import ClassificationRequest, ClassificationResult, ModelInfo, Outcome
from worker.images.types import TilingSpec
from worker.lab import Lab, conversation, running_worker, wait_for

pytestmark = pytest.mark.integration

SCORE = re.compile(r"\[score=([0-9.]+)\]")


class ScriptedClassifier:
    """Implements ``Classifier``: the score is written in the conversation's text as
    ``[score=0.42]``; 80 % of it goes to S1, 20 % to S10 (they sum to the score)."""

    model_info = ModelInfo(id="scripted", revision="1", dtype="none", device="cpu")

    def set_cache_observer(self, observer: Any) -> None:
        pass

    def classify(self, requests: Sequence[ClassificationRequest]) -> list[Outcome]:
        results: list[Outcome] = []
        for request in requests:
            match = SCORE.search(request.prompt.text)
            score = float(match.group(1)) if match else 0.0
            results.append(
                ClassificationResult(
                    unsafe_score=score,
                    unsafe=score >= 0.5,
                    categories=("S1",) if score >= 0.5 else (),
                    safe_logit=0.0,
                    unsafe_logit=0.0,
                    raw_output=None,
                    category_scores=(("S1", score * 0.8), ("S10", score * 0.2)),
                )
            )
        return results


POLICY = """
[defaults]
unsafe_threshold = 0.5

[tenants.kids]
unsafe_threshold = 0.4
category_thresholds = { S1 = 0.20 }
review_band = [0.10, 0.40]
on_error = "block"

[tenants.forum]
mode = "observe"
audit_sample_rate = 1.0
"""


def event(event_id: str, tenant: str, score: float, **extra: Any) -> dict[str, Any]:
    return conversation(event_id, f"message [score={score}]", tenant=tenant, **extra)


def test_two_tenant_profiles_actions_review_records_and_fallbacks(lab: Lab, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY)
    events = [
        event("kids-allow", "kids", 0.05),
        event("kids-band", "kids", 0.15),  # S1 = 0.12 < 0.20; in [0.10, 0.40): review
        event("kids-s1", "kids", 0.30),  # S1 = 0.24 >= 0.20: blocks on its own
        event("acme-safe", "acme", 0.30),  # [defaults]: 0.30 < 0.50
        event("acme-unsafe", "acme", 0.60),
        event("forum-observe", "forum", 0.90),  # observe: allow, would block; audited
    ]
    lab.produce_events(events)
    # A kids event that fails validation: its dead letter and a fallback verdict (block).
    broken = event("kids-broken", "kids", 0.0)
    broken["messages"][0]["role"] = "robot"
    lab.produce_events([broken])
    settings = lab.worker_settings(model="unused", policy_file=str(policy_file))
    models = Models(vision=ScriptedClassifier(), tiling=TilingSpec())
    with running_worker(settings, models):
        lab.read_outputs(expected=len(events) + 1, timeout_s=60)
    # Everything the worker wrote, read once it has stopped (drained): the review topic
    # holds no record more or less than the worker meant.
    outputs = lab.read_outputs()
    records = lab.read_to_end(lab.review_topic)

    verdicts = {event_id: found[0] for event_id, found in outputs.verdicts.items()}
    assert all(len(found) == 1 for found in outputs.verdicts.values())
    actions = {event_id: verdict.action for event_id, verdict in verdicts.items()}
    assert actions == {
        "kids-allow": "allow",
        "kids-band": "review",
        "kids-s1": "block",
        "acme-safe": "allow",
        "acme-unsafe": "block",
        "forum-observe": "allow",
        "kids-broken": "block",
    }
    assert verdicts["kids-s1"].reasons == ["S1>=0.20"]
    assert verdicts["kids-band"].reasons == ["review_band"]
    assert verdicts["forum-observe"].would_action == "block"
    assert verdicts["forum-observe"].reasons == ["unsafe_score>=0.50", "observe", "audit"]
    assert verdicts["kids-allow"].policy is not None
    assert verdicts["kids-allow"].policy.tenant_profile == "tenants.kids"
    assert verdicts["acme-safe"].policy is not None
    assert verdicts["acme-safe"].policy.tenant_profile == "defaults"
    scores = verdicts["acme-unsafe"].category_scores
    assert scores == pytest.approx({"S1": 0.48, "S10": 0.12})
    assert sum(scores.values()) == pytest.approx(verdicts["acme-unsafe"].unsafe_score)
    fallback = verdicts["kids-broken"]
    assert fallback.verdict == "error" and fallback.error is not None
    assert (fallback.error.stage.value, fallback.error.error_class) == ("validate", "SchemaError")
    assert len(outputs.dead_letters) == 1  # the dead letter is still written

    # The review topic holds exactly the band event and the audited one, with what
    # was judged byte for byte.
    requests = [ReviewRequest.model_validate_json(r.value) for r in records]
    assert sorted((r.verdict.event_id, r.reason) for r in requests) == [
        ("forum-observe", "audit"),
        ("kids-band", "band"),
    ]
    for record, request in zip(records, requests, strict=True):
        assert record.key == request.verdict.conversation_id.encode()
        original = json.loads(request.original_value or "")
        assert original["event_id"] == request.verdict.event_id


def test_hot_reload_switches_verdicts_and_a_broken_file_changes_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[defaults]\nunsafe_threshold = 0.5\n")
    settings = lab.worker_settings(model="unused", policy_file=str(policy_file))
    models = Models(vision=ScriptedClassifier(), tiling=TilingSpec())
    with running_worker(settings, models) as worker:
        lab.produce_events([event("before", "acme", 0.3)])
        assert lab.read_outputs(expected=1).verdicts["before"][0].action == "allow"
        first_version = worker.policy.current.profile_for("acme")

        # A new file: the next events are judged by it.
        policy_file.write_text("[defaults]\nunsafe_threshold = 0.25\n")
        reloads = worker.metrics.policy_reloads
        assert wait_for(lambda: reloads.labels(result="ok")._value.get() >= 1, 10)
        lab.produce_events([event("after", "acme", 0.3)])
        after = lab.read_outputs(expected=2).verdicts["after"][0]
        assert after.action == "block"
        assert after.reasons == ["unsafe_score>=0.25"]
        assert first_version is not None and after.policy is not None
        assert after.policy.version != first_version.version

        # A broken file is refused whole: the profiles in force stay.
        policy_file.write_text("[defaults]\nunsafe_threshold = 7\nnot toml = = \n")
        assert wait_for(lambda: reloads.labels(result="error")._value.get() >= 1, 10)
        lab.produce_events([event("broken-file", "acme", 0.3)])
        still = lab.read_outputs(expected=3).verdicts["broken-file"][0]
        assert still.action == "block"
        assert still.policy is not None and still.policy.version == after.policy.version
