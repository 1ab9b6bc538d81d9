"""Loading: dtype/device defaults, offline mode, model checks, the start-up log line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from structlog.testing import capture_logs

from worker.engine.exceptions import ModelLoadError
from worker.engine.loading import (
    load_text_model,
    load_vision_model,
    resolve_device,
    resolve_dtype,
)
from worker.prompt.categories import DEFAULT_CATEGORIES, LG3_8B_CATEGORIES, policy_hash
from worker.prompt.formats import detect_prompt_format, template_sha256
from worker.prompt.types import PromptFormat


def test_dtype_defaults() -> None:
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) is torch.bfloat16
    assert resolve_dtype("float16", torch.device("cpu")) is torch.float16
    assert resolve_dtype(torch.bfloat16, torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("int8", torch.device("cpu"))


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_offline_hub_id_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"offline=True"):
        load_vision_model("meta-llama/Llama-Guard-3-11B-Vision", device="cpu")
    assert time.monotonic() - started < 30


def test_vision_loader_rejects_a_text_model(tiny_text_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="not mllama"):
        load_vision_model(str(tiny_text_dir), device="cpu")


def test_vision_load_logs_what_runs(tiny_vision_dir: Path) -> None:
    with capture_logs() as logs:
        loaded = load_vision_model(str(tiny_vision_dir), device="cpu")
    (entry,) = [e for e in logs if e["event"] == "model_loaded"]
    assert entry["model_id"] == str(tiny_vision_dir)
    assert (entry["revision"], entry["dtype"], entry["device"]) == ("local", "float32", "cpu")
    assert entry["template_sha256"] == template_sha256(PromptFormat.LG3_VISION, with_image=True)
    assert entry["default_policy_hash"] == policy_hash(DEFAULT_CATEGORIES)
    assert entry["model_template_matches"] is True
    assert loaded.is_vision and loaded.prompt_format is PromptFormat.LG3_VISION
    assert loaded.tokenizer.padding_side == "left"


def test_text_load_detects_the_8b_template(tiny_text_dir: Path) -> None:
    with capture_logs() as logs:
        loaded = load_text_model(str(tiny_text_dir), device="cpu", dtype="float32")
    (entry,) = [e for e in logs if e["event"] == "model_loaded"]
    assert loaded.prompt_format is PromptFormat.LG3_8B
    assert not loaded.is_vision
    assert entry["model_template_matches"] is True
    assert entry["default_policy_hash"] == policy_hash(LG3_8B_CATEGORIES)


def test_detect_prompt_format() -> None:
    from worker.prompt.chat_templates import (
        LLAMA_GUARD_3_8B_TEMPLATE,
        LLAMA_GUARD_3_VISION_TEMPLATE,
    )

    assert detect_prompt_format(LLAMA_GUARD_3_VISION_TEMPLATE) is PromptFormat.LG3_VISION
    assert detect_prompt_format(LLAMA_GUARD_3_8B_TEMPLATE) is PromptFormat.LG3_8B
    assert detect_prompt_format(None) is PromptFormat.LG3_8B
