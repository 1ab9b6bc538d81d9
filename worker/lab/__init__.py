"""The lab: guardstream on the real services, for tests, benchmarks and the demo.

One module per concern, in the order a run uses them:

* ``events``: the one builder of v1 ConversationEvent documents (``conversation``).
* ``images``: small PNGs for tests, camera-like JPEGs for benchmarks.
* ``models``: the tiny random models, cached once, written atomically.
* ``sandbox``: ``Lab``, private topics and a bucket, and worker settings pointing at them.
* ``running``: a real ``Worker`` on a background thread (``running_worker``).
* ``outputs``: what the worker wrote (``Outputs``), and its metric counts.
* ``samples``: the demo's sample conversations.

Importing this package is cheap (the CLI imports it while building its parser):
Kafka, boto3, torch and PIL are imported by the calls that need them.
"""

from worker.lab.events import (
    CREATED_AT,
    TEXTS,
    assistant,
    conversation,
    encode_event,
    image_item,
    message,
    record_key,
    text_item,
    user,
)
from worker.lab.images import IMAGE_SIZES, PhotoMaker, noise_png, png_bytes
from worker.lab.models import cached_tiny_model
from worker.lab.outputs import Outputs, metric_total
from worker.lab.running import WorkerThread, running_worker, start_worker, wait_for
from worker.lab.samples import sample_images, sample_records
from worker.lab.sandbox import Lab, TopicSet

__all__ = [
    "CREATED_AT",
    "IMAGE_SIZES",
    "TEXTS",
    "Lab",
    "Outputs",
    "PhotoMaker",
    "TopicSet",
    "WorkerThread",
    "assistant",
    "cached_tiny_model",
    "conversation",
    "encode_event",
    "image_item",
    "message",
    "metric_total",
    "noise_png",
    "png_bytes",
    "record_key",
    "running_worker",
    "sample_images",
    "sample_records",
    "start_worker",
    "text_item",
    "user",
    "wait_for",
]
