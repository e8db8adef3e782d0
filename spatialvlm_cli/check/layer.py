"""`LayerFacts`: one captured prefill attention call with what the nine checkpoints' invariants share (sampled
rows, the stock angles, the independent reference rotation), computed once."""

from __future__ import annotations

from functools import cached_property

import torch
from torch import Tensor

from spatialvlm_cli.check.context import CheckContext, rotate, sample, tolerance
from spatialvlm_cli.model.attention import AttentionCall
from spatialvlm_cli.pe.reference import reference_normalize, reference_rotary_angles


class LayerFacts:
    """call: a prefill AttentionCall (`call.is_prefill`); context: the model and prefill it came from.

    heads, kv_heads, head_dim: Hq, Hkv, D of the language model; half: D/2 rotary pairs; tol: relative tolerance
    for q's dtype; position_ids (B, S), point_mask (B, S) bool of the prefill; point_rows / text_rows: up to
    SAMPLE_ROWS sampled token indices of sequence 0 (CPU); all_text_rows: every text index; rows: the sampled
    indices sorted, point_sample (n,) bool marks which of them are point tokens; stock (B, S, D/2) float64 radians
    of the model's 1-D RoPE."""

    def __init__(self, call: AttentionCall, context: CheckContext) -> None:
        if call.positions is None:
            raise ValueError("LayerFacts needs a prefill call with point positions")
        self.call = call
        self.context = context
        shape = context.pe.lm_shape
        self.heads, self.kv_heads, self.head_dim = shape.num_heads, shape.num_kv_heads, shape.head_dim
        self.half = self.head_dim // 2
        self.tol = tolerance(call.q.dtype)
        self.position_ids = call.positions.position_ids
        self.point_mask = call.positions.point_mask
        row = self.point_mask[0]
        self.point_rows = sample(torch.nonzero(row).flatten().cpu())
        self.all_text_rows = torch.nonzero(~row).flatten().cpu()
        self.text_rows = sample(self.all_text_rows)
        self.rows = torch.cat((self.point_rows, self.text_rows)).sort().values
        self.point_sample = self.point_mask[0, self.rows].cpu()
        self.stock = context.stock_angles(self.position_ids)

    @property
    def point_pairs(self) -> list[int]:
        """The rotary pairs that place point tokens: the spatial ones of a rotary variant, else all of them."""
        return self.context.spatial_pairs() if self.context.rotary else list(range(self.half))

    def dims(self, pairs: list[int]) -> list[int]:
        """Rotary pairs -> their head dims (i and i + D/2)."""
        return [*pairs, *(pair + self.half for pair in pairs)]

    @cached_property
    def reference_angles(self) -> tuple[Tensor, Tensor]:
        """Expected angles of the sampled rows `rows`: q (B, Hq, n, D/2) and k (B, Hkv, n, D/2) float64 radians, from
        the pure-Python reference (rotary variants) or the stock formula (others)."""
        rows, context = self.rows, self.context
        stock = self.stock[:, rows][:, None]  # (B, 1, n, P)
        if not context.rotary:
            return stock.expand(-1, self.heads, -1, -1), stock.expand(-1, self.kv_heads, -1, -1)
        positions = self.call.positions
        assert positions is not None
        units = torch.tensor([reference_normalize(coords, mask, context.pe.options.coord_unit) for coords, mask in
                              zip(positions.point_coords.tolist(), positions.point_mask.tolist(), strict=True)],
                             dtype=torch.float64)
        q_angles, k_angles = reference_rotary_angles(context.pe, context.rope_theta, self.position_ids[:, rows].cpu(),
                                                     self.point_mask[:, rows].cpu(), units[:, rows], self.call.layer)
        q_ref, k_ref = torch.tensor(q_angles, dtype=torch.float64), torch.tensor(k_angles, dtype=torch.float64)
        if not context.rope_default:  # scaled 1-D RoPE: the formula in the reference is the plain one
            spatial = torch.zeros(self.half, dtype=torch.bool)
            spatial[context.spatial_pairs()] = True
            keep = self.point_mask[:, rows].cpu()[:, None, :, None] & spatial
            q_ref, k_ref = torch.where(keep, q_ref, stock), torch.where(keep, k_ref, stock)
        return q_ref, k_ref

    @cached_property
    def expected_rotation(self) -> tuple[Tensor, Tensor]:
        """q (B, Hq, n, D) and k (B, Hkv, n, D) float64 of the sampled rows, rotated by `reference_angles`."""
        q_ref, k_ref = self.reference_angles
        scaling = self.context.attention_scaling
        return (rotate(self.call.q[:, :, self.rows], q_ref, scaling),
                rotate(self.call.k[:, :, self.rows], k_ref, scaling))

