"""The Quix Streams peer's own virtual environment, made on first use and cached.

quixstreams pins pydantic and confluent-kafka below guardstream's versions, so it cannot
share the worker's environment (installing it there downgrades both). ``bench overhead
--peer quix`` runs ``quix_app.py`` with this environment's Python instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

QUIXSTREAMS = "quixstreams==3.28.1"


def quix_python(progress: object = print) -> Path:
    """The environment's interpreter; creates it (``python -m venv`` + pip) when missing."""
    cache = Path(os.environ.get("GUARDSTREAM_CACHE_DIR", Path.home() / ".cache" / "guardstream"))
    venv = cache / "venvs" / QUIXSTREAMS.replace("==", "-")
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists() and python.exists():
        return python
    if callable(progress):
        progress(f"creating the Quix Streams peer's environment in {venv} ({QUIXSTREAMS})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", QUIXSTREAMS], check=True, stdout=sys.stderr
    )
    stamp.write_text(QUIXSTREAMS + "\n")
    return python
