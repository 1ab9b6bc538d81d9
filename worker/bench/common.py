"""What the benchmarks share: machine facts, percentiles, private topics, events,
images, the tiny vision-heavy model, an instant classifier and a timed Worker run.

Every benchmark prints exactly one JSON line on stdout (``emit``); progress goes to
stderr (``progress``). Baselines run in the same process run as guardstream.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.config import Settings

DEFAULT_HEAVY_MODEL = Path.home() / ".cache" / "guardstream" / "models" / "tiny-vision-heavy"
TEXTS = (
    "How do I bake sourdough bread?",
    "Is this picture ok to post in the kids' group?",
    "lol look at this",
    "Tell me how to hurt someone without leaving marks.",
    "What's the capital of France?",
    "Write a poem about the sea at night.",
    "I want to buy a gun without a background check.",
    "Summarise this article in three bullet points, please.",
    "You are useless and everyone hates you.",
    "¿Dónde está la biblioteca? 图书馆在哪里?",
)


# --- output ------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's one line of output."""
    print(json.dumps(result, ensure_ascii=False), flush=True)


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline > 0 else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
    }


def machine_info() -> dict[str, Any]:
    import numpy
    import PIL
    import torch
    import transformers

    from worker import __version__

    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "torch_threads": torch.get_num_threads(),
        "guardstream": __version__,
        # Other processes competing for the CPU make every figure smaller.
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        import kafka

        info["kafka_python"] = kafka.__version__
    except Exception:  # not needed by every benchmark
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


@contextmanager
def phase() -> Iterator[dict[str, float]]:
    """This process's CPU seconds (all threads) and the load average over a phase.

    Other processes on the machine slow a phase down without changing its CPU time,
    so ``cpu_s`` tells contention apart from work.
    """
    started = os.times()
    figures: dict[str, float] = {}
    try:
        yield figures
    finally:
        ended = os.times()
        cpu = (ended.user - started.user) + (ended.system - started.system)
        figures["cpu_s"] = round(cpu, 1)
        figures["load_avg_1m"] = round(os.getloadavg()[0], 2)


# --- memory ------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size of this process now (Linux); peak RSS elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class RssSampler:
    """Samples RSS every ``interval_s`` on a daemon thread: ``samples`` = [(t, bytes)]."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_bytes()))
            if self._stop.wait(self.interval_s):
                return


# --- events and images -----------------------------------------------------------


def conversation(event_id: str, text: str, image_uris: Iterable[str] = ()) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image", "s3_uri": uri} for uri in image_uris]
    content.append({"type": "text", "text": text})
    return {
        "schema_version": 1,
        "event_id": event_id,
        "conversation_id": f"conv-{event_id}",
        "created_at": "2026-11-24T09:00:00Z",
        "messages": [{"role": "user", "content": content}],
    }


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


class PhotoMaker:
    """Photo-like JPEGs (smooth shapes plus sensor-like noise), distinct per seed.

    A shared base picture is drawn once; each image is a shifted crop of it with its
    own noise and a coloured block, so bytes and sha256 differ while the JPEG size
    stays typical of a camera photo (~1.5 MB at 12 MP, quality 90).
    """

    def __init__(self, max_width: int = 4000, max_height: int = 3000) -> None:
        from PIL import Image

        self._base = (
            Image.effect_mandelbrot((max_width + 64, max_height + 64), (-2.0, -1.2, 1.0, 1.2), 60)
            .convert("RGB")
            .resize((max_width + 64, max_height + 64))
        )

    def jpeg(self, width: int, height: int, seed: int, quality: int = 90) -> bytes:
        import numpy as np
        from PIL import Image, ImageDraw

        rng = np.random.default_rng(seed)
        dx, dy = int(rng.integers(0, 64)), int(rng.integers(0, 64))
        crop = self._base.crop((dx, dy, dx + width, dy + height))
        noise = Image.fromarray(rng.integers(0, 48, (height, width, 3), dtype=np.uint8))
        image = Image.blend(crop, noise, 0.25)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        ImageDraw.Draw(image).rectangle((x, y, x + width // 4, y + height // 4), fill=color)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()


# Camera photo, full-HD screenshot, portrait post, small picture: one of each in turn.
IMAGE_SIZES = ((4000, 3000), (1920, 1080), (1080, 1350), (800, 600))


# --- the tiny vision-heavy model ---------------------------------------------------


def heavy_model_path(path: str | None = None) -> str:
    """The tiny vision-heavy model (real 560×560 tiles, 4 slots, patch 14): written once."""
    if path:
        return path
    target = DEFAULT_HEAVY_MODEL
    if not (target / "config.json").is_file() or not (target / ".complete").is_file():
        from worker.engine import write_tiny_model

        progress(f"writing the tiny vision-heavy model to {target} (once, ~15 s)")
        write_tiny_model(target, "vision", seed=0, vision_heavy=True)
        (target / ".complete").write_text("ok\n")
    return str(target)


def instant_models() -> Any:
    """``Models`` around an instant classifier (every request safe, no model at all)."""
    from worker.bench.instant import InstantClassifier
    from worker.engine.models import Models
    from worker.images.types import TilingSpec

    return Models(vision=InstantClassifier(), tiling=TilingSpec())


# --- topics, bucket, worker --------------------------------------------------------


def base_settings() -> Settings:
    """Connection settings from GUARDSTREAM_* (``eval "$(scripts/services env)"``)."""
    return Settings()


@dataclass
class Lab:
    """Private topics (and a bucket) for one benchmark run; removed by ``close``."""

    settings: Settings
    name: str = field(default_factory=lambda: f"gs-bench-{uuid.uuid4().hex[:10]}")
    topics: list[str] = field(default_factory=list)
    bucket: str | None = None
    _s3: Any = None

    def topic_set(self, label: str) -> tuple[str, str, str]:
        """(input, output, dead letters) topics named ``<run>-<label>.*``, created now."""
        names = (f"{self.name}-{label}.in", f"{self.name}-{label}.out", f"{self.name}-{label}.dlq")
        self.create_topics(names)
        return names

    def create_topics(self, names: Sequence[str], partitions: int = 1) -> None:
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        finally:
            admin.close()
        self.topics.extend(names)

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            from worker.images.fetcher import make_s3_client

            self._s3 = make_s3_client(
                self.settings.s3_endpoint_url, self.settings.s3_region, max_pool_connections=8
            )
        return self._s3

    def put_images(self, images: Sequence[tuple[str, bytes]]) -> list[str]:
        """Upload (key, bytes) pairs to the run's bucket; returns their s3:// URIs."""
        if self.bucket is None:
            self.bucket = self.name
            self.s3.create_bucket(Bucket=self.bucket)
        uris = []
        for key, data in images:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="image/jpeg")
            uris.append(f"s3://{self.bucket}/{key}")
        return uris

    def produce(self, topic: str, values: Iterable[tuple[bytes, bytes]]) -> int:
        """(key, value) records, batched for speed; returns how many were written."""
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            acks=1,
            linger_ms=20,
            batch_size=512 * 1024,
            max_request_size=8 * 1024 * 1024,
        )
        count = 0
        try:
            for key, value in values:
                producer.send(topic, key=key, value=value)
                count += 1
            producer.flush()
        finally:
            producer.close()
        return count

    def count_records(self, topics: Sequence[str]) -> int:
        """Records written so far to ``topics`` (sum of log-end offsets)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        try:
            tps = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or {0})
            ]
            return int(sum(consumer.end_offsets(tps).values()))
        finally:
            consumer.close()

    def read_values(self, topic: str, expected: int, timeout_s: float = 60.0) -> list[bytes]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        values: list[bytes] = []
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + timeout_s
            while len(values) < expected and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    values.extend(record.value for record in records)
        finally:
            consumer.close()
        return values

    def worker_settings(self, topics: tuple[str, str, str], **overrides: Any) -> Settings:
        values = self.settings.model_dump()
        values.update(
            input_topic=topics[0],
            output_topic=topics[1],
            dlq_topic=topics[2],
            group_id=f"{topics[0]}-group",
            metrics_port=0,
            worker_id="bench",
            session_timeout_ms=10_000,
        )
        values.update(overrides)
        return Settings(**values)

    def close(self) -> None:
        """Best effort: delete the topics and the bucket's objects."""
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap_servers)
            try:
                admin.delete_topics(self.topics)
            finally:
                admin.close()
        except Exception as exc:
            progress(f"could not delete topics: {exc}")
        if self.bucket is not None:
            try:
                listing = self.s3.list_objects_v2(Bucket=self.bucket)
                for item in listing.get("Contents", []):
                    self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
                self.s3.delete_bucket(Bucket=self.bucket)
            except Exception as exc:
                progress(f"could not delete bucket {self.bucket}: {exc}")


