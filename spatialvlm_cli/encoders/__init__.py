"""Sparse point encoders in plain PyTorch: Sonata (SpatialLM 1.1) and SceneScript (SpatialLM 1.0).

They run wherever torch runs (CPU, CUDA, MPS) and load SpatialLM checkpoints' ``point_backbone.*`` tensors
unchanged. Build one with :func:`build_point_encoder`; :func:`output_grid_coords` predicts the token cells
without running it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError
from .batch import EncodedPoints, check_voxels
from .config import SceneScriptConfig, SonataConfig
from .scenescript import SceneScriptEncoder, scenescript_output_grid
from .sonata import SonataEncoder, sonata_output_grid

BACKBONES = ("scenescript", "sonata")

__all__ = ["BACKBONES", "EncodedPoints", "build_point_encoder", "output_grid_coords"]


def build_point_encoder(backbone: str, point_config: Mapping[str, Any]) -> nn.Module:
    """The encoder named by a checkpoint's ``point_backbone`` ("sonata" or "scenescript"), configured by its
    ``point_config``. The module has ``out_channels`` and forward(grid_coord, feat, offset) -> EncodedPoints.
    Raises ConfigError for an unknown backbone or a bad config."""
    if backbone == "sonata":
        return SonataEncoder(SonataConfig.from_point_config(point_config))
    if backbone == "scenescript":
        return SceneScriptEncoder(SceneScriptConfig.from_point_config(point_config))
    raise ConfigError(f"unknown point backbone '{backbone}'; expected one of {list(BACKBONES)}.")


def output_grid_coords(
    backbone: str, point_config: Mapping[str, Any], grid_coord: Tensor, offset: Tensor
) -> tuple[Tensor, Tensor]:
    """The (M, 3) int64 output-grid cells and (B,) int64 token offsets that the encoder's forward would
    return for these input cells, in the same order; needs no weights and runs in milliseconds.

    grid_coord: (N, 3) integer input-grid cells; offset: (B,) int64 cumulative point counts."""
    if backbone == "sonata":
        config = SonataConfig.from_point_config(point_config)
        voxels = sonata_output_grid(config, check_voxels(grid_coord, offset, config.num_bins))
    elif backbone == "scenescript":
        ss_config = SceneScriptConfig.from_point_config(point_config)
        voxels = scenescript_output_grid(ss_config, check_voxels(grid_coord, offset, ss_config.num_bins))
    else:
        raise ConfigError(f"unknown point backbone '{backbone}'; expected one of {list(BACKBONES)}.")
    return voxels.grid_coord, voxels.offset
