"""The seeds' nine per-layer checkpoints as a table of small named invariants of one prefill attention call.

The seeds (seed 001, `SPATIALLM_VERBOSE=1`) rotate in two passes per layer: extract the point tokens, rotate them by
3-D RoPE, put them back, save them, rotate everything by 1-D RoPE (overwriting the points) and restore the saved
points. Ours builds ONE (cos, sin) table per forward whose point rows already carry the 3-D angles (text rows the
stock 1-D ones) and rotates once. The numbers and names users know stay; each checkpoint judges the invariants its
seed step was meant to ensure. Two seed steps do not exist in our design; their checkpoints state what our design
guarantees instead: 3 (extraction) that the point mask selects exactly the point tokens in place, 7 (save/restore
of the point rows) that the point rows of the one table are their own reference table, never the 1-D one.
Variants that leave attention alone (None, 3D_Sinusoidal) are judged against the stock table: their point rows'
reference is the 1-D rotation, and the invariants of the 3-D rotation do not apply.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatialvlm_cli.check.context import CheckContext, half_tables, relative_error, rotate
from spatialvlm_cli.check.layer import LayerFacts
from spatialvlm_cli.check.results import Check, CheckResult, Invariant, Measurement
from spatialvlm_cli.model.attention import AttentionCall
from spatialvlm_cli.pe import LayerwiseTables, QKTable, apply_rotary, normalize_coords


def _describe(tensor: Tensor) -> str:
    """'(1, 4, 37, 16) float32 cpu'."""
    return f"{tuple(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')} {tensor.device}"


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


def _sampled_points(tensor: Tensor, facts: LayerFacts, dims: list[int]) -> Tensor:
    """(B, H, S, D) -> (B, H, sampled point rows, len(dims)) float64 on the CPU."""
    return tensor[:, :, facts.rows].double().cpu()[:, :, facts.point_sample][..., dims]


# -- 1 Q/K/V after projection and head reshape ----------------------------------------------------------------------
def heads_split_as_configured(f: LayerFacts) -> Measurement:
    c = f.call
    batch, length = c.q.shape[0], c.q.shape[2]
    holds = (c.q.shape == (batch, f.heads, length, f.head_dim) and c.k.shape == (batch, f.kv_heads, length, f.head_dim)
             and (c.v is None or c.v.shape == c.k.shape) and f.heads % f.kv_heads == 0)
    v = None if c.v is None else tuple(c.v.shape)
    return Measurement(holds, {"q": _describe(c.q), "k": tuple(c.k.shape), "v": v,
                               "heads": f.heads, "kv_heads": f.kv_heads, "head_dim": f.head_dim,
                               "group": f.heads // max(f.kv_heads, 1)})


def qk_are_plain_projections(f: LayerFacts) -> Measurement:
    c = f.call
    batch, length = c.q.shape[0], c.q.shape[2]
    attention = f.context.model.model.layers[c.layer].self_attn
    with torch.no_grad():
        q, k = (proj(c.hidden_states).view(batch, length, -1, f.head_dim).transpose(1, 2)
                for proj in (attention.q_proj, attention.k_proj))
    error = max(relative_error(c.q, q), relative_error(c.k, k))
    return Measurement(error <= f.tol, {"error": error})


# -- 2 3-D RoPE data: the table of the forward and the point spans ---------------------------------------------------
def table_covers_q(f: LayerFacts) -> Measurement:
    c = f.call
    if isinstance(c.cos, QKTable):
        table, shaped = c.cos.k, c.cos.k.shape == (c.q.shape[0], f.kv_heads, c.q.shape[2], f.half)
        tied = " (tied)" if c.cos.q is c.cos.k else ""
        described = f"per-head q {_describe(c.cos.q)}, k {tuple(c.cos.k.shape)}{tied}"
    else:
        table, shaped = c.cos, c.cos.shape[-2:] == (c.q.shape[2], f.head_dim)
        described = _describe(c.cos)
    holds = shaped and table.dtype == c.q.dtype and table.device == c.q.device
    return Measurement(holds, {"table": described, "q": _describe(c.q)})


def table_is_rotation(f: LayerFacts) -> Measurement:
    """|(cos, sin)| == the model's attention scaling for every pair of q's and k's table."""
    c = f.call
    error = 0.0
    for cos, sin in zip(half_tables(c.cos, f.head_dim), half_tables(c.sin, f.head_dim), strict=True):
        radius = (cos.square() + sin.square()).sqrt()
        error = max(error, float((radius - f.context.attention_scaling).abs().max())
                    if torch.isfinite(radius).all() else float("inf"))
    return Measurement(error <= f.tol, {"error": error})


