"""`--VLM_PE 3D_RoPE`: point tokens rotate by their (x, y, z) position; text keeps the model's 1-D RoPE.

For a point token with coordinates c (rotation units, see `positions.py`) and 1-D position p, pair i turns by
    p * inv_freq_1d[i]          if pair i carries t (3D_with_1D only; the model's own frequency for that pair)
    c[axis(i)] * freq_3d[r(i)]  if pair i carries an axis, r(i) its rank among the spatial pairs,
                                freq_3d[r] = theta_3d^(-r / n_spatial)
Text tokens and decode steps keep the stock table. Which pair carries what is `allocation.py` (merge rule, layout).
The angle is linear in c, so q.k of two point tokens depends only on their coordinate difference, for every head.

One (B, S, D) table shared by all heads, built once per forward from the stock table, so transformers' own
`apply_rotary_pos_emb` does the rotation at no extra cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe.allocation import PairAllocation, allocate_pairs, spectrum
from spatialvlm_cli.pe.base import RotaryPositionEncoding
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.positions import PointPositions, normalize_coords
from spatialvlm_cli.pe.registry import register

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class RoPE3DOptions(PEOptions):
    """theta_3d: base of the spatial spectrum (radians per unit go from 1 down to ~1/theta_3d).
    layout: "interleaved" (every axis spans the spectrum) or "chunked" (t | x | y | z blocks, the fork's).
    coord_unit: "grid" (grid cells from the scene's min corner) or "unit" (longest axis spans [0, 1], the fork's).
    axis_pairs: rotary pairs for x, y, z; None = x = y = n // 3, z the rest.
    pairs_1d: pairs that keep the 1-D position under 3D_with_1D; None = head_dim / 4 (half the pairs)."""

    theta_3d: float = 100.0
    layout: Literal["interleaved", "chunked"] = "interleaved"
    coord_unit: Literal["grid", "unit"] = "grid"
    axis_pairs: tuple[int, int, int] | None = None
    pairs_1d: int | None = None

    def __post_init__(self) -> None:
        if not self.theta_3d > 1.0:
            raise ConfigError(f"theta_3d must be greater than 1, got {self.theta_3d}")

    @classmethod
    def fork(cls) -> RoPE3DOptions:
        """Seed 001: base 10000, [0, 1] coordinates, x | y | z blocks."""
        return cls(theta_3d=10000.0, layout="chunked", coord_unit="unit")


@register("3D_RoPE")
class RoPE3D(RotaryPositionEncoding):
    """Fixed 3-D rotary frequencies for point tokens, shared by all heads."""

    Options = RoPE3DOptions
    options: RoPE3DOptions

    def __init__(self, merge_rule: str, lm_config: PretrainedConfig, options: RoPE3DOptions) -> None:
        super().__init__(merge_rule, lm_config, options)
        self.allocation: PairAllocation = allocate_pairs(self.lm_shape.head_dim // 2, merge_rule, options.layout,
                                                         options.axis_pairs, options.pairs_1d)
        self.spatial_frequencies: list[float] = spectrum(len(self.allocation.spatial_pairs), options.theta_3d)

    def pair_tables(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """axis (P,) int64 (0 at 1-D pairs), frequency (P,) float32 rad/unit (0 at 1-D pairs), and
        spatial (D,) bool: True at the dims of spatial pairs. Built per call: tiny, and never left on a meta device."""
        n_pairs = self.allocation.n_pairs
        axis = torch.zeros(n_pairs, dtype=torch.long)
        frequency = torch.zeros(n_pairs, dtype=torch.float32)
        pairs = torch.tensor(self.allocation.spatial_pairs, dtype=torch.long)
        axis[pairs] = torch.tensor(self.allocation.spatial_axes, dtype=torch.long)
        frequency[pairs] = torch.tensor(self.spatial_frequencies, dtype=torch.float32)
        spatial = (frequency > 0).repeat(2)
        return axis.to(device), frequency.to(device), spatial.to(device)

    def rotary_tables(self, stock_cos: Tensor, stock_sin: Tensor, positions: PointPositions,
                      attention_scaling: float) -> tuple[Tensor, Tensor]:
        coords = normalize_coords(positions.point_coords, positions.point_mask, self.options.coord_unit)
        return self.tables_from_units(stock_cos, stock_sin, positions.point_mask, coords, attention_scaling)

    def tables_from_units(self, stock_cos: Tensor, stock_sin: Tensor, point_mask: Tensor, coords: Tensor,
                          attention_scaling: float = 1.0) -> tuple[Tensor, Tensor]:
        """stock_cos/sin (B, S, D); point_mask (B, S) bool; coords (B, S, 3) rotation units (not normalised here).
        Returns cos, sin (B, S, D) in the stock dtype: stock rows for text, spatial pairs replaced at points."""
        axis, frequency, spatial = self.pair_tables(coords.device)
        angles = coords.index_select(-1, axis) * frequency  # (B, S, P)
        doubled = torch.cat((angles, angles), dim=-1)  # (B, S, D): pair i at dims i and i + D/2
        cos = (doubled.cos() * attention_scaling).to(stock_cos.dtype)
        sin = (doubled.sin() * attention_scaling).to(stock_sin.dtype)
        select = point_mask[..., None] & spatial  # (B, S, D)
        return torch.where(select, cos, stock_cos), torch.where(select, sin, stock_sin)
