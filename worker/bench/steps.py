"""``guardstream bench steps``: where the consumer thread's time per event goes, without Kafka.

The same text-only events as ``bench overhead``, as already-consumed messages, through
the worker's real step chain (``pipeline.build_steps``: decode → fetch → batch →
classify → decide → publish) with an instant classifier, into a terminal that only
counts (no producer, no commits). The loop drives the chain as the consumer loop does:
poll, submit until a step is full, then wait for a step to finish something.

Baseline, same process run: the same stage callables (``pipeline.build_stages``) called
in a plain loop, stage by stage over all events, no steps and no threads; each stage is
timed on its own. Their difference is what the step protocol costs (hand-offs,
revocation checks, the model thread). The Quix Streams peer's per-event function
(``quix_app``: validate, VerdictEvent JSON) in the same plain loop is the next row.

The chain's terminal produces nothing, so a producer's per-send work is not in these
figures; one part of it that is the worker's choice is: the kafka-python producer's
partitioner (``streaming/murmur2.py``), timed over the verdicts' keys against
kafka-python's ``DefaultPartitioner`` on a 12-partition topic (``partitioner``).

The chain runs twice: as the worker runs it, and with its two threads (this one and
the model thread, which inherits the mask) held on one CPU (Linux
``sched_setaffinity``). The GIL runs them one at a time either way; the difference
(``cross_core``) is what running them on two cores costs, most likely the objects both
touch (reference counts, the types, the policy) moving between the cores' caches at
each hand-off. A first, untimed chain of ``WARM_UP_EVENTS`` does once what only a
first run does (caches filled, code paths taken the first time), so that neither timed
run pays for it.

CPU time of the thread that runs each part (``time.thread_time``), per event: less noisy
than ``bench overhead``'s events/s, so that runs of the same minute, alternating two
versions of the code, can tell a change of a few per cent apart.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from worker.bench.instant import instant_models
from worker.bench.machine import machine_info
from worker.bench.overhead import text_events
from worker.bench.report import progress, ratio
from worker.streaming.types import OutgoingRecord, ProcessingStep

NAME = "steps"
HELP = (
    "µs of consumer-thread CPU per event through the step chain (no Kafka) vs the same "
    "stage functions in a plain loop, stage by stage"
)
TOPIC = "bench-steps"
WARM_UP_EVENTS = 2_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=50_000, help="events (default 50000)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import json

    from worker.config import Settings
    from worker.pipeline import GC_YOUNG_THRESHOLD
    from worker.streaming.types import Lease, Message, Partition

    settings = Settings(input_topic=TOPIC, worker_id="bench")
    models = instant_models()
    partition = Partition(TOPIC, 0)
    lease = Lease(partition)
    values = [json.dumps(event).encode() for event in text_events(args.events)]

    def messages() -> list[Message[bytes | None]]:
        return [
            Message(value, partition, offset, 0, None, value, (), lease)
            for offset, value in enumerate(values)
        ]

    # The collector as the Worker's loop runs it (Worker.run), restored after.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        measured = _measure(settings, models, messages, values)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    per_event = {name: _us(seconds, args.events) for name, seconds in measured.stage_cpu_s.items()}
    inline = sum(v for k, v in measured.stage_cpu_s.items() if k != "classify")
    chain_us = _us(measured.chain_cpu_s, args.events)
    one_cpu_us = (
        _us(measured.one_cpu_chain_cpu_s, args.events)
        if measured.one_cpu_chain_cpu_s is not None
        else None
    )
    inline_us = _us(inline, args.events)
    return {
        "benchmark": NAME,
        "unit": "µs/event",
        "events": args.events,
        "verdicts": measured.verdicts,
        "guardstream": chain_us,
        "guardstream_wall": _us(measured.chain_wall_s, args.events),
        "baseline": inline_us,
        "baseline_path": "the consumer thread's stage functions (decode, fetch, decide, "
        "publish) in a plain loop",
        "ratio": ratio(inline_us, chain_us),
        "step_protocol": round(chain_us - inline_us, 2),
        "guardstream_one_cpu": one_cpu_us,
        "cross_core": round(chain_us - one_cpu_us, 2) if one_cpu_us is not None else None,
        "stages": per_event,
        "peer_work": _us(measured.peer_cpu_s, args.events),
        "peer_path": "quix_app's per-event function: validate ConversationEvent, VerdictEvent JSON",
        "partitioner": {
            name: _us(seconds, args.events) for name, seconds in measured.partitioner_cpu_s.items()
        },
        "machine": machine_info(),
    }


class Measured(NamedTuple):
    verdicts: int  # what the chain published
    chain_cpu_s: float
    chain_wall_s: float
    one_cpu_chain_cpu_s: float | None  # None where threads can't be pinned (not Linux)
    stage_cpu_s: dict[str, float]  # the plain loop's, per stage
    peer_cpu_s: float
    partitioner_cpu_s: dict[str, float]  # kafka-python's and guardstream's, over the keys


def _measure(
    settings: Any, models: Any, messages: Callable[[], list[Any]], values: Sequence[bytes]
) -> Measured:
    from worker.metrics import Metrics
    from worker.pipeline import build_stages

    events = len(values)
    # Untimed: what only a first run does would count against whichever run is first.
    progress("warming up")
    run_chain(settings, models, messages()[:WARM_UP_EVENTS])
    progress(f"{events} events through the step chain")
    chain_cpu_s, chain_wall_s, verdicts = run_chain(settings, models, messages())

    one_cpu_chain_cpu_s = None
    if hasattr(os, "sched_setaffinity"):
        progress(f"{events} events through the step chain, its threads on one CPU")
        with one_cpu():
            one_cpu_chain_cpu_s, _, _ = run_chain(settings, models, messages())

    progress("the same stage functions in a plain loop")
    stages = build_stages(settings, models, _no_images, Metrics())
    stage_cpu_s, keys = plain_loop(
        stages, messages(), settings.max_batch_size, settings.output_topic
    )
    if len(keys) != events:
        raise RuntimeError(f"the plain loop published {len(keys)} of {events} verdicts")

    progress("the Quix Streams peer's per-event function in a plain loop")
    peer_cpu_s = peer_loop(values)

    progress("the kafka-python producer's partitioner over the verdicts' keys, both ways")
    partitioner_cpu_s = partitioner_loop(keys, settings.output_topic)

    return Measured(
        verdicts,
        chain_cpu_s,
        chain_wall_s,
        one_cpu_chain_cpu_s,
        stage_cpu_s,
        peer_cpu_s,
        partitioner_cpu_s,
    )


def run_chain(settings: Any, models: Any, messages: Sequence[Any]) -> tuple[float, float, int]:
    """``messages`` through a new step chain; (thread CPU s, wall s, verdicts). Raises
    unless the terminal saw a verdict for every one."""
    from worker.metrics import Metrics
    from worker.pipeline import build_steps

    sink = CountingSink(settings.output_topic)
    wakeup = threading.Event()
    steps = build_steps(settings, models, _no_images, sink, Metrics(), wakeup=wakeup)
    cpu_s, wall_s = drive(steps, messages, sink, wakeup)
    if sink.verdicts != len(messages):
        raise RuntimeError(f"the chain published {sink.verdicts} of {len(messages)} verdicts")
    return cpu_s, wall_s, sink.verdicts


@contextmanager
def one_cpu() -> Iterator[None]:
    """This thread, and the threads it starts meanwhile, on the lowest CPU it may use."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


