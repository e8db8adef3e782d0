"""The nine prefill checkpoints of seed 001 (`SPATIALLM_VERBOSE=1`), as PASS/FAIL verdicts on an observed forward.

The seeds rotated point tokens in three steps per layer (3-D RoPE, 1-D RoPE on everything, restore the 3-D rows);
we rotate once with merged tables. Each checkpoint is therefore stated as a property of the tables and of q/k before
and after that single rotation:
    1 q/k after projection and head reshape: (B, Hq, S, D), (B, Hkv, S, D), Hq a multiple of Hkv (GQA)
    2 3-D RoPE data: table shapes, finite values, point-token spans per sequence
    3 point-token extraction: point count per sequence equals its coordinate count (finite coordinates)
    4 3-D rotation of point tokens: their q/k norms are preserved
    5 full q/k after rotation: every norm preserved
    6 1-D RoPE data: stock table shapes; from the first point token on, ids strictly increase (no collisions)
    7 point tokens kept: their spatial pairs differ from the 1-D rotation (not overwritten) and, with 3D_with_1D,
      their 1-D pairs equal it
    8 1-D RoPE on text: text rows equal the stock rotation bit for bit
    9 final q/k: q.k of two point tokens unchanged when all coordinates move by a common vector
plus decode detection (a forward without point positions must be a 1-token step with the stock tables) and
`check_cache_length` (KV-cache length == attention-mask length).

`PrefillChecker` is a RotaryObserver: `with observe_rotary(checker), pe.positions(p): decoder(...)`. With
SPATIALVLM_VERBOSE=1 in the environment, `PositionEncoding.positions` does this itself and logs the verdicts
(logger `spatialvlm_cli.pe.checks`, INFO); unset, the cost is one environment lookup per prefill.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from spatialvlm_cli.pe.apply import QKTable, apply_rotary
from spatialvlm_cli.pe.positions import PointPositions, normalize_coords

log = logging.getLogger(__name__)

VERBOSE_ENV = "SPATIALVLM_VERBOSE"
SHIFT = (3.5, -2.25, 7.0)  # the common translation of checkpoint 9, in rotation units


def verbose_enabled() -> bool:
    """True when SPATIALVLM_VERBOSE is set to anything but "", "0", "false" or "no"."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Verdict:
    """One checkpoint result; `layer` is None for checks of the whole forward."""

    checkpoint: str
    layer: int | None
    passed: bool
    detail: str

    def line(self) -> str:
        where = "" if self.layer is None else f" layer {self.layer}"
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.checkpoint}{where}: {self.detail}"