def table_halves_equal(f: LayerFacts) -> Measurement | None:
    """Dims i and i + D/2 of a (B, S, D) table get the same angle (None for per-head half tables)."""
    c = f.call
    if isinstance(c.cos, QKTable):
        return None
    differs = [(table[..., :f.half] - table[..., f.half:]).abs() for table in (c.cos, c.sin)]
    error = float(max(difference.max() for difference in differs))
    rows = torch.nonzero((differs[0] > f.tol).any(-1))
    batch, token = (int(rows[0, 0]), int(rows[0, 1])) if len(rows) else (0, 0)
    kind = "point" if bool(f.point_mask[batch, token]) else "text"
    return Measurement(error <= f.tol, {"error": error, "token": token, "kind": kind})


def one_point_span_per_sequence(f: LayerFacts) -> Measurement:
    spans = [_spans(row) for row in f.point_mask.cpu()]
    return Measurement(all(len(row) == 1 for row in spans), {"spans": spans})


def point_tokens_match_encoder(f: LayerFacts) -> Measurement | None:
    """As many point tokens per sequence as the encoder emitted coordinates (None when that count is unknown)."""
    expected = f.context.expected_point_counts
    if expected is None:
        return None
    counts = [int(row.sum()) for row in f.point_mask]
    return Measurement(counts == list(expected), {"tokens": counts, "coordinates": list(expected),
                                                  "total": sum(counts)})


# -- 3 point-token extraction: none in ours, the mask selects the point tokens in place ------------------------------
def point_mask_between_markers(f: LayerFacts) -> Measurement | None:
    """Per sequence, the point mask is exactly the tokens between its one <|point_start|> and one <|point_end|>
    (None when the prefill's input ids are unknown)."""
    ids = f.context.input_ids
    if ids is None:
        return None
    config = f.context.model.config
    markers, mismatched = [], []
    for index, mask in enumerate(f.point_mask):
        row = ids[index].to(mask.device)
        starts = torch.nonzero(row == config.point_start_token_id).flatten()
        ends = torch.nonzero(row == config.point_end_token_id).flatten()
        markers.append((len(starts), len(ends)))
        between = torch.zeros_like(mask)
        if len(starts) == len(ends) == 1:
            between[int(starts[0]) + 1:int(ends[0])] = True
        if not torch.equal(between, mask):
            mismatched.append(index)
    return Measurement(not mismatched, {"mismatched": mismatched, "markers": markers})


def point_coords_are_distinct_grid_cells(f: LayerFacts) -> Measurement:
    positions = f.call.positions
    assert positions is not None
    tokens, distinct, integer = [], [], True
    for coords, mask in zip(positions.point_coords, f.point_mask, strict=True):
        cells = coords[mask]
        tokens.append(len(cells))
        distinct.append(len(torch.unique(cells, dim=0)))
        integer = integer and torch.equal(cells, cells.round())
    return Measurement(integer and tokens == distinct, {"tokens": tokens, "distinct": distinct, "integer": integer,
                                                        "point_q": tuple(f.call.q[:, :, f.point_mask[0]].shape)})