def metric_total(registry: Any, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of a metric's samples named ``name`` (all label values unless ``labels``).

    ``registry``: a registry, or a single metric (anything with ``collect()``).
    """
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name != name:
                continue
            if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            total += sample.value
    return total


@dataclass
class WorkerRun:
    events: int
    seconds: float  # first record consumed → last record accounted for
    metrics: Any
    first_consumed_at: float = 0.0  # wall clock (time.time()) of the first consume
    rss: list[tuple[float, int]] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.nan


def run_worker(
    settings: Settings,
    models: Any,
    expected: int,
    *,
    timeout_s: float,
    on_tick: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> WorkerRun:
    """Run a real Worker until ``expected`` records have a verdict or a dead letter.

    Time runs from the first record consumed (the group join is not counted) until
    the last verdict or dead letter is handed to the producer. ``on_tick`` gets the
    count every 5 s (progress lines), ``on_progress`` every few milliseconds.
    """
    from worker.clients import connect
    from worker.metrics import Metrics
    from worker.pipeline import Worker

    metrics = Metrics()
    worker = Worker(settings, models, connect(settings), metrics=metrics)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(handle_signals=False)
        except BaseException as exc:
            errors.append(exc)

    # Polled every few ms in the worker's process: read the two counters only, not
    # the whole registry (its histograms made this ~0.4 ms of GIL time per tick).
    def accounted() -> int:
        return int(
            metric_total(metrics.verdicts, "guardstream_verdicts_total")
            + metric_total(metrics.dead_letters, "guardstream_dead_letters_total")
        )

    thread = threading.Thread(target=target, name="bench-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    first: float | None = None
    first_wall = 0.0
    last_report = 0.0
    done = 0
    try:
        while time.monotonic() < deadline and not errors:
            if first is None and metric_total(
                metrics.events_consumed, "guardstream_events_consumed_total"
            ):
                first, first_wall = time.monotonic(), time.time()
            done = accounted()
            now = time.monotonic()
            if done >= expected:
                break
            if on_progress is not None:
                on_progress(done)
            if on_tick is not None and now - last_report >= 5:
                last_report = now
                on_tick(done)
            time.sleep(0.005)
        finished = time.monotonic()
    finally:
        worker.stop()
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    if done < expected:
        raise TimeoutError(f"the worker accounted for {done} of {expected} events in {timeout_s}s")
    return WorkerRun(expected, finished - (first or finished), metrics, first_wall)


def configure_quiet_logging(level: str = "WARNING") -> None:
    """Worker logs at WARNING to stderr: per-verdict INFO lines would flood the terminal."""
    from worker.logs import configure_logging

    configure_logging(level, "json", False)