class PrefillChecker:
    """Collects verdicts for the forwards it observes (layers are counted in call order)."""

    def __init__(self, encoding: Any, atol: float = 1e-4) -> None:
        self.encoding = encoding
        self.atol = atol
        self.verdicts: list[Verdict] = []
        self._calls = 0
        self._prefill: dict[str, Any] | None = None

    def add(self, checkpoint: str, layer: int | None, passed: bool, detail: str) -> None:
        self.verdicts.append(Verdict(checkpoint, layer, bool(passed), detail))

    @property
    def passed(self) -> bool:
        return all(verdict.passed for verdict in self.verdicts)

    def on_tables(self, positions: PointPositions, stock: tuple[Tensor, Tensor], tables: Any) -> None:
        self._calls = 0
        mask = positions.point_mask
        coords = normalize_coords(positions.point_coords, mask, self.encoding.options.coord_unit)
        shifted = self.encoding.tables_from_units(*stock, mask, coords + torch.tensor(SHIFT, device=coords.device))
        self._prefill = {"positions": positions, "stock": stock, "shifted": shifted}
        shapes = [tuple(t.shape) for t in (tables if isinstance(tables, tuple) else (tables.cos_k, tables.sin_k))]
        spans = [_spans(row) for row in mask]
        finite = all(torch.isfinite(t).all() for t in (tables if isinstance(tables, tuple) else (tables.cos_k,)))
        self.add("2 3-D RoPE data", None, finite and all(spans),
                 f"cos/sin {shapes[0]}, point-token spans {spans}")
        counts = mask.sum(dim=1).tolist()
        coords_ok = bool(torch.isfinite(positions.point_coords[mask]).all())
        self.add("3 point-token extraction", None, coords_ok and all(counts),
                 f"point tokens per sequence {counts} == coordinate rows {counts}, finite: {coords_ok}")
        ids = positions.position_ids
        increasing = all(bool((row[int(m.nonzero()[0]):].diff() > 0).all()) for row, m in zip(ids, mask, strict=True)
                         if m.any())
        self.add("6 1-D RoPE data", None, tuple(stock[0].shape) == (*ids.shape, stock[0].shape[-1]) and increasing,
                 f"stock cos/sin {tuple(stock[0].shape)}, ids {ids.min().item()}..{ids.max().item()} strictly "
                 f"increasing from the point block on: {increasing}")

    def on_rotation(self, q: Tensor, k: Tensor, cos: Tensor | QKTable, sin: Tensor | QKTable, q_rotated: Tensor,
                    k_rotated: Tensor) -> None:
        layer = self._calls
        self._calls += 1
        if self._prefill is None:
            self.add("decode detection", layer, q.shape[2] == 1 and isinstance(cos, Tensor),
                     f"no point positions: {q.shape[2]} new token(s), stock table {tuple(cos.shape)}")
            return
        positions: PointPositions = self._prefill["positions"]
        points, text = positions.point_mask, ~positions.point_mask
        shape = self.encoding.lm_shape
        self.add("1 q/k after projection", layer,
                 q.shape[1] % k.shape[1] == 0 and q.shape[-1] == k.shape[-1] == shape.head_dim
                 and q.shape[2] == points.shape[1],
                 f"q {tuple(q.shape)}, k {tuple(k.shape)}, {q.shape[1] // k.shape[1]} query heads per key head")
        q_error = (q_rotated.norm(dim=-1) - q.norm(dim=-1)).abs()  # (B, Hq, S)
        k_error = (k_rotated.norm(dim=-1) - k.norm(dim=-1)).abs()
        point_error = max(_masked_max(q_error, points), _masked_max(k_error, points))
        self.add("4 3-D rotation of point tokens", layer, point_error <= self.atol,
                 f"{int(points.sum())} point rows, largest norm change {point_error:.2e}")
        full_error = max(float(q_error.max()), float(k_error.max()))
        self.add("5 full q/k norms", layer, full_error <= self.atol, f"largest norm change {full_error:.2e}")
        stock_q, stock_k = apply_rotary(q, k, *self._prefill["stock"])
        self._check_points_kept(layer, q_rotated, stock_q, points)
        text_equal = bool((q_rotated == stock_q).all(dim=-1).all(dim=1)[text].all()) and bool(
            (k_rotated == stock_k).all(dim=-1).all(dim=1)[text].all())
        self.add("8 1-D RoPE on text", layer, text_equal, f"{int(text.sum())} text rows equal the stock rotation")
        self._check_translation(layer, q, k, q_rotated, k_rotated, points)

    def _check_points_kept(self, layer: int, q_rotated: Tensor, stock_q: Tensor, points: Tensor) -> None:
        roles = self.encoding.allocation.roles
        one_d = torch.tensor([role == "t" for role in roles], device=q_rotated.device).repeat(2)
        rows_q, rows_stock = q_rotated.transpose(1, 2)[points], stock_q.transpose(1, 2)[points]  # (N, Hq, D)
        overwritten = bool((rows_q[..., ~one_d] == rows_stock[..., ~one_d]).all())
        kept = bool(torch.allclose(rows_q[..., one_d], rows_stock[..., one_d], atol=self.atol)) if one_d.any() else True
        self.add("7 point tokens kept", layer, kept and not overwritten,
                 f"spatial pairs differ from the 1-D rotation: {not overwritten}; "
                 f"{int(one_d.sum()) // 2} 1-D pairs equal it: {kept}")

    def _check_translation(self, layer: int, q: Tensor, k: Tensor, q_rotated: Tensor, k_rotated: Tensor,
                           points: Tensor) -> None:
        row = int(points.any(dim=1).nonzero()[0])
        index = points[row].nonzero()[:2, 0]
        shifted = self._prefill["shifted"]
        cos, sin = shifted.for_layer(layer) if hasattr(shifted, "for_layer") else shifted
        q_shift, k_shift = apply_rotary(q, k, cos, sin)
        group = q.shape[1] // k.shape[1]
        before = _logit(q_rotated, k_rotated, row, index, group)
        after = _logit(q_shift, k_shift, row, index, group)
        change = float((after - before).abs().max())
        scale = float(before.abs().max()) + 1.0
        self.add("9 relative position of point tokens", layer, change <= self.atol * scale,
                 f"q.k of point tokens {index.tolist()} changes by {change:.2e} when all coordinates move by {SHIFT}")

    def report(self) -> str:
        """All verdicts, one line each."""
        return "\n".join(verdict.line() for verdict in self.verdicts)


def _spans(row_mask: Tensor) -> list[tuple[int, int]]:
    """[(start, end)) runs of True in a (S,) bool mask."""
    padded = torch.cat((row_mask.new_zeros(1), row_mask, row_mask.new_zeros(1))).int()
    edges = padded.diff().nonzero()[:, 0].tolist()
    return list(zip(edges[::2], edges[1::2], strict=True))


def _masked_max(values: Tensor, mask: Tensor) -> float:
    """Max of values (B, H, S) over the positions where mask (B, S) is True (0 if none)."""
    selected = values.transpose(1, 2)[mask]
    return float(selected.max()) if selected.numel() else 0.0


def _logit(q: Tensor, k: Tensor, row: int, index: Tensor, group: int) -> Tensor:
    """q.k of token index[0] (query) and index[-1] (key) in sequence `row`, for every query head: (Hq,)."""
    keys = k[row, :, index[-1]].repeat_interleave(group, dim=0)
    return (q[row, :, index[0]] * keys).sum(dim=-1)


def check_cache_length(past_key_values: Any, attention_mask: Tensor | None) -> Verdict:
    """After a forward: the KV cache holds as many positions as the 2-D attention mask covers (seed bug: a decode
    mask of 232 against a cache of 787 when point tokens were expanded inside forward)."""
    cached = past_key_values.get_seq_length()
    if attention_mask is None:
        return Verdict("cache length == mask length", None, True, f"cache {cached}, no 2-D mask")
    return Verdict("cache length == mask length", None, cached == attention_mask.shape[-1],
                   f"cache {cached}, mask {attention_mask.shape[-1]}")
