"""The worker's stages, in the order data flows: decode → fetch → classify → decide → publish.

Each module holds the stage's plain function (over ``worker.work`` values: it turns its
input into the next stage's value or a ``Failure`` naming the stage, and never raises
for a bad event) and the small callable the worker's streaming step runs, which adds
the stage's metrics and log context. ``worker.pipeline`` wires them into steps.
"""

from worker.stages.classify import Classify, batch_cost, classify_batch
from worker.stages.decide import Decide, decide_event, max_category_scores
from worker.stages.decode import Decode, decode_event, describe_validation_error
from worker.stages.fetch import Fetch, fetch_images, has_images, needs_no_thread
from worker.stages.publish import Publish, build_verdict

__all__ = [
    "Classify",
    "Decide",
    "Decode",
    "Fetch",
    "Publish",
    "batch_cost",
    "build_verdict",
    "classify_batch",
    "decide_event",
    "decode_event",
    "describe_validation_error",
    "fetch_images",
    "has_images",
    "max_category_scores",
    "needs_no_thread",
]
