"""The environment variables spatialvlm reads: the one place any of them is read (the library takes arguments).

SPATIALVLM_DEBUG=1    errors go through with their traceback instead of one line (every command; folder runs stop
                      at the first failing scene).
SPATIALVLM_VERBOSE=1  `infer --point_cloud` prints the nine attention-layer checkpoints of every prefill (stderr).
RANK, WORLD_SIZE,     set by torchrun for each process it starts: `infer -p FOLDER` splits the folder's scenes over
LOCAL_RANK            the WORLD_SIZE processes, `train` splits each batch over them (`torchrun_launch`).
OMP_WAIT_POLICY       read by torch's OpenMP runtime when torch loads; the CLI sets PASSIVE when it is unset
                      (`default_thread_waiting`), any value the user sets is kept.
"""

from __future__ import annotations

import os

from spatialvlm_cli.errors import ConfigError

# OpenMP threads that finish a parallel region early spin, waiting for the others. When another process keeps a core
# busy, a spinning thread takes the core from the one it waits for, and torch falls off a cliff: Sonata's forward took
# 36-44 s at two threads instead of 11 s, one int8 decode matmul 8 ms instead of 0.1 ms (measured on a 2-core CPU
# beside a one-thread job). PASSIVE makes them sleep instead; on an idle machine it costs a little wake-up latency.
THREAD_WAIT_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def default_thread_waiting() -> None:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user has set it. It must run before torch is imported: the OpenMP
    runtime reads it once, when torch loads it (the CLI's entry point calls this first)."""
    for name, value in THREAD_WAIT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def debug() -> bool:
    """SPATIALVLM_DEBUG=1: tracebacks instead of one-line errors."""
    return os.environ.get("SPATIALVLM_DEBUG") == "1"


def verbose_checkpoints() -> bool:
    """SPATIALVLM_VERBOSE=1: print the nine checkpoints during `infer`'s prefills."""
    return os.environ.get("SPATIALVLM_VERBOSE") == "1"


def torchrun_launch() -> tuple[int, int, int] | None:
    """(RANK, WORLD_SIZE, LOCAL_RANK) of a process torchrun started as one of several; None when WORLD_SIZE is unset
    or 1 (a plain run, or torchrun with one process). ConfigError for values that are not such a triple."""
    world = os.environ.get("WORLD_SIZE")
    if world is None or world.strip() == "1":
        return None
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    raw = [os.environ.get(name, "") for name in names]
    try:
        rank, size, local_rank = (int(value) for value in raw)
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers set by torchrun, got "
                          + ", ".join(f"{name}={value!r}" for name, value in zip(names, raw, strict=True))) from None
    if not (size >= 1 and 0 <= rank < size and local_rank >= 0):
        raise ConfigError(f"RANK {rank}, WORLD_SIZE {size}, LOCAL_RANK {local_rank} is not a process of a torchrun "
                          "launch (0 <= RANK < WORLD_SIZE)")
    return (rank, size, local_rank) if size > 1 else None
