"""`--VLM_PE 3D_Sinusoidal`: an additive sinusoidal embedding of (x, y, z) on the point-token embeddings.

The hidden size C is split into C/2 channel pairs exactly as rotary pairs are split (`allocation.py`): 3D_only gives
every pair an axis (896 -> 149/149/150 pairs = the fork's 298/298/300 channels), 3D_with_1D keeps half for the 1-D
position (448 | 148/148/152 channels). Pair i contributes
    channel i         = scale * sin(u * freq)
    channel i + C/2   = scale * cos(u * freq)
where u is the pair's coordinate (rotation units, see `positions.py`) or 1-D position and freq = theta^(-k / n) for
the pair's rank k among the n pairs of its role (each axis gets a full sinusoid spectrum of its own; theta_3d for
axes, theta_1d for t). Only point tokens change; attention and RoPE are untouched, so text-only runs are stock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe.allocation import AXES, ROLE_1D, allocate_pairs, spectrum
from spatialvlm_cli.pe.base import PositionEncoding
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.positions import PointPositions, normalize_coords
from spatialvlm_cli.pe.registry import register

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class Sinusoidal3DOptions(PEOptions):
    """theta_3d / theta_1d: spectrum bases for axes / the 1-D position; layout, coord_unit, axis_pairs, pairs_1d as
    in 3D_RoPE but counted in channel pairs of the hidden size; scale multiplies the embedding."""

    theta_3d: float = 100.0
    theta_1d: float = 10000.0
    layout: Literal["chunked", "interleaved"] = "chunked"
    coord_unit: Literal["grid", "unit"] = "grid"
    axis_pairs: tuple[int, int, int] | None = None
    pairs_1d: int | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (self.theta_3d > 1.0 and self.theta_1d > 1.0):
            raise ConfigError(f"theta_3d and theta_1d must be greater than 1, got {self.theta_3d}, {self.theta_1d}")

    @classmethod
    def fork(cls) -> Sinusoidal3DOptions:
        """The fork: base 10000 everywhere, [0, 1] coordinates, t | x | y | z blocks."""
        return cls(theta_3d=10000.0, theta_1d=10000.0, layout="chunked", coord_unit="unit")


@register("3D_Sinusoidal")
class Sinusoidal3D(PositionEncoding):
    """Adds sin/cos of the point coordinates (and, with 3D_with_1D, of the 1-D position) to point embeddings."""

    Options = Sinusoidal3DOptions
    options: Sinusoidal3DOptions

    def __init__(self, merge_rule: str, lm_config: PretrainedConfig, options: Sinusoidal3DOptions) -> None:
        super().__init__(merge_rule, lm_config, options)
        if self.lm_shape.hidden_size % 2:
            raise ConfigError(f"hidden_size {self.lm_shape.hidden_size} is odd: sin/cos channel pairs need it even")
        self.allocation = allocate_pairs(self.lm_shape.hidden_size // 2, merge_rule, options.layout,
                                         options.axis_pairs, options.pairs_1d)
        sources, frequencies = [0] * self.allocation.n_pairs, [0.0] * self.allocation.n_pairs
        for source, role in enumerate((*AXES, ROLE_1D)):  # source: 0 x, 1 y, 2 z, 3 the 1-D position
            pairs = self.allocation.pairs_of(role)
            theta = options.theta_1d if role == ROLE_1D else options.theta_3d
            for pair, frequency in zip(pairs, spectrum(len(pairs), theta), strict=True):
                sources[pair], frequencies[pair] = source, frequency
        self.pair_sources: list[int] = sources
        self.pair_frequencies: list[float] = frequencies

    def embedding(self, position_ids: Tensor, point_mask: Tensor, coords: Tensor) -> Tensor:
        """position_ids (B, S) int; point_mask (B, S) bool; coords (B, S, 3) rotation units.
        Returns (B, S, C) float32, zero at tokens that are not points."""
        values = torch.cat((coords.float(), position_ids[..., None].float()), dim=-1)  # (B, S, 4): x, y, z, t
        source = torch.tensor(self.pair_sources, device=coords.device)
        frequency = torch.tensor(self.pair_frequencies, dtype=torch.float32, device=coords.device)
        angles = values.index_select(-1, source) * frequency  # (B, S, C/2)
        embedding = torch.cat((angles.sin(), angles.cos()), dim=-1) * self.options.scale
        return embedding * point_mask[..., None]

    def embed_points(self, inputs_embeds: Tensor, positions: PointPositions) -> Tensor:
        """(B, S, C) embeddings -> (B, S, C) with the sinusoid added at point tokens (computed in float32)."""
        with torch.autocast(device_type=inputs_embeds.device.type, enabled=False):
            coords = normalize_coords(positions.point_coords, positions.point_mask, self.options.coord_unit)
            embedding = self.embedding(positions.position_ids, positions.point_mask, coords)
        return inputs_embeds + embedding.to(inputs_embeds.dtype)
