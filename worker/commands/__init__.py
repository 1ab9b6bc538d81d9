"""Subcommands of ``guardstream``: one module each, each with ``register(subparsers)``.

Heavy imports (torch, transformers, kafka) happen inside the handlers.
"""
