"""Errors of the engine."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of engine errors."""


class ModelLoadError(EngineError):
    """A model, its tokenizer or its processor cannot be loaded or is not a Llama Guard 3 model."""


class MalformedRequest(EngineError):
    """A request the model cannot take (prompt and image disagree, bad image tensor)."""


class UnparseableOutput(EngineError):
    """Generated text whose first line is neither 'safe' nor 'unsafe' (reference mode)."""
