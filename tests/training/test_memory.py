"""The trainer hands the C heap's free pages back: glibc keeps freed heap blocks resident until malloc_trim."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from spatialvlm_cli.training import memory

GLIBC = hasattr(ctypes.CDLL(None), "malloc_trim")


PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """This process's resident set (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_freed_heap_blocks_stay_resident_until_released():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block, count = 64 * 1024, 3200  # 200 MiB in blocks under the 128 KiB mmap threshold: on the heap
    blocks = [libc.malloc(block) for _ in range(count)]
    for address in blocks:
        ctypes.memset(address, 1, block)  # resident
    # Free every other block: each freed one sits between blocks in use, so glibc can neither merge it into the
    # heap's top nor give it back by shrinking the heap, whatever the heap held before.
    freed, kept = blocks[::2], blocks[1::2]
    for address in freed:
        libc.free(address)
    before = resident_bytes()
    assert memory.release_free_heap()
    after = resident_bytes()
    for address in kept:
        libc.free(address)
    assert before - after > 0.8 * len(freed) * (block - PAGE)  # the whole pages inside each freed block


def test_the_trainer_releases_the_heap_once_per_logged_window(tmp_path, monkeypatch):
    from spatialvlm_cli.training import TrainSettings, build_examples, train, trainer

    calls: list[int] = []
    monkeypatch.setattr(trainer, "release_free_heap", lambda: calls.append(1) or True)
    settings = TrainSettings(model="tiny-qwen", steps=5, batch_size=2, warmup_steps=1, checkpoint_every=10)
    train(settings, build_examples("tiny-qwen", "train", 0, 2, workers=1), tmp_path / "run", log_every=2)
    assert len(calls) == 3  # after steps 2, 4 and the last