# -- 4 after 3-D RoPE on point tokens --------------------------------------------------------------------------------
def _point_rows_error(f: LayerFacts) -> Measurement:
    """The rotated point-placing pairs of the sampled point rows vs the reference rotation."""
    q_expected, k_expected = f.expected_rotation
    dims = f.dims(f.point_pairs)
    expected_dims = [expected[:, :, f.point_sample][..., dims] for expected in (q_expected, k_expected)]
    error = max(relative_error(_sampled_points(f.call.q_rot, f, dims), expected_dims[0]),
                relative_error(_sampled_points(f.call.k_rot, f, dims), expected_dims[1]))
    return Measurement(error <= f.tol, {"error": error, "pairs": len(f.point_pairs),
                                        "rows": int(f.point_sample.sum()), "tolerance": f.tol})


def point_pairs_match_3d_reference(f: LayerFacts) -> Measurement | None:
    """Spatial pairs of point rows == the pure-Python 3-D rotation of their coordinates (rotary variants)."""
    return _point_rows_error(f) if f.context.rotary else None


def point_rows_equal_stock_rope(f: LayerFacts) -> Measurement | None:
    """Point rows == the stock 1-D rotation (variants that leave attention alone)."""
    return None if f.context.rotary else _point_rows_error(f)


def point_pairs_keep_length(f: LayerFacts) -> Measurement:
    c, points, half = f.call, f.point_mask[0], f.half
    error = 0.0
    for before, after in ((c.q, c.q_rot), (c.k, c.k_rot)):
        b, a = before[:, :, points].double(), after[:, :, points].double()
        length_before = (b[..., :half].square() + b[..., half:].square()).sqrt() * f.context.attention_scaling
        length_after = (a[..., :half].square() + a[..., half:].square()).sqrt()
        error = max(error, relative_error(length_after, length_before))
    return Measurement(error <= f.tol, {"error": error})


# -- 5 full Q/K after 3-D RoPE -----------------------------------------------------------------------------------------
def rotation_keeps_shape_and_dtype(f: LayerFacts) -> Measurement:
    c = f.call
    holds = c.q_rot.shape == c.q.shape and c.k_rot.shape == c.k.shape and c.q_rot.dtype == c.q.dtype
    return Measurement(holds, {"q": _describe(c.q_rot), "k": tuple(c.k_rot.shape)})


def rotation_preserves_norms(f: LayerFacts) -> Measurement:
    c = f.call
    errors = []
    for before, after in ((c.q, c.q_rot), (c.k, c.k_rot)):
        norm_before = before.double().norm(dim=-1) * f.context.attention_scaling
        errors.append((after.double().norm(dim=-1) - norm_before).abs() / norm_before.clamp_min(1e-12))
    error = max(float(e.max()) for e in errors)
    batch, head, token = (int(index) for index in torch.unravel_index(errors[0].argmax(), errors[0].shape))
    kind = "point" if bool(f.point_mask[batch, token]) else "text"
    return Measurement(error <= f.tol, {"error": error, "head": head, "token": token, "kind": kind})


# -- 6 1-D RoPE data ---------------------------------------------------------------------------------------------------
def position_ids_sequential(f: LayerFacts) -> Measurement:
    ids = f.position_ids
    expected = torch.arange(ids.shape[1], device=ids.device)
    holds = all(torch.equal(row, expected) for row in ids)
    return Measurement(holds, {"shape": tuple(ids.shape), "last": ids.shape[1] - 1,
                               "distinct": [len(torch.unique(row)) for row in ids]})


def text_table_rows_are_stock_rope(f: LayerFacts) -> Measurement:
    """Text rows of cos/sin == cos/sin(p * theta^(-2i/D)) (or the model's scaled rotary) x attention scaling."""
    c, text = f.call, f.all_text_rows
    stock = f.stock[:, text][:, None]  # (B, 1, T, P)
    errors = []
    for table, function in ((c.cos, torch.cos), (c.sin, torch.sin)):
        expected = function(stock) * f.context.attention_scaling
        for half in half_tables(table, f.head_dim):
            errors.append(relative_error(half[:, :, text], expected.expand(-1, half.shape[1], -1, -1)))
    source = f"theta {f.context.rope_theta:g}" if f.context.rope_default else "the model's scaled rotary"
    return Measurement(max(errors) <= f.tol, {"error": max(errors), "rows": len(text), "source": source})


