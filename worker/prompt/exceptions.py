"""Errors of the prompt stage."""

from __future__ import annotations


class PromptError(Exception):
    """Base class of prompt-stage errors."""


class ConversationNotSupported(PromptError):
    """The event cannot become a Llama Guard prompt.

    The pipeline dead-letters it with stage ``validate``; the message says why.
    """
