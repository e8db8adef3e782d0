"""Atomic file writes and the overwrite rule: a failed run never leaves a half-written output file behind, outputs
get the mode the umask allows (as `open()` would give them), and a file this tool did not write is not replaced
unless the user says so."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from spatialvlm_cli.errors import OutputError


def _umask_mode() -> int:
    """0o666 minus the process umask: the mode `open(path, 'w')` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`; the file gets the mode the
    umask allows (mkstemp's 0600 would hide it from the group and make a replaced 0644 file private)."""
    path = Path(path)
    tmp_name: str | None = None
    try:  # one block from the temporary file's creation on, so that an interrupt anywhere in it removes the file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), _umask_mode())
        os.replace(tmp_name, path)
    except BaseException as error:  # Ctrl-C and torchrun's SIGTERM included: no temporary file is left behind
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(f"cannot write '{path}': {error.strerror or error}") from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`write_bytes_atomic` of UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def check_output_location(target: Path) -> None:
    """OutputError, before any work, unless `target`'s folder exists and is writable or can be created, and
    `target` is not a folder. Creates nothing, so a run that fails later leaves no empty folder behind."""
    target = Path(target)
    folder = target.parent.absolute()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create output folder '{folder}': '{existing}' is a file")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"cannot write to output folder '{existing}'")
    if target.is_dir():
        raise OutputError(f"output '{target}' is a folder; pass a file name or a folder without a suffix")


def check_overwrite(
    targets: Iterable[Path], inputs: Iterable[Path], overwrite: bool, ours: Callable[[Path], bool]
) -> list[Path]:
    """The rule for existing outputs, checked before any work: an output that is one of the inputs is an error
    (even with `overwrite`); an existing output that `ours(path)` does not claim (this tool wrote it for the same
    input) is an error unless `overwrite`. Returns the existing targets, which the caller reports as replaced."""
    resolved_inputs = {Path(p).resolve() for p in inputs}
    existing = []
    for target in targets:
        target = Path(target)
        if target.resolve() in resolved_inputs:
            raise OutputError(f"output '{target}' is one of the inputs; choose another --output")
        if not target.exists():
            continue
        if target.is_dir():
            raise OutputError(f"output '{target}' is a folder")
        if not overwrite and not ours(target):
            raise OutputError(f"'{target}' exists and was not written by spatialvlm for this input; pass --overwrite "
                              "to replace it, or choose another --output")
        existing.append(target)
    return existing
