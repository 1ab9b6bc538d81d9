"""The tiny random models, written once into a cache shared by tests, benchmarks and
the demo.

A cached model is written into a temporary directory beside its final place and
renamed into it when complete, with a marker holding its fingerprint (what wrote it:
kind, seed, the writer's source, the transformers version). A directory without the
right marker (a run killed while an older, non-atomic writer was at work) is never
loaded: it is replaced. Different fingerprints live in different directories, so
checkouts with different writers share a cache without replacing each other's models.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

MARKER = ".complete"


def cache_root() -> Path:
    """``$GUARDSTREAM_CACHE_DIR/models`` (default ``~/.cache/guardstream/models``)."""
    base = os.environ.get("GUARDSTREAM_CACHE_DIR") or Path.home() / ".cache" / "guardstream"
    return Path(base) / "models"


def fingerprint(kind: str, *, vision_heavy: bool, seed: int) -> str:
    import transformers

    import worker.engine.tiny as writer

    digest = hashlib.sha256()
    digest.update(Path(writer.__file__).read_bytes())
    digest.update(f"|{kind}|{vision_heavy}|{seed}|{transformers.__version__}".encode())
    return digest.hexdigest()


def is_complete(directory: Path, expected: str) -> bool:
    marker = directory / MARKER
    return marker.is_file() and marker.read_text().strip() == expected


def cached_tiny_model(
    kind: Literal["vision", "text"] = "vision",
    *,
    vision_heavy: bool = False,
    seed: int = 0,
    root: Path | None = None,
    on_build: Callable[[Path], None] | None = None,
) -> Path:
    """The directory of a tiny model (``worker.engine.write_tiny_model``), written on
    first use. ``on_build(path)`` is called before a (slow, ~15 s) build."""
    from worker.engine import write_tiny_model

    root = root or cache_root()
    expected = fingerprint(kind, vision_heavy=vision_heavy, seed=seed)
    name = f"tiny-{kind}{'-heavy' if vision_heavy else ''}-{expected[:12]}"
    target = root / name
    if is_complete(target, expected):
        return target
    if on_build is not None:
        on_build(target)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        write_tiny_model(staging, kind, seed=seed, vision_heavy=vision_heavy)
        (staging / MARKER).write_text(expected + "\n")
        if target.exists() and not is_complete(target, expected):
            _discard(target)
        try:
            staging.rename(target)
        except OSError:
            # Another process renamed its copy in first: as good as ours.
            if not is_complete(target, expected):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _discard(directory: Path) -> None:
    """Move a broken directory out of the way at once, then delete it."""
    aside = directory.with_name(f".{directory.name}.broken-{uuid.uuid4().hex[:8]}")
    try:
        directory.rename(aside)
    except OSError:
        return  # someone else moved it already
    shutil.rmtree(aside, ignore_errors=True)
