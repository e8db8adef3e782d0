"""Fixtures for the model tests: tiny presets loaded once, and synthetic point clouds in SpatialLM's row format."""

from __future__ import annotations

import pytest
import torch

from spatialvlm_cli.model import load_spatiallm

GRID_M = 0.025  # SpatialLM 1.1 input grid (32 m / 1280 bins)


def _make_cloud(extent: tuple[int, int, int], num_points: int, seed: int) -> torch.Tensor:
    """(num_points, 9) float32 rows [grid_coord, xyz (m), rgb in [-1, 1]] with distinct random cells of a box
    `extent` input cells wide (one point per voxel, as preprocessing leaves it)."""
    generator = torch.Generator().manual_seed(seed)
    ex, ey, ez = extent
    cells = torch.randperm(ex * ey * ez, generator=generator)[:num_points]
    grid = torch.stack([cells // (ey * ez), (cells // ez) % ey, cells % ez], dim=1).float()
    xyz = grid * GRID_M + torch.rand(num_points, 3, generator=generator) * GRID_M
    rgb = torch.rand(num_points, 3, generator=generator) * 2 - 1
    return torch.cat([grid, xyz, rgb], dim=1)


def _expected_sonata_tokens(cloud: torch.Tensor, num_poolings: int = 4) -> int:
    """Sonata emits one token per occupied cell of the grid pooled by 2 at each of its 4 strides: count them
    independently of the encoder code."""
    return torch.unique(cloud[:, :3].long() // 2**num_poolings, dim=0).shape[0]


@pytest.fixture(scope="session")
def tiny_qwen():
    return load_spatiallm("tiny-qwen", device="cpu")


@pytest.fixture(scope="session")
def tiny_llama():
    return load_spatiallm("tiny-llama", device="cpu")


@pytest.fixture(params=["tiny_qwen", "tiny_llama"])
def tiny(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def make_cloud():
    return _make_cloud


@pytest.fixture(scope="session")
def expected_tokens():
    return _expected_sonata_tokens
