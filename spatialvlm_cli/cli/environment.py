"""The environment variables spatialvlm reads: the one place any of them is read (the library takes arguments).

SPATIALVLM_DEBUG=1    errors go through with their traceback instead of one line (every command; folder runs stop
                      at the first failing scene).
SPATIALVLM_VERBOSE=1  `infer --point_cloud` prints the nine attention-layer checkpoints of every prefill (stderr).
"""

from __future__ import annotations

import os


def debug() -> bool:
    """SPATIALVLM_DEBUG=1: tracebacks instead of one-line errors."""
    return os.environ.get("SPATIALVLM_DEBUG") == "1"


def verbose_checkpoints() -> bool:
    """SPATIALVLM_VERBOSE=1: print the nine checkpoints during `infer`'s prefills."""
    return os.environ.get("SPATIALVLM_VERBOSE") == "1"
