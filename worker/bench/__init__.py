"""``guardstream bench NAME``: benchmarks that run guardstream and its baseline in the
same process run and print one JSON line (figures, baseline, ratio, machine).

Modules import only light things at the top: the CLI builds its parser from them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BENCHMARKS = (
    "e2e",
    "preprocess",
    "overhead",
    "steps",
    "backlog",
    "repeat",
    "engine",
    "categories",
    "text",
    "hashbank",
)


def load(name: str) -> ModuleType:
    if name not in BENCHMARKS:
        raise ValueError(f"no benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return importlib.import_module(f"worker.bench.{name}")
