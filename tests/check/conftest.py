"""Fixtures for `spatialvlm check` tests: tiny presets and a small synthetic scene (few point tokens, fast)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from spatialvlm_cli.check import synthetic_room
from spatialvlm_cli.io import PointCloud


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Tiny matrices: one intra-op thread is much faster than two on a CPU shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_room() -> PointCloud:
    """A 2 x 1.5 x 1.2 m box room at 10 cm spacing: ~2k points, a few dozen point tokens for the tiny encoder."""
    return synthetic_room(size_m=(2.0, 1.5, 1.2), spacing_m=0.1, seed=1)
