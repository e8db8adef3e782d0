"""Rotation properties of the tables: norms, relative position (translation invariance, GQA included), agreement
with the naive reference loops, stock rows for text. Negative controls show each check catches the fork's defects."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from spatialvlm_cli.pe import LayerwiseTables, apply_rotary, build_position_encoding, normalize_coords
from spatialvlm_cli.pe.apply import rotate_half
from spatialvlm_cli.pe.reference import reference_normalize, reference_rotary_angles, reference_rotate

CASES = ["qwen2-hd16", "llama-hd24"]
RULES = ["3D_only", "3D_with_1D"]
# (variant, options): every rotary configuration whose q.k must be relative
RELATIVE = [("3D_RoPE", {}), ("3D_RoPE", {"layout": "chunked", "coord_unit": "unit"}),
            ("MixedRoPE3D", {}), ("MixedRoPE3D", {"init": "random"}), ("MixedRoPE3D", {"init": "seed"}),
            ("MixedRoPE3D", {"init": "random", "param_layout": "seed-compatible"})]
ALL_ROTARY = [*RELATIVE, ("MixedRoPE3D", {"init": "seed", "param_layout": "seed-compatible"})]


def layer_tables(pe, model, position_ids: Tensor, point_mask: Tensor, coords: Tensor) -> list[tuple]:
    """(cos, sin) per layer for coords already in rotation units."""
    stock = model.model.rotary_emb
    cos, sin = stock(torch.zeros(*position_ids.shape, 1), position_ids)
    tables = pe.tables_from_units(cos, sin, point_mask, coords)
    if isinstance(tables, LayerwiseTables):
        return [tables.for_layer(index) for index in range(pe.lm_shape.num_layers)]
    return [tables] * pe.lm_shape.num_layers


def random_qk(pe, batch: int, length: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = pe.lm_shape
    return (torch.randn(batch, shape.num_heads, length, shape.head_dim, generator=generator),
            torch.randn(batch, shape.num_kv_heads, length, shape.head_dim, generator=generator))


def attention_logits(q: Tensor, k: Tensor) -> Tensor:
    """(B, Hq, S, D), (B, Hkv, S, D) -> (B, Hq, S, S) q.k with the repeat_kv grouping."""
    return q @ k.repeat_interleave(q.shape[1] // k.shape[1], dim=1).transpose(-1, -2)


def all_points(length: int, seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    position_ids = torch.arange(length)[None] + 4
    coords = torch.rand(1, length, 3, generator=generator) * 20.0
    return position_ids, torch.ones(1, length, dtype=torch.bool), coords


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), ALL_ROTARY)
def test_rotation_preserves_norms(lm, case: str, rule: str, name: str, options: dict) -> None:
    model = lm(case)
    pe = build_position_encoding(name, rule, model.config, options)
    position_ids, point_mask, coords = all_points(7)
    point_mask[0, :2] = False  # text rows too
    q, k = random_qk(pe, 1, 7)
    for cos, sin in layer_tables(pe, model, position_ids, point_mask, coords):
        q_rot, k_rot = apply_rotary(q, k, cos, sin)
        torch.testing.assert_close(q_rot.norm(dim=-1), q.norm(dim=-1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(k_rot.norm(dim=-1), k.norm(dim=-1), atol=1e-5, rtol=1e-5)


def test_norm_check_catches_the_seed_gptj_tables() -> None:
    # seed 001 duplicated angles [a0, a0, a1, a1, ...] but applied them with rotate_half: not a rotation
    angles = torch.rand(5, 8) * 6.0
    seed_table = angles.repeat_interleave(2, dim=-1)[None]  # (1, 5, 16)
    q = torch.randn(1, 2, 5, 16)
    rotated = q * seed_table.cos()[:, None] + rotate_half(q) * seed_table.sin()[:, None]
    assert (rotated.norm(dim=-1) - q.norm(dim=-1)).abs().max() > 1e-2


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), RELATIVE)
def test_point_qk_depends_only_on_relative_position(lm, case: str, rule: str, name: str, options: dict) -> None:
    model = lm(case)
    pe = build_position_encoding(name, rule, model.config, options)
    position_ids, point_mask, coords = all_points(6)
    shift = torch.tensor([3.5, -2.25, 7.0])
    q, k = random_qk(pe, 1, 6)
    before = layer_tables(pe, model, position_ids, point_mask, coords)
    after = layer_tables(pe, model, position_ids + 9, point_mask, coords + shift)
    for (cos_a, sin_a), (cos_b, sin_b) in zip(before, after, strict=True):
        logits_a = attention_logits(*apply_rotary(q, k, cos_a, sin_a))
        logits_b = attention_logits(*apply_rotary(q, k, cos_b, sin_b))
        torch.testing.assert_close(logits_b, logits_a, atol=2e-4, rtol=1e-4)
        # and the coordinates do matter: a non-uniform move changes the logits
        moved = coords.clone()
        moved[0, 0] += torch.tensor([1.0, 2.0, 0.5])
        cos_c, sin_c = layer_tables(pe, model, position_ids, point_mask, moved)[0]
        assert (attention_logits(*apply_rotary(q, k, cos_c, sin_c)) - logits_a).abs().max() > 1e-3


def test_seed_compatible_separate_q_parameters_break_relative_position(lm) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding("MixedRoPE3D", "3D_with_1D", model.config,
                                 {"init": "seed", "param_layout": "seed-compatible"})
    position_ids, point_mask, coords = all_points(6)
    q, k = random_qk(pe, 1, 6)
    cos_a, sin_a = layer_tables(pe, model, position_ids, point_mask, coords)[0]
    cos_b, sin_b = layer_tables(pe, model, position_ids, point_mask, coords + torch.tensor([3.5, -2.25, 7.0]))[0]
    change = attention_logits(*apply_rotary(q, k, cos_b, sin_b)) - attention_logits(*apply_rotary(q, k, cos_a, sin_a))
    assert change.abs().max() > 1e-2


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), ALL_ROTARY)
def test_vectorised_tables_match_the_naive_reference(lm, case: str, rule: str, name: str, options: dict) -> None:
    model = lm(case)
    pe = build_position_encoding(name, rule, model.config, options)
    position_ids = torch.tensor([[0, 0, 0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]])
    point_mask = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    grid = torch.randint(0, 15, (2, 8, 3), generator=torch.Generator().manual_seed(3)).float()
    coords = normalize_coords(grid, point_mask, pe.options.coord_unit)
    for b in range(2):
        expected = reference_normalize(grid[b].tolist(), point_mask[b].tolist(), pe.options.coord_unit)
        torch.testing.assert_close(coords[b], torch.tensor(expected))
    q, k = random_qk(pe, 2, 8, seed=5)
    for layer, (cos, sin) in enumerate(layer_tables(pe, model, position_ids, point_mask, coords)):
        q_angles, k_angles = reference_rotary_angles(pe, 10000.0, position_ids, point_mask, coords, layer)
        q_rot, k_rot = apply_rotary(q, k, cos, sin)
        torch.testing.assert_close(q_rot, reference_rotate(q, q_angles), atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(k_rot, reference_rotate(k, k_angles), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "options"), ALL_ROTARY)
def test_text_rows_and_1d_pairs_keep_the_stock_table(lm, name: str, options: dict) -> None:
    model = lm("llama-hd24")
    pe = build_position_encoding(name, "3D_with_1D", model.config, options)
    position_ids, point_mask, coords = all_points(6)
    point_mask[0, [0, 5]] = False
    stock_cos, stock_sin = model.model.rotary_emb(torch.zeros(1, 6, 1), position_ids)
    one_d = torch.tensor([role == "t" for role in pe.allocation.roles])  # (P,)
    for cos, sin in layer_tables(pe, model, position_ids, point_mask, coords):
        for table, stock in ((cos, stock_cos), (sin, stock_sin)):
            table = per_pair(table).expand(-1, pe.lm_shape.num_kv_heads, -1, -1)
            stock = per_pair(stock).expand_as(table)
            assert torch.equal(table[:, :, ~point_mask[0]], stock[:, :, ~point_mask[0]])  # text: untouched
            assert torch.equal(table[..., one_d], stock[..., one_d])  # 1-D pairs of points: stock too
            assert not torch.equal(table[:, :, point_mask[0]], stock[:, :, point_mask[0]])


def per_pair(table) -> Tensor:
    """A table as (B, heads, S, P): per-head QKTable tables as they are, a shared (B, S, D) table as (B, 1, S, P)
    after checking its two halves agree (otherwise it would not be a rotation)."""
    if hasattr(table, "k"):
        return table.k
    half = table.shape[-1] // 2
    assert torch.equal(table[..., :half], table[..., half:])
    return table[:, None, :, :half]


def test_grid_units_give_angular_range_where_the_seeds_unit_cube_did_not(lm) -> None:
    model = lm("qwen2-hd16")
    point_mask = torch.ones(1, 2, dtype=torch.bool)
    grid = torch.tensor([[[0.0, 0.0, 0.0], [40.0, 25.0, 10.0]]])  # a 40-cell room
    largest = {}
    for label, options in {"seed": {"theta_3d": 10000.0, "coord_unit": "unit"}, "ours": {}}.items():
        pe = build_position_encoding("3D_RoPE", "3D_only", model.config, options)
        axis, frequency, _ = pe.pair_tables(grid.device)  # radians per unit of each pair's axis
        angles = normalize_coords(grid, point_mask, pe.options.coord_unit).index_select(-1, axis) * frequency
        largest[label] = float(angles.abs().max())
    assert largest["seed"] <= 1.0 + 1e-6
    assert largest["ours"] == pytest.approx(40.0)  # 1 rad per grid cell on the fastest x pair
    assert largest["ours"] > 2 * math.pi  # neighbouring cells differ by 1 rad, the room wraps several times
