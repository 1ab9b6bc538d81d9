"""Loading Llama Guard 3 models: Vision (Mllama) and the 1B/8B text models."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from typing import Any

import structlog
import torch

from worker.engine.exceptions import ModelLoadError
from worker.engine.token_ids import check_token_ids
from worker.engine.types import ModelInfo
from worker.prompt.categories import DEFAULT_CATEGORIES, LG3_8B_CATEGORIES, policy_hash
from worker.prompt.formats import (
    canonical_chat_messages,
    canonical_prompt_text,
    detect_prompt_format,
    template_sha256,
)
from worker.prompt.types import PromptFormat

log = structlog.get_logger(__name__)

# transformers 5.17's Mllama vision layer warns on every call about its own argument name.
warnings.filterwarnings("ignore", message="`hidden_state` is deprecated", category=FutureWarning)

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference with its tokenizer (and processor for Vision)."""

    model: Any
    tokenizer: Any
    processor: Any | None
    info: ModelInfo
    prompt_format: PromptFormat

    @property
    def is_vision(self) -> bool:
        return self.processor is not None


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """'auto': bfloat16 on GPU, float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def hub_offline() -> bool:
    """HF_HUB_OFFLINE, read at call time (huggingface_hub reads it once at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_model_reference(model: str) -> None:
    """A local directory, or something the hub could resolve: else one clear error
    (the hub's own message is about repo-id characters, puzzling for a mistyped path)."""
    if os.path.isdir(model):
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ModelLoadError(f"{model}: no such directory, and not a hub id") from None


def load_vision_model(
    model: str,
    *,
    revision: str | None = None,
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
) -> LoadedModel:
    """Llama Guard 3 Vision (``MllamaForConditionalGeneration``) and its ``MllamaProcessor``."""
    from transformers import AutoConfig, AutoProcessor, MllamaForConditionalGeneration

    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    offline = hub_offline()
    check_model_reference(model)
    try:
        config = AutoConfig.from_pretrained(model, revision=revision, local_files_only=offline)
        if config.model_type != "mllama":
            raise ModelLoadError(f"{model!r} is a {config.model_type!r} model, not mllama")
        processor = AutoProcessor.from_pretrained(
            model, revision=revision, local_files_only=offline
        )
        net: Any = MllamaForConditionalGeneration.from_pretrained(
            model, revision=revision or "main", dtype=torch_dtype, local_files_only=offline
        )
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load {model!r} (offline={offline}): {exc}") from exc
    net.to(target).eval()
    processor.tokenizer.padding_side = "left"
    check_token_ids(processor.tokenizer, vision=True)
    loaded = LoadedModel(
        model=net,
        tokenizer=processor.tokenizer,
        processor=processor,
        info=_model_info(model, revision, net, torch_dtype, target),
        prompt_format=PromptFormat.LG3_VISION,
    )
    _log_loaded(loaded, processor.chat_template)
    return loaded


def load_text_model(
    model: str,
    *,
    revision: str | None = None,
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
) -> LoadedModel:
    """Llama Guard 3 1B/8B (``AutoModelForCausalLM``) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    offline = hub_offline()
    check_model_reference(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model, revision=revision, local_files_only=offline
        )
        net: Any = AutoModelForCausalLM.from_pretrained(
            model, revision=revision or "main", dtype=torch_dtype, local_files_only=offline
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load {model!r} (offline={offline}): {exc}") from exc
    net.to(target).eval()
    tokenizer.padding_side = "left"
    check_token_ids(tokenizer, vision=False)
    loaded = LoadedModel(
        model=net,
        tokenizer=tokenizer,
        processor=None,
        info=_model_info(model, revision, net, torch_dtype, target),
        prompt_format=detect_prompt_format(tokenizer.chat_template),
    )
    _log_loaded(loaded, tokenizer.chat_template)
    return loaded


def _model_info(
    model: str, revision: str | None, net: Any, dtype: torch.dtype, device: torch.device
) -> ModelInfo:
    # A hub download knows its commit; a local directory has none.
    resolved = revision or getattr(net.config, "_commit_hash", None) or "local"
    return ModelInfo(
        id=model, revision=resolved, dtype=str(dtype).removeprefix("torch."), device=str(device)
    )


def _log_loaded(loaded: LoadedModel, model_template: str | None) -> None:
    fmt = loaded.prompt_format
    with_image = loaded.is_vision
    defaults = LG3_8B_CATEGORIES if fmt is PromptFormat.LG3_8B else DEFAULT_CATEGORIES
    matches = _model_template_matches(loaded.tokenizer, model_template, fmt, with_image=with_image)
    log.info(
        "model_loaded",
        model_id=loaded.info.id,
        revision=loaded.info.revision,
        dtype=loaded.info.dtype,
        device=loaded.info.device,
        prompt_format=str(fmt),
        template_sha256=template_sha256(fmt, with_image=with_image),
        model_template_sha256=(
            hashlib.sha256(model_template.encode("utf-8")).hexdigest() if model_template else None
        ),
        model_template_matches=matches,
        default_policy_hash=policy_hash(defaults),
    )
    if matches is False:
        log.warning(
            "model_chat_template_differs",
            model_id=loaded.info.id,
            detail="the model's chat template renders other bytes than guardstream's renderer",
        )


def _model_template_matches(
    tokenizer: Any, template: str | None, fmt: PromptFormat, *, with_image: bool
) -> bool | None:
    """Does the model's own chat template render the canonical prompt byte for byte?"""
    if not template:
        return None
    try:
        rendered = tokenizer.apply_chat_template(
            canonical_chat_messages(fmt, with_image=with_image),
            chat_template=template,
            tokenize=False,
        )
    except Exception as exc:  # a template we cannot render is reported, not fatal
        log.warning("model_chat_template_unrenderable", error=str(exc))
        return None
    return bool(rendered == canonical_prompt_text(fmt, with_image=with_image))
