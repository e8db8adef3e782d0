"""Sparse point encoders in plain PyTorch: Sonata (SpatialLM 1.1) and SceneScript (SpatialLM 1.0).

They run wherever torch runs (CPU, CUDA, MPS) and load SpatialLM checkpoints' ``point_backbone.*`` tensors
unchanged. Build one with :func:`build_point_encoder`; :func:`output_grid_coords` predicts the token cells
without running it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from torch import Tensor, nn

from ..errors import ConfigError
from .batch import EncodedPoints, VoxelBatch, check_voxels
from .config import SceneScriptConfig, SonataConfig
from .scenescript import SceneScriptEncoder, scenescript_output_grid
from .sonata import SonataEncoder, sonata_output_grid


class PointEncoderConfig(Protocol):
    """What the registry needs of an encoder's typed config: the input grid's size in cells per axis."""

    num_bins: int


ConfigT = TypeVar("ConfigT", bound=PointEncoderConfig)


@dataclass(frozen=True)
class EncoderKind(Generic[ConfigT]):
    """One `point_backbone`: the parser of a checkpoint's `point_config` into its typed config, its module, and the
    rule that predicts its output tokens' cells without weights."""

    parse_config: Callable[[Mapping[str, Any]], ConfigT]
    module: Callable[[ConfigT], nn.Module]
    output_grid: Callable[[ConfigT, VoxelBatch], VoxelBatch]

    def build(self, point_config: Mapping[str, Any]) -> nn.Module:
        """The encoder module configured by a checkpoint's `point_config`; ConfigError for a bad config."""
        return self.module(self.parse_config(point_config))

    def output_cells(self, point_config: Mapping[str, Any], grid_coord: Tensor, offset: Tensor) -> VoxelBatch:
        """The voxels the module's forward would return for these input cells (see `output_grid_coords`)."""
        config = self.parse_config(point_config)
        return self.output_grid(config, check_voxels(grid_coord, offset, config.num_bins))


# Adding an encoder: its module and config here, its kind in this union, and one line in ENCODERS.
RegisteredEncoder = EncoderKind[SonataConfig] | EncoderKind[SceneScriptConfig]

# `point_backbone` name -> encoder.
ENCODERS: dict[str, RegisteredEncoder] = {
    "sonata": EncoderKind(SonataConfig.from_point_config, SonataEncoder, sonata_output_grid),
    "scenescript": EncoderKind(SceneScriptConfig.from_point_config, SceneScriptEncoder, scenescript_output_grid),
}
BACKBONES = tuple(sorted(ENCODERS))

__all__ = ["BACKBONES", "ENCODERS", "EncodedPoints", "EncoderKind", "build_point_encoder", "output_grid_coords"]


def _encoder(backbone: str) -> RegisteredEncoder:
    if backbone not in ENCODERS:
        raise ConfigError(f"unknown point backbone '{backbone}'; expected one of {list(BACKBONES)}.")
    return ENCODERS[backbone]


def build_point_encoder(backbone: str, point_config: Mapping[str, Any]) -> nn.Module:
    """The encoder named by a checkpoint's ``point_backbone`` ("sonata" or "scenescript"), configured by its
    ``point_config``. The module has ``out_channels`` and forward(grid_coord, feat, offset) -> EncodedPoints.
    Raises ConfigError for an unknown backbone or a bad config."""
    return _encoder(backbone).build(point_config)


def output_grid_coords(
    backbone: str, point_config: Mapping[str, Any], grid_coord: Tensor, offset: Tensor
) -> tuple[Tensor, Tensor]:
    """The (M, 3) int64 output-grid cells and (B,) int64 token offsets that the encoder's forward would
    return for these input cells, in the same order; needs no weights and runs in milliseconds.

    grid_coord: (N, 3) integer input-grid cells; offset: (B,) int64 cumulative point counts."""
    voxels = _encoder(backbone).output_cells(point_config, grid_coord, offset)
    return voxels.grid_coord, voxels.offset
