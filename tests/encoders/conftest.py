"""Shared tiny configurations, synthetic clouds and deterministic weights for the encoder tests.

Exposed as fixtures (the suite imports test files with --import-mode=importlib, so no sibling imports)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from spatialvlm_cli.model.presets import SPATIALLM_1_1_SHAPE, read_preset

TINY_SONATA = dict(
    in_channels=6,
    order=["z", "z-trans", "hilbert", "hilbert-trans"],
    stride=[2, 2, 2, 2],
    enc_depths=[2, 2, 2, 4, 2],
    enc_channels=[8, 8, 16, 16, 32],
    enc_num_head=[1, 1, 2, 2, 2],
    enc_patch_size=[64] * 5,
    mlp_ratio=4,
    mask_token=True,
    enc_mode=True,
    num_bins=1280,
)

TINY_SCENESCRIPT = dict(input_channels=6, embed_channels=32, conv_layers=[8, 16, 16], num_bins=640)


def seeded_state_dict(reference: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Random weights of the same names/shapes, reproducible across runs: N(0, 0.2) for matrices and
    kernels, N(0, 0.5) for vectors, plus 1 for normalisation scales (so they stay near identity)."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, tensor in reference.items():
        scale = 0.2 if tensor.dim() > 1 else 0.5
        value = torch.randn(tensor.shape, generator=generator) * scale
        if "norm" in name and name.endswith("weight") and tensor.dim() == 1:
            value = value + 1.0
        weights[name] = value
    return weights


def random_cloud(num_voxels: int, extent: int, seed: int) -> tuple[Tensor, Tensor]:
    """num_voxels distinct grid cells in [0, extent)^3 (int64) and (V, 6) float32 features."""
    generator = torch.Generator().manual_seed(seed)
    cells = torch.randperm(extent**3, generator=generator)[:num_voxels]
    grid = torch.stack([cells // extent**2, (cells // extent) % extent, cells % extent], dim=1)
    feat = torch.rand(num_voxels, 6, generator=generator) * 2 - 1
    return grid, feat


def surface_cloud(extent: int, seed: int) -> tuple[Tensor, Tensor]:
    """A thin box shell of cells (floor + four walls) in [0, extent)^3 with a little jitter: a room-like
    sparse pattern where neighbours exist, as in real scans. Returns int64 (V, 3) and float32 (V, 6)."""
    generator = torch.Generator().manual_seed(seed)
    axis = torch.arange(extent)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    a, b = a.flatten(), b.flatten()
    zero, top = torch.zeros_like(a), torch.full_like(a, extent - 1)
    shell = torch.cat(
        [
            torch.stack([a, b, zero], 1),
            torch.stack([zero, a, b], 1),
            torch.stack([top, a, b], 1),
            torch.stack([a, zero, b], 1),
            torch.stack([a, top, b], 1),
        ]
    )
    keep = torch.rand(len(shell), generator=generator) < 0.7
    grid = torch.unique(shell[keep], dim=0)
    grid = grid[torch.randperm(len(grid), generator=generator)]
    feat = torch.rand(len(grid), 6, generator=generator) * 2 - 1
    return grid, feat


@pytest.fixture
def tiny_sonata_config() -> dict:
    """Sonata with channels 8/8/16/16/32, patch 64, all four orders used in stage 3."""
    return copy.deepcopy(TINY_SONATA)


@pytest.fixture
def full_sonata_config() -> dict:
    """SpatialLM 1.1's Sonata shapes, as the preset of that model's sizes gives them."""
    return read_preset(SPATIALLM_1_1_SHAPE)["point_config"]


@pytest.fixture
def tiny_scenescript_config() -> dict:
    return copy.deepcopy(TINY_SCENESCRIPT)


@pytest.fixture
def make_seeded_weights() -> Callable[[dict[str, Tensor], int], dict[str, Tensor]]:
    return seeded_state_dict


@pytest.fixture
def make_random_cloud() -> Callable[[int, int, int], tuple[Tensor, Tensor]]:
    return random_cloud


@pytest.fixture
def make_surface_cloud() -> Callable[[int, int], tuple[Tensor, Tensor]]:
    return surface_cloud
