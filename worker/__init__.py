"""guardstream worker: Kafka → S3 → Llama Guard 3 Vision → verdicts.

Subpackages, one concern each (data flows in this order):

- ``worker.streaming``: Kafka consumer loop, processing steps, offsets, producing.
- ``worker.images``: S3 URIs, fetching with limits, decoding, tiling to tensors.
- ``worker.prompt``: Llama Guard prompt rendering (pure functions).
- ``worker.engine``: model loading, injection-proof tokenization, batched scoring.
- ``worker.pipeline``: the one module that composes them into ``guardstream run``.
"""

__version__ = "0.1.0"
