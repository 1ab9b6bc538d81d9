"""Processing steps, one module each; compose them front to back."""

from worker.streaming.steps.batching import RunBatchesInThread
from worker.streaming.steps.chain import chain
from worker.streaming.steps.commit import CommitOffsets
from worker.streaming.steps.produce import Produce
from worker.streaming.steps.run_task import RunTask
from worker.streaming.steps.run_task_in_threads import RunTaskInThreads
from worker.streaming.steps.transactional import TransactionalProduceAndCommit

__all__ = [
    "CommitOffsets",
    "Produce",
    "RunBatchesInThread",
    "RunTask",
    "RunTaskInThreads",
    "TransactionalProduceAndCommit",
    "chain",
]
