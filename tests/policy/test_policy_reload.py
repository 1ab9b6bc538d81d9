"""Hot reload: changed files are picked up, broken ones refused whole and counted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from worker.metrics import Metrics
from worker.policy import BUILTIN, PolicyFileError, PolicyStore

GOOD = "[defaults]\nunsafe_threshold = 0.4\n[tenants.kids]\nunsafe_threshold = 0.2\n"
CHANGED = "[defaults]\nunsafe_threshold = 0.4\n[tenants.kids]\nunsafe_threshold = 0.1\n"
BROKEN = '[defaults]\nunsafe_threshold = 7\nmode = "loud"\n'


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reloads(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "guardstream_policy_reloads_total", {"result": result}
    )
    return value or 0.0


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, PolicyStore, Metrics, Clock]:
    path = tmp_path / "policy.toml"
    write(path, GOOD, 1_000_000_000)
    metrics, clock = Metrics(), Clock()
    store = PolicyStore(path, metrics=metrics, clock=clock, check_interval_s=1.0)
    return path, store, metrics, clock


def test_a_changed_file_is_picked_up_at_the_next_check(
    setup: tuple[Path, PolicyStore, Metrics, Clock],
) -> None:
    path, store, metrics, clock = setup
    first = store.current
    assert first.tenants["kids"].settings.unsafe_threshold == 0.2
    write(path, CHANGED, 2_000_000_000)
    clock.now += 0.5
    assert not store.poll()  # not yet: at most one stat per interval
    assert store.current is first
    clock.now += 0.6
    assert store.poll()
    assert store.current.tenants["kids"].settings.unsafe_threshold == 0.1
    assert store.current.tenants["kids"].version != first.tenants["kids"].version
    assert reloads(metrics, "ok") == 1
    clock.now += 5
    assert not store.poll()  # unchanged: no re-read
    # Touched, same content: not a reload.
    os.utime(path, ns=(3_000_000_000, 3_000_000_000))
    clock.now += 5
    assert not store.poll()
    assert reloads(metrics, "ok") == 1


def test_a_broken_file_is_refused_whole_and_counted(
    setup: tuple[Path, PolicyStore, Metrics, Clock],
) -> None:
    path, store, metrics, clock = setup
    before = store.current
    write(path, BROKEN, 2_000_000_000)
    clock.now += 2
    assert not store.poll()
    assert store.current is before  # the old profiles stay, all of them
    assert reloads(metrics, "error") == 1
    clock.now += 2
    assert not store.poll()  # still broken, unchanged: counted once, not every second
    assert reloads(metrics, "error") == 1
    path.unlink()
    clock.now += 2
    assert not store.poll()
    assert reloads(metrics, "error") == 2
    write(path, CHANGED, 3_000_000_000)
    clock.now += 2
    assert store.poll()
    assert store.current.tenants["kids"].settings.unsafe_threshold == 0.1


def test_refusal_log_names_paths_not_content(
    setup: tuple[Path, PolicyStore, Metrics, Clock],
) -> None:
    import structlog

    path, store, _, clock = setup
    write(path, '[defaults]\nmode = "SECRET-VALUE"\n', 2_000_000_000)
    clock.now += 2
    with structlog.testing.capture_logs() as logs:
        store.poll()
    (entry,) = [e for e in logs if e["log_level"] == "error"]
    assert entry["errors"] == ["defaults.mode: Input should be 'enforce' or 'observe'"]
    assert "SECRET-VALUE" not in repr(logs)


def test_sighup_handler_only_takes_note_and_the_loop_reloads(
    setup: tuple[Path, PolicyStore, Metrics, Clock],
) -> None:
    path, store, metrics, _ = setup
    # Same size and mtime as before: only the request makes it re-read.
    write(path, GOOD.replace("0.2", "0.3"), 1_000_000_000)
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: store.request_reload())
    try:
        os.kill(os.getpid(), signal.SIGHUP)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert store.current.tenants["kids"].settings.unsafe_threshold == 0.2  # nothing yet
    assert store.poll()  # within the interval: a request does not wait for it
    assert store.current.tenants["kids"].settings.unsafe_threshold == 0.3
    assert reloads(metrics, "ok") == 1


def test_start_up_errors_and_the_builtin_store(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(PolicyFileError) as info:
        PolicyStore(bad)
    assert [i.path for i in info.value.issues] == ["defaults.unsafe_threshold", "defaults.mode"]
    builtin = PolicyStore(None, unsafe_threshold=0.6)
    assert builtin.current.defaults.name == BUILTIN
    assert builtin.current.defaults.settings.unsafe_threshold == 0.6
    builtin.request_reload()
    assert not builtin.poll()