# -- 7 point tokens kept: nothing to save in ours, the one table's point rows are their own -------------------------
def point_table_rows_equal_reference(f: LayerFacts) -> Measurement:
    """cos/sin of point rows (point-placing pairs) == the reference table of their positions: the 3-D table of their
    coordinates for rotary variants, the stock 1-D table otherwise."""
    c, pairs, scaling = f.call, f.point_pairs, f.context.attention_scaling
    q_ref, k_ref = f.reference_angles
    errors = []
    for table, function in ((c.cos, torch.cos), (c.sin, torch.sin)):
        for observed, reference in zip(half_tables(table, f.head_dim), (q_ref, k_ref), strict=True):
            got = observed[:, :, f.rows][:, :, f.point_sample][..., pairs]
            want = function(reference[:, :, f.point_sample][..., pairs]) * scaling
            errors.append(relative_error(*_matched_heads(got, want)))
    return Measurement(max(errors) <= f.tol, {"error": max(errors)})


def point_table_rows_leave_1d_table(f: LayerFacts) -> Measurement | None:
    """Every point row's spatial pairs differ from the 1-D table (rotary variants): no 1-D pass overwrote them."""
    if not f.context.rotary:
        return None
    pairs, points = f.point_pairs, f.point_mask[0].cpu()
    q_cos, _ = half_tables(f.call.cos, f.head_dim)
    stock = f.stock[:, points][:, None, :, pairs].cos() * f.context.attention_scaling
    differ = int(((q_cos[:, :, points][..., pairs] - stock).abs() > f.tol).any(-1).any(1)[0].sum())
    count = int(points.sum())
    return Measurement(differ == count, {"differ": differ, "same": count - differ, "points": count})


# -- 8 after 1-D RoPE on all tokens ----------------------------------------------------------------------------------
def text_rows_equal_stock_rope(f: LayerFacts) -> Measurement:
    c, text, scaling = f.call, f.all_text_rows, f.context.attention_scaling
    angles = f.stock[:, text][:, None]
    error = max(relative_error(c.q_rot[:, :, text], rotate(c.q[:, :, text], angles, scaling)),
                relative_error(c.k_rot[:, :, text], rotate(c.k[:, :, text], angles, scaling)))
    return Measurement(error <= f.tol, {"error": error, "rows": len(text)})


def one_d_pairs_of_points_equal_stock_rope(f: LayerFacts) -> Measurement | None:
    """The pairs of point rows that keep the 1-D position (3D_with_1D) == the stock rotation (None without such)."""
    pairs = f.context.one_d_pairs()
    if not f.context.rotary or not pairs:
        return None
    dims = f.dims(pairs)
    q_expected, k_expected = f.expected_rotation
    error = max(relative_error(_sampled_points(f.call.q_rot, f, dims), q_expected[:, :, f.point_sample][..., dims]),
                relative_error(_sampled_points(f.call.k_rot, f, dims), k_expected[:, :, f.point_sample][..., dims]))
    return Measurement(error <= f.tol, {"error": error, "pairs": len(pairs)})


# -- 9 final Q/K -----------------------------------------------------------------------------------------------------
def final_qk_match_reference(f: LayerFacts) -> Measurement:
    q_expected, k_expected = f.expected_rotation
    error = max(relative_error(f.call.q_rot[:, :, f.rows], q_expected),
                relative_error(f.call.k_rot[:, :, f.rows], k_expected))
    return Measurement(error <= f.tol, {"error": error, "points": len(f.point_rows), "texts": len(f.text_rows)})


def kv_cache_holds_rotated_keys(f: LayerFacts) -> Measurement | None:
    if f.call.cached_keys is None:
        return None
    error = relative_error(f.call.cached_keys, f.call.k_rot)
    return Measurement(error <= f.tol, {"error": error})


