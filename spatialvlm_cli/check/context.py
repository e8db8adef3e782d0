"""What the checkpoint checks need to know about the model and the prefill besides the captured tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from spatialvlm_cli.pe import PositionEncoding, QKTable, RotaryPositionEncoding

if TYPE_CHECKING:
    from spatialvlm_cli.model.modeling import SpatialLMModel

SAMPLE_ROWS = 8  # point rows and text rows compared against the pure-Python reference per layer (it is slow)


@dataclass
class CheckContext:
    """model: the SpatialLM-style model checked; mode: label of the PE tried ("3D_RoPE/3D_only");
    input_ids: (B, S) ids of the prefill (None when unknown); expected_point_counts: encoder tokens per sequence,
    counted independently of the point mask (None when unknown)."""

    model: SpatialLMModel
    mode: str
    input_ids: Tensor | None = None
    expected_point_counts: list[int] | None = None

    @property
    def pe(self) -> PositionEncoding:
        return self.model.position_encoding

    @property
    def rotary(self) -> bool:
        """True when the variant changes the rotation of point tokens (3D_RoPE, MixedRoPE3D)."""
        return isinstance(self.pe, RotaryPositionEncoding)

    @property
    def rope_parameters(self) -> dict[str, Any]:
        return dict(getattr(self.model.config, "rope_parameters", None) or {})

    @property
    def rope_theta(self) -> float:
        return float(self.rope_parameters.get("rope_theta", getattr(self.model.config, "rope_theta", 10000.0)))

    @property
    def rope_default(self) -> bool:
        """Plain RoPE (angle = position * theta^(-2i/D)) that the checks can recompute from the formula."""
        return self.rope_parameters.get("rope_type", "default") == "default"

    @property
    def stock_rotary(self) -> nn.Module:
        """The model's own 1-D rotary module."""
        return self.model.model.rotary_emb

    @property
    def attention_scaling(self) -> float:
        return float(getattr(self.stock_rotary, "attention_scaling", 1.0))

    def spatial_pairs(self) -> list[int]:
        """Rotary pairs that carry x, y or z at point tokens ([] for variants that leave attention alone)."""
        return list(self.pe.allocation.spatial_pairs) if self.rotary else []

    def one_d_pairs(self) -> list[int]:
        spatial = set(self.spatial_pairs())
        return [pair for pair in range(self.pe.lm_shape.head_dim // 2) if pair not in spatial]

    def stock_angles(self, position_ids: Tensor) -> Tensor:
        """(B, S) positions -> (B, S, P) float64 radians of the model's 1-D RoPE. Plain RoPE is recomputed from the
        formula; scaled RoPE types (llama3, yarn, ...) are read back from the model's own rotary module."""
        half = self.pe.lm_shape.head_dim // 2
        if self.rope_default:
            inv_freq = self.rope_theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / (2 * half))
            return position_ids.to(torch.float64)[..., None].cpu() * inv_freq
        probe = torch.zeros(1, dtype=torch.float32, device=position_ids.device)
        cos, sin = self.stock_rotary(probe, position_ids)
        return torch.atan2(sin[..., :half].double(), cos[..., :half].double()).cpu()


def half_tables(table: Tensor | QKTable, head_dim: int) -> tuple[Tensor, Tensor]:
    """A (cos or sin) table -> per-pair values for q and k, (B, H or 1, S, D/2) float64 on the CPU."""
    half = head_dim // 2
    if isinstance(table, QKTable):
        return table.q.double().cpu(), table.k.double().cpu()
    values = table[..., :half].double().cpu()[:, None]
    return values, values


def rotate(x: Tensor, angles: Tensor, scaling: float = 1.0) -> Tensor:
    """x (B, H, S, D) -> float64 (B, H, S, D): pair i = dims (i, i + D/2) turned by angles (B, H or 1, S, D/2)."""
    x = x.double().cpu()
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    cos, sin = angles.cos() * scaling, angles.sin() * scaling
    return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)


def relative_error(observed: Tensor, expected: Tensor) -> float:
    """max |observed - expected| / max(|expected|, 1e-6), in float64 (0 for empty tensors)."""
    if observed.numel() == 0:
        return 0.0
    observed, expected = observed.double().cpu(), expected.double().cpu()
    return float((observed - expected).abs().max() / expected.abs().max().clamp_min(1e-6))


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance for comparing a model tensor with a float64 recomputation."""
    return 1e-4 if dtype in (torch.float32, torch.float64) else 3e-2


def sample(indices: Tensor, count: int = SAMPLE_ROWS) -> Tensor:
    """Up to `count` evenly spread entries of a 1-D index tensor (first and last included)."""
    if len(indices) <= count:
        return indices
    return indices[torch.linspace(0, len(indices) - 1, count).round().long()]
