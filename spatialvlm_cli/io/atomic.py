"""Atomic file writes: a failed run never leaves a half-written output file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from spatialvlm_cli.errors import OutputError


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OutputError(f"cannot write '{path}': {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except OSError as error:
        Path(tmp_name).unlink(missing_ok=True)
        raise OutputError(f"cannot write '{path}': {error.strerror or error}") from None


def check_writable_dir(path: Path) -> None:
    """Fail early (before minutes of generation) when `path` cannot be created or written to."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create output folder '{path}': {error.strerror or error}") from None
    if not os.access(path, os.W_OK):
        raise OutputError(f"output folder '{path}' is not writable")
