"""The seeds' nine per-layer checkpoints, mapped onto our one-pass design, each with a numeric verdict.

The seeds (seed 001, `SPATIALLM_VERBOSE=1`) rotate in two passes per layer: extract the point tokens, rotate them by
3-D RoPE, put them back, save them, rotate everything by 1-D RoPE (overwriting the points) and restore the saved
points. Ours builds ONE (cos, sin) table per forward whose point rows already carry the 3-D angles (text rows the
stock 1-D ones) and rotates once. Each checkpoint therefore judges the invariant its seed step was meant to ensure:

    1 q, k, v shapes after the head split (GQA: Hq query heads, Hkv key/value heads); q, k, v equal the plain
      projections of the layer input (no PE mixed in before the split: a seed bug).
    2 the table of the forward: shapes, dtype, device, a rotation table (cos^2 + sin^2 = 1, both halves of a pair
      equal), one contiguous point span per sequence with as many tokens as the encoder emitted coordinates.
    3 no extraction in ours: the point mask selects the rows in place; its span is exactly the tokens between
      <|point_start|> and <|point_end|>, and its coordinates are distinct integer grid cells of encoder tokens.
    4 point rows, spatial pairs, after the rotation == the 3-D rotation of their coordinates, recomputed by the
      pure-Python reference (`pe/reference.py`); every pair keeps its length.
    5 every row of q and k keeps its norm (a rotation).
    6 the 1-D data: sequential, collision-free position ids; text rows of the table == cos/sin(p * theta^(-2i/D)).
    7 nothing to save in ours: the point rows of the table are the 3-D table of their coordinates, never the 1-D one.
    8 text rows (and the 1-D pairs of point rows under 3D_with_1D) == the stock 1-D rotation.
    9 final q, k == reference for points and text; the KV cache holds these keys; q.k of two point tokens is
      unchanged by a common translation of all coordinates (the variant's own table code, rotation units).
Variants that leave attention alone (None, 3D_Sinusoidal) get "attention untouched" verdicts at 2, 4, 7, 9: every
row is rotated by the stock table.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spatialvlm_cli.check.context import (
    CheckContext,
    half_tables,
    rotate,
    sample,
    tolerance,
)
from spatialvlm_cli.check.results import CHECKPOINT_NAMES, CheckResult
from spatialvlm_cli.model.attention import AttentionCall
from spatialvlm_cli.pe import LayerwiseTables, QKTable, apply_rotary, normalize_coords
from spatialvlm_cli.pe.reference import reference_normalize, reference_rotary_angles


def _shape(tensor: Tensor) -> str:
    return f"{tuple(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')} {tensor.device}"


def _table_shape(table: Tensor | QKTable) -> str:
    if isinstance(table, QKTable):
        tied = " (tied)" if table.q is table.k else ""
        return f"per-head q {_shape(table.q)}, k {tuple(table.k.shape)}{tied}"
    return _shape(table)


def _spans(mask_row: Tensor) -> list[tuple[int, int]]:
    """[(start, end)) runs of True in a (S,) bool tensor."""
    values = mask_row.int().tolist()
    spans, start = [], None
    for index, value in enumerate([*values, 0]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            spans.append((start, index))
            start = None
    return spans


def _matched_heads(observed: Tensor, expected: Tensor) -> tuple[Tensor, Tensor]:
    """Align (B, Ho, ...) tables with (B, He, ...) references: Ho == 1 broadcasts, Ho < He keeps one query head per
    key/value group (a tied table is the key head's, which query heads h*g .. h*g+g-1 share)."""
    heads, reference_heads = observed.shape[1], expected.shape[1]
    if heads == 1:
        return observed.expand_as(expected), expected
    if heads < reference_heads:
        return observed, expected[:, :: reference_heads // heads]
    return observed, expected


def _relative(observed: Tensor, expected: Tensor) -> float:
    """max |observed - expected| / max(|expected|, 1e-6), in float64."""
    if observed.numel() == 0:
        return 0.0
    observed, expected = observed.double().cpu(), expected.double().cpu()
    return float((observed - expected).abs().max() / expected.abs().max().clamp_min(1e-6))


class LayerCheck:
    """The nine checkpoints of one captured prefill attention call."""

    def __init__(self, capture: AttentionCall, context: CheckContext) -> None:
        self.c = capture
        self.ctx = context
        self.pe = context.pe
        shape = self.pe.lm_shape
        self.heads, self.kv_heads, self.head_dim = shape.num_heads, shape.num_kv_heads, shape.head_dim
        self.half = self.head_dim // 2
        self.tol = tolerance(capture.q.dtype)
        positions = capture.positions
        self.position_ids = positions.position_ids
        self.point_mask = positions.point_mask
        row = self.point_mask[0]
        self.point_rows = sample(torch.nonzero(row).flatten().cpu())
        self.text_rows_all = torch.nonzero(~row).flatten().cpu()
        self.text_rows = sample(self.text_rows_all)
        self.rows = torch.cat((self.point_rows, self.text_rows)).sort().values
        self.stock = context.stock_angles(self.position_ids)  # (B, S, P)
        self._reference: tuple[Tensor, Tensor] | None = None

    def result(self, number: int, passed: bool, detail: str) -> CheckResult:
        return CheckResult(self.ctx.mode, self.c.layer, number, CHECKPOINT_NAMES[number], bool(passed), detail)

    def run(self) -> list[CheckResult]:
        return [self.projection(), self.rope3d_data(), self.extraction(), self.after_rope3d(), self.full_norms(),
                self.rope1d_data(), self.points_kept(), self.after_rope1d(), self.final()]

    # -- reference ---------------------------------------------------------------------------------------------
    def reference_angles(self) -> tuple[Tensor, Tensor]:
        """Expected angles of the sampled rows `self.rows`: q (B, Hq, n, P) and k (B, Hkv, n, P) float64, from the
        pure-Python reference (rotary variants) or the stock formula (others)."""
        if self._reference is not None:
            return self._reference
        rows = self.rows
        stock = self.stock[:, rows][:, None]  # (B, 1, n, P)
        if not self.ctx.rotary:
            self._reference = (stock.expand(-1, self.heads, -1, -1), stock.expand(-1, self.kv_heads, -1, -1))
            return self._reference
        positions = self.c.positions
        units = torch.tensor([reference_normalize(coords, mask, self.pe.options.coord_unit) for coords, mask in
                              zip(positions.point_coords.tolist(), positions.point_mask.tolist(), strict=True)],
                             dtype=torch.float64)
        q_angles, k_angles = reference_rotary_angles(self.pe, self.ctx.rope_theta, self.position_ids[:, rows].cpu(),
                                                     self.point_mask[:, rows].cpu(), units[:, rows], self.c.layer)
        q_ref, k_ref = torch.tensor(q_angles, dtype=torch.float64), torch.tensor(k_angles, dtype=torch.float64)
        if not self.ctx.rope_default:  # scaled 1-D RoPE: the formula in the reference is the plain one
            keep = self.point_mask[:, rows].cpu()[:, None, :, None] & self._spatial_pair_mask()
            q_ref = torch.where(keep, q_ref, stock)
            k_ref = torch.where(keep, k_ref, stock)
        self._reference = (q_ref, k_ref)
        return self._reference

    def _spatial_pair_mask(self) -> Tensor:
        mask = torch.zeros(self.half, dtype=torch.bool)
        mask[self.ctx.spatial_pairs()] = True
        return mask

    def _dims(self, pairs: list[int]) -> list[int]:
        return [*pairs, *(pair + self.half for pair in pairs)]

    def _expected_rotation(self) -> tuple[Tensor, Tensor]:
        q_ref, k_ref = self.reference_angles()
        scaling = self.ctx.attention_scaling
        return (rotate(self.c.q[:, :, self.rows], q_ref, scaling), rotate(self.c.k[:, :, self.rows], k_ref, scaling))

    # -- the nine ----------------------------------------------------------------------------------------------
    def projection(self) -> CheckResult:
        c, b, s = self.c, self.c.q.shape[0], self.c.q.shape[2]
        attention = self.ctx.model.model.layers[c.layer].self_attn
        problems = []
        if c.q.shape != (b, self.heads, s, self.head_dim):
            problems.append(f"q {tuple(c.q.shape)} is not (B, Hq={self.heads}, S, D={self.head_dim})")
        if c.k.shape != (b, self.kv_heads, s, self.head_dim):
            problems.append(f"k {tuple(c.k.shape)} is not (B, Hkv={self.kv_heads}, S, D={self.head_dim})")
        if c.v is not None and c.v.shape != c.k.shape:
            problems.append(f"v {tuple(c.v.shape)} differs from k {tuple(c.k.shape)}")
        if self.heads % self.kv_heads:
            problems.append(f"{self.heads} query heads are not a multiple of {self.kv_heads} key/value heads")
        with torch.no_grad():
            hidden = c.hidden_states
            split = [proj(hidden).view(b, s, -1, self.head_dim).transpose(1, 2)
                     for proj in (attention.q_proj, attention.k_proj)]
        errors = [_relative(c.q, split[0]), _relative(c.k, split[1])]
        if max(errors) > self.tol:
            problems.append(f"q/k differ from the plain projection of the layer input by {max(errors):.2e} "
                            f"(a PE applied before the head split?)")
        v = f", v {tuple(c.v.shape)}" if c.v is not None else ""
        detail = (f"q {_shape(c.q)}, k {tuple(c.k.shape)}{v}; GQA Hq={self.heads} Hkv={self.kv_heads} "
                  f"({self.heads // max(self.kv_heads, 1)} query heads per kv head); q/k == projection split into "
                  f"heads (max rel {max(errors):.1e})")
        return self.result(1, not problems, "; ".join(problems) or detail)

    def rope3d_data(self) -> CheckResult:
        c = self.c
        problems = []
        dtype_table = c.cos.k if isinstance(c.cos, QKTable) else c.cos
        if dtype_table.dtype != c.q.dtype or dtype_table.device != c.q.device:
            problems.append(f"table {dtype_table.dtype} on {dtype_table.device} but q {c.q.dtype} on {c.q.device}")
        if isinstance(c.cos, QKTable):
            expected = {(c.q.shape[0], self.kv_heads, c.q.shape[2], self.half)}
            if c.cos.k.shape not in expected:
                problems.append(f"k table {tuple(c.cos.k.shape)} is not (B, Hkv, S, D/2)")
        elif c.cos.shape[-2:] != (c.q.shape[2], self.head_dim):
            problems.append(f"table {tuple(c.cos.shape)} does not cover (S={c.q.shape[2]}, D={self.head_dim})")
        for name, (cos, sin) in {"q": (half_tables(c.cos, self.head_dim)[0], half_tables(c.sin, self.head_dim)[0]),
                                 "k": (half_tables(c.cos, self.head_dim)[1], half_tables(c.sin, self.head_dim)[1])
                                 }.items():
            radius = (cos.square() + sin.square()).sqrt()
            error = float((radius - self.ctx.attention_scaling).abs().max())
            if not torch.isfinite(radius).all() or error > self.tol:
                problems.append(f"{name} table is not a rotation: |(cos, sin)| off by {error:.2e}")
        if not isinstance(c.cos, QKTable):
            halves = float(max((t[..., :self.half] - t[..., self.half:]).abs().max() for t in (c.cos, c.sin)))
            if halves > self.tol:
                rows = torch.nonzero(((c.cos[..., :self.half] - c.cos[..., self.half:]).abs() > self.tol).any(-1))
                kind = "point" if bool(self.point_mask[rows[0, 0], rows[0, 1]]) else "text"
                problems.append(f"the two halves of the table differ by {halves:.2e} ({kind} token {int(rows[0, 1])}):"
                                f" dims i and i+D/2 get different angles (GPT-J-duplicated frequencies applied "
                                f"with rotate_half?), not a rotation")
        spans = [_spans(row) for row in self.point_mask.cpu()]
        counts = [int(row.sum()) for row in self.point_mask]
        for index, row_spans in enumerate(spans):
            if len(row_spans) != 1:
                problems.append(f"sequence {index} has {len(row_spans)} point spans, expected 1")
        expected = self.ctx.expected_point_counts
        if expected is not None and counts != list(expected):
            problems.append(f"{counts} point tokens but the encoder emitted {list(expected)} coordinates")
        kind = "3-D" if self.ctx.rotary else f"none ({self.ctx.mode} leaves attention alone; stock table)"
        detail = (f"cos/sin {_table_shape(c.cos)}; 3-D data: {kind}; point spans {spans}; {sum(counts)} point "
                  f"tokens == {sum(expected) if expected is not None else sum(counts)} coordinates; rotation table")
        return self.result(2, not problems, "; ".join(problems) or detail)

    def extraction(self) -> CheckResult:
        problems = []
        positions = self.c.positions
        ids = self.ctx.input_ids
        tokens = []
        for index in range(self.point_mask.shape[0]):
            mask = self.point_mask[index]
            if ids is not None:
                row = ids[index].to(mask.device)
                config = self.ctx.model.config
                starts = torch.nonzero(row == config.point_start_token_id).flatten()
                ends = torch.nonzero(row == config.point_end_token_id).flatten()
                if len(starts) != 1 or len(ends) != 1:
                    problems.append(f"sequence {index}: {len(starts)} <|point_start|> and {len(ends)} <|point_end|>")
                else:
                    between = torch.zeros_like(mask)
                    between[int(starts[0]) + 1:int(ends[0])] = True
                    if not torch.equal(between, mask):
                        problems.append(f"sequence {index}: point mask is not exactly the tokens between "
                                        f"<|point_start|> ({int(starts[0])}) and <|point_end|> ({int(ends[0])})")
            coords = positions.point_coords[index][mask]
            tokens.append(len(coords))
            if not torch.equal(coords, coords.round()):
                problems.append(f"sequence {index}: coordinates are not integer grid cells")
            distinct = len(torch.unique(coords, dim=0))
            if distinct != len(coords):
                problems.append(f"sequence {index}: {len(coords)} point tokens but only {distinct} distinct grid "
                                f"cells (raw-point coordinates instead of encoder tokens?)")
        extracted = self.c.q[:, :, self.point_mask[0]]
        detail = (f"in place (no extraction in the one-pass design): q point rows {tuple(extracted.shape)}; span == "
                  f"tokens between <|point_start|> and <|point_end|>; {tokens} distinct integer grid cells")
        return self.result(3, not problems, "; ".join(problems) or detail)

    def after_rope3d(self) -> CheckResult:
        c = self.c
        point_sample = self.point_mask[0, self.rows].cpu()
        q_exp, k_exp = self._expected_rotation()
        dims = self._dims(self.ctx.spatial_pairs()) if self.ctx.rotary else list(range(self.head_dim))
        observed_q = c.q_rot[:, :, self.rows].double().cpu()[:, :, point_sample][..., dims]
        observed_k = c.k_rot[:, :, self.rows].double().cpu()[:, :, point_sample][..., dims]
        error = max(_relative(observed_q, q_exp[:, :, point_sample][..., dims]),
                    _relative(observed_k, k_exp[:, :, point_sample][..., dims]))
        pair_error = 0.0
        for before, after in ((c.q, c.q_rot), (c.k, c.k_rot)):
            b, a = before[:, :, self.point_mask[0]].double(), after[:, :, self.point_mask[0]].double()
            length_b = (b[..., :self.half].square() + b[..., self.half:].square()).sqrt() * self.ctx.attention_scaling
            length_a = (a[..., :self.half].square() + a[..., self.half:].square()).sqrt()
            pair_error = max(pair_error, _relative(length_a, length_b))
        passed = error <= self.tol and pair_error <= self.tol
        what = (f"{len(dims) // 2} spatial pairs of {int(point_sample.sum())} sampled point rows == reference 3-D "
                f"rotation of their coordinates" if self.ctx.rotary else
                f"no 3-D RoPE in {self.ctx.mode}: point rows == stock 1-D rotation")
        detail = f"{what} (max rel {error:.1e}); pair lengths kept (max rel {pair_error:.1e})"
        if not passed:
            detail = (f"point rows differ from the reference rotation by {error:.2e} and pair lengths change by "
                      f"{pair_error:.2e} (tolerance {self.tol:.0e})")
        return self.result(4, passed, detail)

    def full_norms(self) -> CheckResult:
        c = self.c
        errors = []
        for before, after in ((c.q, c.q_rot), (c.k, c.k_rot)):
            norm_b = before.double().norm(dim=-1) * self.ctx.attention_scaling
            norm_a = after.double().norm(dim=-1)
            errors.append((norm_a - norm_b).abs() / norm_b.clamp_min(1e-12))
        worst = max(float(e.max()) for e in errors)
        shapes_ok = c.q_rot.shape == c.q.shape and c.k_rot.shape == c.k.shape and c.q_rot.dtype == c.q.dtype
        passed = worst <= self.tol and shapes_ok
        if passed:
            detail = (f"q {tuple(c.q_rot.shape)}, k {tuple(c.k_rot.shape)}: every row keeps its norm "
                      f"(max rel {worst:.1e})")
        else:
            where = torch.nonzero(errors[0] == errors[0].max())[0].tolist()
            kind = "point" if bool(self.point_mask[where[0], where[2]]) else "text"
            detail = (f"norms change by up to {worst:.2e} (q head {where[1]}, {kind} token {where[2]}): not a "
                      f"rotation" if shapes_ok else f"rotation changed shape/dtype: q {tuple(c.q_rot.shape)} "
                      f"{c.q_rot.dtype}")
        return self.result(5, passed, detail)

    def rope1d_data(self) -> CheckResult:
        c = self.c
        problems = []
        ids = self.position_ids
        for index, row in enumerate(ids):
            expected = torch.arange(row.shape[0], device=row.device)
            if not torch.equal(row, expected):
                unique = len(torch.unique(row))
                problems.append(f"sequence {index}: position ids are not 0..{row.shape[0] - 1}"
                                f" ({unique} distinct of {row.shape[0]})")
        text = self.text_rows_all
        stock = self.stock[:, text][:, None]  # (B, 1, T, P)
        errors = []
        for table, function in ((c.cos, torch.cos), (c.sin, torch.sin)):
            q_half, k_half = half_tables(table, self.head_dim)
            expected = function(stock) * self.ctx.attention_scaling
            errors += [_relative(q_half[:, :, text], expected.expand(-1, q_half.shape[1], -1, -1)),
                       _relative(k_half[:, :, text], expected.expand(-1, k_half.shape[1], -1, -1))]
        error = max(errors)
        if error > self.tol:
            problems.append(f"text rows of the table differ from cos/sin(p * theta^(-2i/D)) by {error:.2e}")
        source = f"theta {self.ctx.rope_theta:g}" if self.ctx.rope_default else "the model's scaled rotary"
        detail = (f"position_ids {tuple(ids.shape)} = 0..{ids.shape[1] - 1} (no collisions); {len(text)} text "
                  f"rows of cos/sin == stock 1-D ({source}, max rel {error:.1e}); prefill (cache was empty)")
        return self.result(6, not problems, "; ".join(problems) or detail)

    def points_kept(self) -> CheckResult:
        c = self.c
        if not self.ctx.rotary:
            q_half, _ = half_tables(c.cos, self.head_dim)
            points = self.point_mask[0].cpu()
            error = _relative(q_half[:, :, points], self.stock[:, points][:, None].cos() * self.ctx.attention_scaling)
            return self.result(7, error <= self.tol,
                               f"nothing to keep in {self.ctx.mode}: point rows carry the stock 1-D table "
                               f"(max rel {error:.1e})")
        q_ref, k_ref = self.reference_angles()
        point_sample = self.point_mask[0, self.rows].cpu()
        pairs = self.ctx.spatial_pairs()
        scaling = self.ctx.attention_scaling
        errors = []
        for table, function in ((c.cos, torch.cos), (c.sin, torch.sin)):
            q_half, k_half = half_tables(table, self.head_dim)
            for observed, reference in ((q_half, q_ref), (k_half, k_ref)):
                got = observed[:, :, self.rows][:, :, point_sample][..., pairs]
                want = function(reference[:, :, point_sample][..., pairs]) * scaling
                errors.append(_relative(*_matched_heads(got, want)))
        error = max(errors)
        q_half, _ = half_tables(c.cos, self.head_dim)
        points = self.point_mask[0].cpu()
        stock = self.stock[:, points][:, None, :, pairs].cos() * scaling
        differs = ((q_half[:, :, points][..., pairs] - stock).abs() > self.tol).any(-1).any(1)[0]
        n_points = int(points.sum())
        passed = error <= self.tol and int(differs.sum()) == n_points
        detail = (f"nothing saved/restored: the point rows of the one table are the 3-D table of their coordinates "
                  f"(max rel {error:.1e}); {int(differs.sum())}/{n_points} point rows differ from the 1-D table")
        if not passed:
            detail = (f"point rows of the table differ from the 3-D table of their coordinates by {error:.2e}; "
                      f"{n_points - int(differs.sum())}/{n_points} point rows carry the 1-D table (3-D overwritten?)")
        return self.result(7, passed, detail)

    def after_rope1d(self) -> CheckResult:
        c = self.c
        text = self.text_rows_all
        angles = self.stock[:, text][:, None]
        scaling = self.ctx.attention_scaling
        error = max(_relative(c.q_rot[:, :, text], rotate(c.q[:, :, text], angles, scaling)),
                    _relative(c.k_rot[:, :, text], rotate(c.k[:, :, text], angles, scaling)))
        one_d = self.ctx.one_d_pairs()
        point_error = 0.0
        if self.ctx.rotary and one_d:
            q_exp, k_exp = self._expected_rotation()
            point_sample = self.point_mask[0, self.rows].cpu()
            dims = self._dims(one_d)
            point_error = max(
                _relative(c.q_rot[:, :, self.rows].cpu()[:, :, point_sample][..., dims],
                          q_exp[:, :, point_sample][..., dims]),
                _relative(c.k_rot[:, :, self.rows].cpu()[:, :, point_sample][..., dims],
                          k_exp[:, :, point_sample][..., dims]))
        passed = max(error, point_error) <= self.tol
        points = (f"; 1-D pairs ({len(one_d)}) of point rows == stock (max rel {point_error:.1e})"
                  if self.ctx.rotary and one_d else "")
        detail = f"{len(text)} text rows == stock 1-D rotation (max rel {error:.1e}){points}"
        if not passed:
            detail = (f"text rows differ from the stock 1-D rotation by {error:.2e}" if error > self.tol else
                      f"1-D pairs of point rows differ from the stock rotation by {point_error:.2e}")
        return self.result(8, passed, detail)

    def final(self) -> CheckResult:
        c = self.c
        q_exp, k_exp = self._expected_rotation()
        error = max(_relative(c.q_rot[:, :, self.rows], q_exp), _relative(c.k_rot[:, :, self.rows], k_exp))
        problems = []
        if error > self.tol:
            problems.append(f"final q/k differ from the independent reference by {error:.2e} "
                            f"({len(self.point_rows)} point + {len(self.text_rows)} text rows compared)")
        cache = "no cache"
        if c.cached_keys is not None:
            cache_error = _relative(c.cached_keys, c.k_rot)
            cache = f"KV cache holds these keys (max rel {cache_error:.1e})"
            if cache_error > self.tol:
                problems.append(f"the KV cache holds keys that differ from the rotated keys by {cache_error:.2e}")
        translation = "no 3-D rotation: translation n/a"
        if self.ctx.rotary:
            drift = self.translation_drift()
            translation = f"q.k of point pairs unchanged by a common translation (max rel {drift:.1e})"
            if drift > self.tol * 10:
                problems.append(f"q.k of point tokens changes by {drift:.2e} under a common translation of the "
                                f"coordinates: not a function of relative position")
        what = "points 3-D, text 1-D" if self.ctx.rotary else "attention untouched: all rows stock 1-D"
        detail = (f"{what} == reference ({len(self.point_rows)} point + {len(self.text_rows)} text rows, max rel "
                  f"{error:.1e}); {cache}; {translation}")
        return self.result(9, not problems, "; ".join(problems) or detail)

    def translation_drift(self) -> float:
        """Relative change of q.k between sampled point tokens when all their coordinates move by one vector,
        with the variant's own table code (rotation units)."""
        rows = self.point_rows
        positions = self.c.positions
        unit = self.pe.options.coord_unit
        units = normalize_coords(positions.point_coords, positions.point_mask, unit)[:, rows].float()
        angles = self.stock[:, rows].float()
        doubled = torch.cat((angles, angles), dim=-1).to(units.device)
        scaling = self.ctx.attention_scaling
        stock_cos, stock_sin = doubled.cos() * scaling, doubled.sin() * scaling
        mask = torch.ones(units.shape[:2], dtype=torch.bool, device=units.device)
        shift = torch.tensor([3.0, -2.0, 5.0] if unit == "grid" else [0.3, -0.2, 0.5], device=units.device)
        q, k = self.c.q[:, :, rows].float(), self.c.k[:, :, rows].float()
        scores = []
        for coords in (units, units + shift):
            tables: Any = self.pe.tables_from_units(stock_cos, stock_sin, mask, coords, scaling)
            cos, sin = tables.for_layer(self.c.layer) if isinstance(tables, LayerwiseTables) else tables
            q_rot, k_rot = apply_rotary(q, k, cos, sin)
            k_rot = k_rot.repeat_interleave(self.heads // self.kv_heads, dim=1)
            scores.append(q_rot @ k_rot.transpose(-1, -2))
        return _relative(scores[1], scores[0])


def check_layer(capture: AttentionCall, context: CheckContext) -> list[CheckResult]:
    """The nine checkpoint verdicts of one prefill attention call (`capture.is_prefill` must hold)."""
    return LayerCheck(capture, context).run()