def qk_invariant_to_common_translation(f: LayerFacts) -> Measurement | None:
    """Relative change of q.k between sampled point tokens when all their coordinates move by one vector, with the
    variant's own table code (rotation units); None for variants without a 3-D rotation."""
    if not f.context.rotary:
        return None
    c, rows, pe = f.call, f.point_rows, f.context.pe
    assert c.positions is not None
    unit = pe.options.coord_unit
    units = normalize_coords(c.positions.point_coords, c.positions.point_mask, unit)[:, rows].float()
    angles = f.stock[:, rows].float()
    doubled = torch.cat((angles, angles), dim=-1).to(units.device)
    scaling = f.context.attention_scaling
    stock_cos, stock_sin = doubled.cos() * scaling, doubled.sin() * scaling
    mask = torch.ones(units.shape[:2], dtype=torch.bool, device=units.device)
    shift = torch.tensor([3.0, -2.0, 5.0] if unit == "grid" else [0.3, -0.2, 0.5], device=units.device)
    q, k = c.q[:, :, rows].float(), c.k[:, :, rows].float()
    scores = []
    for coords in (units, units + shift):
        tables: tuple[Tensor, Tensor] | LayerwiseTables = pe.tables_from_units(stock_cos, stock_sin, mask, coords,
                                                                              scaling)
        cos, sin = tables.for_layer(c.layer) if isinstance(tables, LayerwiseTables) else tables
        q_rot, k_rot = apply_rotary(q, k, cos, sin)
        k_rot = k_rot.repeat_interleave(f.heads // f.kv_heads, dim=1)
        scores.append(q_rot @ k_rot.transpose(-1, -2))
    drift = relative_error(scores[1], scores[0])
    return Measurement(drift <= f.tol * 10, {"drift": drift})


CHECKPOINTS: tuple[Check[LayerFacts], ...] = (
    Check(1, "Q/K/V after projection and head reshape", (
        Invariant(heads_split_as_configured,
                  "q {q}, k {k}, v {v}; GQA Hq={heads} Hkv={kv_heads} ({group} query heads per kv head)",
                  "q {q}, k {k}, v {v} are not (B, Hq={heads}, S, D={head_dim}), (B, Hkv={kv_heads}, S, D) twice "
                  "with Hq a multiple of Hkv"),
        Invariant(qk_are_plain_projections, "q/k == projection split into heads (max rel {error:.1e})",
                  "q/k differ from the plain projection of the layer input by {error:.2e} (a PE applied before "
                  "the head split?)"))),
    Check(2, "3-D RoPE data (cos/sin, point-token spans)", (
        Invariant(table_covers_q, "cos/sin {table}", "table {table} does not cover q {q} (shape, dtype or device)"),
        Invariant(table_is_rotation, "a rotation table (|(cos, sin)| within {error:.1e})",
                  "table is not a rotation: |(cos, sin)| off by {error:.2e}"),
        Invariant(table_halves_equal, "both halves equal",
                  "the two halves of the table differ by {error:.2e} ({kind} token {token}): dims i and i+D/2 get "
                  "different angles (GPT-J-duplicated frequencies applied with rotate_half?), not a rotation"),
        Invariant(one_point_span_per_sequence, "point spans {spans}",
                  "point spans {spans}: expected one per sequence"),
        Invariant(point_tokens_match_encoder, "{total} point tokens == {total} coordinates",
                  "{tokens} point tokens but the encoder emitted {coordinates} coordinates"))),
    Check(3, "point-token extraction", (
        Invariant(point_mask_between_markers, "in place (no extraction in the one-pass design): span == tokens "
                  "between <|point_start|> and <|point_end|>",
                  "point mask of sequence(s) {mismatched} is not exactly the tokens between one <|point_start|> "
                  "and one <|point_end|> (markers per sequence: {markers})"),
        Invariant(point_coords_are_distinct_grid_cells, "q point rows {point_q}; {tokens} distinct integer grid cells",
                  "{tokens} point tokens on {distinct} distinct grid cells, integer: {integer} (raw-point "
                  "coordinates instead of encoder tokens?)"))),
    Check(4, "after 3-D RoPE on point tokens", (
        Invariant(point_pairs_match_3d_reference, "{pairs} spatial pairs of {rows} sampled point rows == reference "
                  "3-D rotation of their coordinates (max rel {error:.1e})",
                  "point rows differ from the reference 3-D rotation by {error:.2e} (tolerance {tolerance:.0e})"),
        Invariant(point_rows_equal_stock_rope, "no 3-D RoPE: {rows} sampled point rows == stock 1-D rotation "
                  "(max rel {error:.1e})",
                  "point rows differ from the stock 1-D rotation by {error:.2e} (tolerance {tolerance:.0e})"),
        Invariant(point_pairs_keep_length, "pair lengths kept (max rel {error:.1e})",
                  "pair lengths of point rows change by {error:.2e}"))),
    Check(5, "full Q/K after 3-D RoPE", (
        Invariant(rotation_keeps_shape_and_dtype, "q {q}, k {k}", "rotation changed shape/dtype: q {q}, k {k}"),
        Invariant(rotation_preserves_norms, "every row keeps its norm (max rel {error:.1e})",
                  "norms change by up to {error:.2e} (q head {head}, {kind} token {token}): not a rotation"))),
    Check(6, "1-D RoPE data", (
        Invariant(position_ids_sequential, "position_ids {shape} = 0..{last} (no collisions)",
                  "position ids are not 0..{last} ({distinct} distinct per sequence)"),
        Invariant(text_table_rows_are_stock_rope, "{rows} text rows of cos/sin == stock 1-D ({source}, max rel "
                  "{error:.1e})", "text rows of the table differ from the stock 1-D table ({source}) by {error:.2e}"))),
    Check(7, "point tokens kept", (
        Invariant(point_table_rows_equal_reference, "nothing saved/restored: the point rows of the one table are "
                  "their own reference table (max rel {error:.1e})",
                  "point rows of the table differ from the reference table of their positions by {error:.2e}"),
        Invariant(point_table_rows_leave_1d_table, "{differ}/{points} point rows differ from the 1-D table",
                  "{same}/{points} point rows carry the 1-D table (3-D overwritten?)"))),
    Check(8, "after 1-D RoPE on all tokens", (
        Invariant(text_rows_equal_stock_rope, "{rows} text rows == stock 1-D rotation (max rel {error:.1e})",
                  "text rows differ from the stock 1-D rotation by {error:.2e}"),
        Invariant(one_d_pairs_of_points_equal_stock_rope, "1-D pairs ({pairs}) of point rows == stock (max rel "
                  "{error:.1e})", "1-D pairs of point rows differ from the stock rotation by {error:.2e}"))),
    Check(9, "final Q/K (points 3-D, text 1-D)", (
        Invariant(final_qk_match_reference, "{points} point + {texts} text rows == reference (max rel {error:.1e})",
                  "final q/k differ from the independent reference by {error:.2e} ({points} point + {texts} text "
                  "rows compared)"),
        Invariant(kv_cache_holds_rotated_keys, "KV cache holds these keys (max rel {error:.1e})",
                  "the KV cache holds keys that differ from the rotated keys by {error:.2e}"),
        Invariant(qk_invariant_to_common_translation, "q.k of point pairs unchanged by a common translation (max "
                  "rel {drift:.1e})", "q.k of point tokens changes by {drift:.2e} under a common translation of "
                  "the coordinates: not a function of relative position"))),
)
CHECKPOINT_NAMES = {check.number: check.name for check in CHECKPOINTS}


def check_layer(call: AttentionCall, context: CheckContext) -> list[CheckResult]:
    """The nine checkpoint verdicts of one prefill attention call (`call.is_prefill` must hold)."""
    facts = LayerFacts(call, context)
    return [check.judge(facts, context.mode, call.layer) for check in CHECKPOINTS]
