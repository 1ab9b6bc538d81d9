"""Fault-test helpers: worker subprocesses, service outages, exact output accounting,
and the one summary line (plus a JSON line in ``$GUARDSTREAM_REPORT_DIR/faults.jsonl``)
that every fault test leaves behind.

Built on ``worker.lab`` (``Lab``: private topics and bucket; its output consumer).
Assertions are on events and counts, never on timings: every wait is "until this
count is reached", bounded by a generous deadline that only turns a hang into a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from schemas.dead_letter import DeadLetterHeaders
from schemas.review import ReviewRequest
from schemas.verdict import VerdictEvent
from worker.lab import Lab, Outputs, conversation, png_bytes
from worker.lab.outputs import parse_output
from worker.logs import logged_events

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services"


def services(command: str, service: str) -> None:
    """``scripts/services COMMAND SERVICE`` on the services this run uses (same env)."""
    subprocess.run([str(SERVICES), command, service], check=True, timeout=300)


def report_dir() -> Path:
    return Path(os.environ.get("GUARDSTREAM_REPORT_DIR") or ROOT / ".reports")


# --- worker sizing -------------------------------------------------------------------

# Sized so a worker holds little between consume and commit (the in-flight window).
MAX_POLL_RECORDS = 64
MAX_IN_FLIGHT = 64
MAX_BATCH_SIZE = 32
SIZES = {
    "max_poll_records": MAX_POLL_RECORDS,
    "max_in_flight": MAX_IN_FLIGHT,
    "max_batch_size": MAX_BATCH_SIZE,
    "max_batch_tiles": 4 * MAX_BATCH_SIZE,
}
# Events a worker can have consumed and not yet committed: one poll's records waiting to
# enter the pipeline, the fetch stage, the open batch plus two sealed ones. At-least-once
# duplicates per crash are bounded by it.
WINDOW = MAX_POLL_RECORDS + MAX_IN_FLIGHT + 3 * MAX_BATCH_SIZE


# --- events ------------------------------------------------------------------------


def image_events(
    lab: Lab, n: int, *, prefix: str = "e", images: int = 4, texts: int = 4
) -> list[dict[str, Any]]:
    """``n`` events with one image each over a small set of images and texts, so
    that each worker process runs the model on a few distinct prompts and answers
    the rest from its verdict cache: the images are still fetched from S3 and decoded
    for every event, the delivery path is the production one, and a CPU can push
    thousands of events through in a fault test."""
    uris = [
        lab.put_image(f"img/{k}.png", png_bytes(16, 16, (40 * k % 256, 90, 200 - 30 * k)))
        for k in range(images)
    ]
    return [
        conversation(
            f"{prefix}{i}",
            images=(uris[i % images],),
            text=f"fault test message {(i // images) % texts}",
        )
        for i in range(n)
    ]


def event_ids(events: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(e["event_id"]) for e in events}


# --- reading the outputs -------------------------------------------------------------


@dataclass
class Tally:
    """Every record on the verdict and dead-letter topics, by event id."""

    verdicts: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    dead_letter_stages: dict[str, list[str]] = field(default_factory=dict)
    sources: Counter[tuple[int, int]] = field(default_factory=Counter)
    """Input (partition, offset) of every output record."""
    records: int = 0

    @classmethod
    def of(cls, outputs: Outputs) -> Tally:
        tally = cls()
        for verdicts in outputs.verdicts.values():
            for verdict in verdicts:
                tally.add_verdict(verdict)
        for letters in outputs.dead_letters.values():
            for headers, record in letters:
                tally.add_dead_letter(headers, record.key, record.value)
        return tally

    def add(self, lab: Lab, record: Any) -> None:
        parsed = parse_output(lab.topics, record)
        if isinstance(parsed, VerdictEvent):
            self.add_verdict(parsed)
        else:
            self.add_dead_letter(parsed, record.key, record.value)

    def add_verdict(self, verdict: VerdictEvent) -> None:
        self.verdicts[verdict.event_id] += 1
        self.sources[(verdict.source.partition, verdict.source.offset)] += 1
        self.records += 1

    def add_dead_letter(
        self, dead: DeadLetterHeaders, key: bytes | None, value: bytes | None
    ) -> None:
        event_id = _event_id_of(value) or f"key:{(key or b'').decode('utf-8', 'replace')}"
        self.dead_letters[event_id] += 1
        self.dead_letter_stages.setdefault(event_id, []).append(dead.stage.value)
        self.sources[(dead.original_partition, dead.original_offset)] += 1
        self.records += 1

    def accounted(self, expected: set[str]) -> int:
        return sum(1 for e in expected if e in self.verdicts or e in self.dead_letters)

    def lost(self, expected: set[str]) -> set[str]:
        return {e for e in expected if e not in self.verdicts and e not in self.dead_letters}

    def duplicates(self) -> int:
        """Records beyond the first per event id (verdicts and dead letters together)."""
        total = self.verdicts + self.dead_letters
        return sum(count - 1 for count in total.values())

    def stage_counts(self) -> dict[str, int]:
        return dict(Counter(s for stages in self.dead_letter_stages.values() for s in stages))


def _event_id_of(value: bytes | None) -> str | None:
    try:
        document = json.loads(value or b"")
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("event_id"), str):
        return str(document["event_id"])
    return None


class OutputReader:
    """Reads the lab's verdict and dead-letter topics from the beginning, in a
    background thread (``start``) or to their current end (``read_to_end``)."""

    def __init__(self, lab: Lab, *, isolation_level: str = "read_uncommitted") -> None:
        self.lab = lab
        self.isolation_level = isolation_level
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _consumer(self) -> tuple[KafkaConsumer, list[TopicPartition]]:
        return self.lab.output_consumer(isolation_level=self.isolation_level)

    def _take(self, tally: Tally, batch: Mapping[TopicPartition, list[Any]]) -> None:
        for records in batch.values():
            for record in records:
                tally.add(self.lab, record)

    # Live view, for "mid-stream" triggers -----------------------------------------

    def start(self) -> OutputReader:
        self._thread = threading.Thread(target=self._follow, name="fault-reader", daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        try:
            consumer, _ = self._consumer()
            try:
                while not self._stop.is_set():
                    batch = consumer.poll(timeout_ms=200)
                    with self._lock:
                        self._take(self.tally, batch)
            finally:
                consumer.close()
        except BaseException as exc:  # a broker outage may end it; the final read decides
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def accounted(self, expected: set[str]) -> int:
        with self._lock:
            return self.tally.accounted(expected)

    def wait_accounted(
        self,
        expected: set[str],
        at_least: int,
        timeout_s: float,
        *,
        alive: Callable[[], None] | None = None,
        stall_s: float = 240.0,
    ) -> int:
        """Block until ``at_least`` of ``expected`` have an output; ``alive`` may raise
        (e.g. a worker process died) to fail fast. Fails after ``timeout_s``, or once
        no new output arrived for ``stall_s`` (a stuck worker, not a slow one), naming
        the input partitions the group has not committed to their end."""
        deadline = time.monotonic() + timeout_s
        progress, progress_at = -1, time.monotonic()
        while True:
            done = self.accounted(expected)
            if done >= at_least:
                return done
            if done != progress:
                progress, progress_at = done, time.monotonic()
            if alive is not None:
                alive()
            now = time.monotonic()
            if now > deadline or now - progress_at > stall_s:
                why = (
                    f"after {timeout_s:.0f}s"
                    if now > deadline
                    else f"(no progress for {stall_s:.0f}s)"
                )
                raise AssertionError(
                    f"only {done}/{len(expected)} events accounted for {why}, waited for "
                    f"{at_least}; input partition: (committed, end) = {lag_report(self.lab)}"
                )
            time.sleep(0.2)

    # Final, exact count -----------------------------------------------------------

    def read_to_end(self, timeout_s: float = 120.0) -> Tally:
        """A fresh consumer reads everything up to the end offsets (the last stable
        offsets under ``read_committed``) as of now: call it once the writers stopped."""
        outputs = self.lab.read_outputs(timeout_s=timeout_s, isolation_level=self.isolation_level)
        return Tally.of(outputs)


def lag_report(lab: Lab, group_id: str | None = None) -> dict[int, tuple[int, int]]:
    """Per input partition: (the group's committed offset, the end offset)."""
    committed = committed_offsets(lab, group_id or lab.topics.group)
    consumer = KafkaConsumer(bootstrap_servers=lab.bootstrap)
    try:
        tps = [TopicPartition(lab.input_topic, p) for p in range(lab.partitions)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return {tp.partition: (committed[tp.partition], ends[tp]) for tp in tps}


def committed_offsets(lab: Lab, group_id: str) -> dict[int, int]:
    """The group's committed offset per input partition (0 when none)."""
    consumer = KafkaConsumer(
        bootstrap_servers=lab.bootstrap, group_id=group_id, enable_auto_commit=False
    )
    try:
        return {
            p: consumer.committed(TopicPartition(lab.input_topic, p)) or 0
            for p in range(lab.partitions)
        }
    finally:
        consumer.close()


# --- worker subprocesses -------------------------------------------------------------


def worker_env(lab: Lab, model_path: str, **settings: Any) -> dict[str, str]:
    """Environment for ``guardstream run`` on the lab's topics (``GUARDSTREAM_*``)."""
    values: dict[str, Any] = lab.wiring()
    values.update(
        model=model_path,
        device="cpu",
        dtype="float32",
        max_batch_wait_ms=5,
        commit_interval_ms=100,
        session_timeout_ms=6_000,
        log_format="json",
    )
    values.update(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSTREAM_")}
    env.update(
        {
            f"GUARDSTREAM_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in values.items()
        }
    )
    # Several workers share two cores: one torch thread each, no oversubscription.
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return env


def guardstream_command() -> list[str]:
    script = Path(sys.executable).with_name("guardstream")
    return [str(script)] if script.exists() else [sys.executable, "-m", "worker.cli"]


class WorkerProcess:
    """One ``guardstream run`` subprocess; its stderr (the JSON logs) goes to a file."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._start_offset = 0  # where the current start's log begins

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self._start_offset = log.tell()
            self.proc = subprocess.Popen(
                [*guardstream_command(), "run"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.starts += 1
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"worker {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap: no drain, no commit, no goodbye to the group."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 90.0) -> int | None:
        """SIGTERM and wait (graceful drain); SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(f"worker {self.name} ignored SIGTERM for {timeout_s}s") from None

    def log_text(self, *, current: bool = False) -> str:
        """All of the log, or (``current``) what the current start wrote."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._start_offset if current else 0)
            return log.read().decode("utf-8", "replace")

    def logged(self, event: str) -> bool:
        """Whether the current start has logged ``event`` (a JSON log line's ``event``)."""
        # Only lines naming it are parsed: a worker's log holds a line per verdict.
        needle = json.dumps(event)
        lines = [line for line in self.log_text(current=True).splitlines() if needle in line]
        return event in logged_events("\n".join(lines))

    def wait_logged(self, event: str, timeout_s: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.logged(event):
            self.check_alive()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines whose ``event`` is ``event``, across all starts."""
        found = []
        for line in self.log_text().splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    found.append(record)
        return found


def review_event_ids(lab: Lab) -> list[str]:
    """The event id of every committed ReviewRequest on the lab's review topic."""
    records = lab.read_to_end(lab.review_topic, isolation_level="read_committed")
    return [ReviewRequest.model_validate_json(r.value).verdict.event_id for r in records]


# --- the summary line ----------------------------------------------------------------


@dataclass
class FaultReport:
    test: str
    mode: str
    events_sent: int
    kills: int = 0
    restarts: int = 0
    lost: int = 0
    duplicates: int = 0
    duplicate_bound: int | None = None
    dead_letters_by_stage: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tally(
        cls, test: str, mode: str, sent: set[str], tally: Tally, **kwargs: Any
    ) -> FaultReport:
        return cls(
            test=test,
            mode=mode,
            events_sent=len(sent),
            lost=len(tally.lost(sent)),
            duplicates=tally.duplicates(),
            dead_letters_by_stage=tally.stage_counts(),
            **kwargs,
        )

    def emit(self) -> None:
        """Print the summary line (again at the end of the pytest run) and append it as
        JSON to ``$GUARDSTREAM_REPORT_DIR/faults.jsonl``."""
        record = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "run": os.environ.get("GUARDSTREAM_FAULTS_RUN_ID"),
            **vars(self),
        }
        SUMMARIES.append(self.line())
        print("\n" + self.line(), flush=True)
        directory = report_dir()
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "faults.jsonl").open("a") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")

    def line(self) -> str:
        stages = ",".join(f"{k}={v}" for k, v in sorted(self.dead_letters_by_stage.items()))
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"FAULTS {self.test} [{self.mode}]: events_sent={self.events_sent} "
            f"kills={self.kills} restarts={self.restarts} lost={self.lost} "
            f"duplicates={self.duplicates}"
            + (f" (bound {self.duplicate_bound})" if self.duplicate_bound is not None else "")
            + f" dead_letters={stages or 'none'}"
            + (f" {extra}" if extra else "")
        )


#: Summary lines of this pytest run, printed again by the conftest at the end.
SUMMARIES: list[str] = []