class CountingSink(ProcessingStep[Sequence[OutgoingRecord]]):
    """The terminal step: counts the verdict records it is handed, and takes every one."""

    def __init__(self, output_topic: str) -> None:
        self._output_topic = output_topic
        self.verdicts = 0

    def submit(self, message: Any) -> None:
        for record in message.payload:
            if record.topic == self._output_topic:
                self.verdicts += 1

    def poll(self) -> None:
        pass

    def close(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


def drive(
    steps: Any, messages: Sequence[Any], sink: CountingSink, wakeup: threading.Event
) -> tuple[float, float]:
    """Feed ``messages`` as ``StreamProcessor`` does; (thread CPU s, wall s) until the
    sink saw them all (or a minute passed)."""
    from worker.streaming.exceptions import MessageRejected

    expected = len(messages)
    started_cpu, started = time.thread_time(), time.perf_counter()
    deadline = started + 60
    index = 0
    while sink.verdicts < expected and time.perf_counter() < deadline:
        wakeup.clear()
        steps.poll()
        while index < expected:
            try:
                steps.submit(messages[index])
            except MessageRejected:
                break
            index += 1
        if sink.verdicts < expected:
            wakeup.wait(0.01)  # the consumer loop's backpressure wait
    cpu, wall = time.thread_time() - started_cpu, time.perf_counter() - started
    steps.close()
    steps.join(10)
    return cpu, wall


def plain_loop(
    stages: Any, messages: Sequence[Any], chunk: int, output_topic: str
) -> tuple[dict[str, float], list[bytes]]:
    """Each stage over ``chunk`` events in turn (a poll's worth, so that as few objects
    are alive as in the chain), each stage timed; (seconds per stage, verdict keys)."""
    seconds = dict.fromkeys(("decode", "fetch", "classify", "decide", "publish"), 0.0)
    keys: list[bytes] = []

    def timed(name: str, stage: Callable[[Any], Any], messages: Sequence[Any]) -> list[Any]:
        started = time.thread_time()
        out = [m.replace(stage(m)) for m in messages]
        seconds[name] += time.thread_time() - started
        return out

    def classify(messages: Sequence[Any]) -> list[Any]:
        started = time.thread_time()
        results = stages.classify([m.payload for m in messages])
        seconds["classify"] += time.thread_time() - started
        return [m.replace(r) for m, r in zip(messages, results, strict=True)]

    for start in range(0, len(messages), chunk):
        decoded = timed("decode", stages.decode, messages[start : start + chunk])
        fetched = timed("fetch", stages.fetch, decoded)
        decided = timed("decide", stages.decide, classify(fetched))
        published = timed("publish", stages.publish, decided)
        keys.extend(r.key for m in published for r in m.payload if r.topic == output_topic)
    return seconds, keys


def peer_loop(values: Sequence[bytes]) -> float:
    """Thread CPU seconds of the Quix peer's per-event function over ``values``."""
    from worker.bench.peer_work import peer_moderate

    moderate = peer_moderate(TOPIC)
    started = time.thread_time()
    for value in values:
        moderate(value)
    return time.thread_time() - started


def partitioner_loop(keys: Sequence[bytes], topic: str) -> dict[str, float]:
    """Thread CPU seconds of kafka-python's DefaultPartitioner and of guardstream's over
    ``keys``; raises if they chose differently for any key."""
    from kafka.partitioner import DefaultPartitioner

    from worker.bench.cluster import StaticCluster
    from worker.streaming.murmur2 import Murmur2Partitioner

    cluster = StaticCluster({topic: range(12)})
    seconds: dict[str, float] = {}
    chosen: dict[str, list[int]] = {}
    for name, partitioner in (
        ("kafka_python", DefaultPartitioner()),
        ("guardstream", Murmur2Partitioner()),
    ):
        partition = partitioner.partition
        started = time.thread_time()
        chosen[name] = [partition(topic, key, key, None, None, cluster) for key in keys]
        seconds[name] = time.thread_time() - started
    if chosen["kafka_python"] != chosen["guardstream"]:
        raise RuntimeError("the partitioners chose different partitions")
    return seconds


def _no_images(image: Any) -> Any:
    raise AssertionError("bench steps sends text-only events: nothing to fetch")


def _us(seconds: float, events: int) -> float:
    return round(seconds / events * 1e6, 2)
