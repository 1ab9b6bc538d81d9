"""The tiny test models carry the real tokenizer, processor settings and template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from worker.engine import token_ids
from worker.engine.loading import LoadedModel
from worker.engine.tiny import write_tiny_model
from worker.prompt.chat_templates import LLAMA_GUARD_3_8B_TEMPLATE, LLAMA_GUARD_3_VISION_TEMPLATE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_guard"


def _size_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.iterdir()) / 1e6


def test_small_on_disk(tiny_vision_dir: Path, tiny_text_dir: Path) -> None:
    assert _size_mb(tiny_vision_dir) < 100
    assert _size_mb(tiny_text_dir) < 100


def test_vision_model_facts(vision_model: LoadedModel) -> None:
    config = vision_model.model.config
    assert config.model_type == "mllama"
    assert config.image_token_index == token_ids.IMAGE
    assert config.text_config.pad_token_id == token_ids.PAD
    assert list(config.text_config.eos_token_id) == list(token_ids.STOP_IDS)
    assert config.text_config.vocab_size == 128256
    assert (config.vision_config.image_size, config.vision_config.max_num_tiles) == (560, 4)
    gates = [
        p.detach() for n, p in vision_model.model.named_parameters() if "cross_attn_attn_gate" in n
    ]
    assert gates and all(float(g.abs().min()) > 0 for g in gates)
    assert vision_model.processor.chat_template == LLAMA_GUARD_3_VISION_TEMPLATE
    assert vision_model.tokenizer.convert_tokens_to_ids("<|image|>") == token_ids.IMAGE


def test_processor_uses_the_real_preprocessor_settings(tiny_vision_dir: Path) -> None:
    saved = json.loads((tiny_vision_dir / "processor_config.json").read_text())["image_processor"]
    reference = json.loads((FIXTURES / "mllama_preprocessor_config.json").read_text())
    for key, value in reference.items():
        if key in ("_note", "processor_class"):
            continue
        assert (
            saved[key] == pytest.approx(value) if isinstance(value, float) else saved[key] == value
        )


def test_text_model_facts(text_model: LoadedModel) -> None:
    assert text_model.model.config.model_type == "llama"
    assert text_model.tokenizer.chat_template == LLAMA_GUARD_3_8B_TEMPLATE
    assert "<|image|>" not in text_model.tokenizer.get_vocab()
    assert len(text_model.tokenizer) == 128256


def test_answer_rows_stay_ordinary(vision_model: LoadedModel) -> None:
    weight = vision_model.model.get_output_embeddings().weight.detach()
    # The answer rows were re-centred but stay about as long as the others.
    typical = float(weight[:1000].norm(dim=1).mean())
    for row in (token_ids.SAFE, token_ids.UNSAFE):
        assert float(weight[row].norm()) < 3 * typical


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        write_tiny_model(tmp_path, "audio")  # type: ignore[arg-type]


def test_seed_is_deterministic(tmp_path: Path, tiny_text_dir: Path) -> None:
    again = write_tiny_model(tmp_path / "again", "text", seed=0)
    from safetensors.torch import load_file

    first = load_file(str(tiny_text_dir / "model.safetensors"))
    second = load_file(str(again / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
