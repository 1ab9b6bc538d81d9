"""Hot reload: the current ``PolicySet``, re-read when the file changes or on SIGHUP.

The worker's loop calls ``poll()`` (cheap: one ``stat`` at most once a second); the
SIGHUP handler calls ``request_reload()``, which only takes note (a signal handler
must not log: the interrupted code may hold the log stream's lock). A file that does
not parse or validate is refused whole: the old profiles stay.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from worker.metrics import Metrics
from worker.policy.exceptions import PolicyFileError
from worker.policy.loading import load_policy_file, parse_policy
from worker.policy.profiles import PolicySet, builtin_policy

log = structlog.get_logger(__name__)

FileSignature = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


class PolicyStore:
    """Holds the profiles in force. ``current`` is replaced whole (one reference
    store), so threads that read it never see half a reload."""

    def __init__(
        self,
        path: str | Path | None,
        *,
        unsafe_threshold: float = 0.5,
        metrics: Metrics | None = None,
        check_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Loads the file now; raises ``PolicyFileError`` (a start-up error) if it is
        bad. ``path`` None: the built-in profile, never reloaded."""
        self._path = Path(path) if path is not None else None
        self._unsafe_threshold = unsafe_threshold
        self._metrics = metrics
        self._interval = check_interval_s
        self._clock = clock
        self._reload_requested = False
        self._next_check = clock() + check_interval_s
        if self._path is None:
            self.current = builtin_policy(unsafe_threshold)
            self._signature: FileSignature | None = None
        else:
            self._signature = _signature(self._path)
            self.current = load_policy_file(self._path, unsafe_threshold=unsafe_threshold)

    @property
    def path(self) -> Path | None:
        return self._path

    def request_reload(self) -> None:
        """Signal-safe: only takes note; the next ``poll()`` re-reads the file."""
        self._reload_requested = True

    def poll(self) -> bool:
        """From the caller's loop. Re-reads the file on request, or when its stat
        changed (checked at most every ``check_interval_s``); True when new profiles
        took effect."""
        if self._path is None:
            self._reload_requested = False
            return False
        requested = self._reload_requested
        now = self._clock()
        if not requested and now < self._next_check:
            return False
        self._next_check = now + self._interval
        signature = _signature(self._path)
        if not requested and signature == self._signature:
            return False
        self._reload_requested = False
        self._signature = signature
        return self._reload(forced=requested)

    def _reload(self, *, forced: bool) -> bool:
        assert self._path is not None
        try:
            data = self._path.read_bytes()
        except OSError as exc:
            self._refused([f"cannot read: {exc.strerror}"])
            return False
        if not forced and hashlib.sha256(data).hexdigest() == self.current.digest:
            return False  # touched, not changed
        try:
            policy = parse_policy(
                data, source=str(self._path), unsafe_threshold=self._unsafe_threshold
            )
        except PolicyFileError as exc:
            self._refused([str(issue) for issue in exc.issues])
            return False
        changed = _versions(policy) != _versions(self.current)
        self.current = policy
        self._count("ok")
        log.info(
            "policy file reloaded",
            path=str(self._path),
            changed=changed,
            tenants=len(policy.tenants),
            defaults_version=policy.defaults.version[:12],
        )
        return True

    def _refused(self, errors: list[str]) -> None:
        """Logs the TOML paths and what is wrong there, never the file's content."""
        self._count("error")
        log.error(
            "policy file refused; the previous profiles stay in force",
            path=str(self._path),
            errors=errors,
        )

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.policy_reloads.labels(result=result).inc()


def _signature(path: Path) -> FileSignature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _versions(policy: PolicySet) -> tuple[object, ...]:
    return (
        policy.defaults.version,
        policy.require_known_tenant,
        tuple(sorted((tenant, p.version) for tenant, p in policy.tenants.items())),
    )
