"""Tiny random Llama Guard 3 models, from the shared cache (``worker.lab.models``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import REPORT

from worker.engine.loading import LoadedModel, load_text_model, load_vision_model
from worker.lab import cached_tiny_model


@pytest.fixture(scope="module", autouse=True)
def _single_thread() -> Iterator[None]:
    # Tiny matmuls on a shared 2-core machine: one thread avoids spin-wait contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_vision_dir() -> Path:
    return cached_tiny_model("vision", seed=0)


@pytest.fixture(scope="session")
def tiny_text_dir() -> Path:
    return cached_tiny_model("text", seed=0)


@pytest.fixture(scope="session")
def vision_model(tiny_vision_dir: Path) -> LoadedModel:
    return load_vision_model(str(tiny_vision_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def text_model(tiny_text_dir: Path) -> LoadedModel:
    return load_text_model(str(tiny_text_dir), dtype="float32", device="cpu")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("engine fidelity")
        for line in REPORT:
            terminalreporter.write_line(line)
