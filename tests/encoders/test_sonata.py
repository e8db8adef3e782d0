"""Sonata encoder: checkpoint names/shapes, a golden output of upstream SpatialLM, and the properties the rest
of the project relies on (token cells, permutation invariance, batching, determinism)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from spatialvlm_cli.encoders import build_point_encoder, output_grid_coords
from spatialvlm_cli.encoders.attention import SerializedAttention, window_groups
from spatialvlm_cli.encoders.batch import VoxelBatch
from spatialvlm_cli.encoders.sonata import GridPooling

GOLDEN = Path(__file__).parent / "golden" / "sonata_tiny_upstream.pt"


def expected_sonata_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of SpatialLM 1.1's point_backbone (reference notes, section 2.5)."""
    channels, depths = config["enc_channels"], config["enc_depths"]
    p = "point_backbone."
    c0 = channels[0]
    shapes = {
        p + "embedding.stem.linear.weight": (c0, config["in_channels"]),
        p + "embedding.stem.linear.bias": (c0,),
        p + "embedding.stem.norm.weight": (c0,),
        p + "embedding.stem.norm.bias": (c0,),
    }
    for s, (c, depth) in enumerate(zip(channels, depths, strict=True)):
        stage = f"{p}enc.enc{s}."
        if s > 0:
            shapes |= {
                stage + "down.proj.weight": (c, channels[s - 1]),
                stage + "down.proj.bias": (c,),
                stage + "down.norm.0.weight": (c,),
                stage + "down.norm.0.bias": (c,),
            }
        hidden = int(c * config["mlp_ratio"])
        for i in range(depth):
            block = f"{stage}block{i}."
            shapes |= {
                block + "cpe.0.weight": (c, 3, 3, 3, c),
                block + "cpe.0.bias": (c,),
                block + "cpe.1.weight": (c, c),
                block + "cpe.1.bias": (c,),
                block + "cpe.2.weight": (c,),
                block + "cpe.2.bias": (c,),
                block + "norm1.0.weight": (c,),
                block + "norm1.0.bias": (c,),
                block + "attn.qkv.weight": (3 * c, c),
                block + "attn.qkv.bias": (3 * c,),
                block + "attn.proj.weight": (c, c),
                block + "attn.proj.bias": (c,),
                block + "norm2.0.weight": (c,),
                block + "norm2.0.bias": (c,),
                block + "mlp.0.fc1.weight": (hidden, c),
                block + "mlp.0.fc1.bias": (hidden,),
                block + "mlp.0.fc2.weight": (c, hidden),
                block + "mlp.0.fc2.bias": (c,),
            }
    shapes[p + "input_proj.weight"] = (channels[-1], channels[-1] + 63)
    shapes[p + "input_proj.bias"] = (channels[-1],)
    return shapes


def build(config: dict, weights_seed: int | None = None, make_seeded_weights=None) -> nn.Module:
    encoder = build_point_encoder("sonata", config).eval()
    if weights_seed is not None:
        encoder.load_state_dict(make_seeded_weights(encoder.state_dict(), weights_seed))
    return encoder


def run(encoder: nn.Module, grid: torch.Tensor, feat: torch.Tensor, offset: torch.Tensor | None = None):
    with torch.no_grad():
        return encoder(grid, feat, torch.tensor([len(grid)]) if offset is None else offset)


def test_state_dict_names_and_shapes_match_spatiallm(full_sonata_config):
    with torch.device("meta"):
        model = nn.Module()
        model.point_backbone = build_point_encoder("sonata", full_sonata_config)
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    expected = expected_sonata_shapes(full_sonata_config)
    assert sorted(set(ours) ^ set(expected)) == []
    assert ours == expected
    assert sum(name.endswith("cpe.0.weight") for name in ours) == 24
    assert model.point_backbone.out_channels == 512
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())


def test_matches_upstream_spatiallm_golden(tiny_sonata_config, make_seeded_weights):
    """Golden made by SpatialLM e3a3777 ``Sonata(enable_flash=False, shuffle_orders=False)`` (GridPooling
    shuffling off too) on spconv 2.3.8 CPU single-threaded, bias added after the conv, torch_scatter's
    segment_csr replaced by torch.segment_reduce, weights from ``seeded_state_dict(..., seed=7)``: 2438
    voxels, so the 64-voxel windows of stage 0 include a padded tail window."""
    golden = torch.load(GOLDEN)
    encoder = build(tiny_sonata_config, 7, make_seeded_weights)
    out = run(encoder, golden["grid_coord"].long(), golden["feat"])
    assert out.features.shape == golden["features"].shape == (146, 32)
    torch.testing.assert_close(out.features, golden["features"], rtol=1e-4, atol=1e-4)


def test_output_grid_coords_equals_forward(tiny_sonata_config, make_surface_cloud):
    grid, feat = make_surface_cloud(40, seed=0)
    out = run(build(tiny_sonata_config), grid, feat)
    coords, offset = output_grid_coords("sonata", tiny_sonata_config, grid, torch.tensor([len(grid)]))
    assert torch.equal(coords, out.grid_coord) and torch.equal(offset, out.offset)
    expected = torch.unique(grid // 16, dim=0)  # four poolings of unique(c // 2), lexicographic
    assert torch.equal(coords, expected)
    assert out.features.shape == (len(expected), 32) and out.offset.tolist() == [len(expected)]


def test_input_permutation_does_not_change_tokens(tiny_sonata_config, make_surface_cloud, make_seeded_weights):
    grid, feat = make_surface_cloud(30, seed=1)
    encoder = build(tiny_sonata_config, 3, make_seeded_weights)
    out = run(encoder, grid, feat)
    perm = torch.randperm(len(grid), generator=torch.Generator().manual_seed(0))
    shuffled = run(encoder, grid[perm], feat[perm])

    def as_sorted_set(tokens):
        key = tokens.grid_coord[:, 0] * 10**6 + tokens.grid_coord[:, 1] * 10**3 + tokens.grid_coord[:, 2]
        order = torch.argsort(key)
        return tokens.grid_coord[order], tokens.features[order]

    coords_a, feat_a = as_sorted_set(out)
    coords_b, feat_b = as_sorted_set(shuffled)
    assert torch.equal(coords_a, coords_b)
    torch.testing.assert_close(feat_a, feat_b, rtol=1e-4, atol=1e-4)


def test_batch_of_two_equals_separate_runs(tiny_sonata_config, make_surface_cloud, make_seeded_weights):
    large, large_feat = make_surface_cloud(24, seed=2)  # > 64 voxels at stages 0-2: full and tail windows
    small, small_feat = make_surface_cloud(5, seed=3)  # < 64 voxels: one short window per stage
    encoder = build(tiny_sonata_config, 4, make_seeded_weights)
    batched = run(
        encoder,
        torch.cat([large, small]),
        torch.cat([large_feat, small_feat]),
        torch.tensor([len(large), len(large) + len(small)]),
    )
    alone = [run(encoder, large, large_feat), run(encoder, small, small_feat)]
    assert batched.offset.tolist() == [len(alone[0].features), len(alone[0].features) + len(alone[1].features)]
    torch.testing.assert_close(batched.features, torch.cat([a.features for a in alone]), rtol=1e-4, atol=1e-4)
    assert torch.equal(batched.grid_coord, torch.cat([a.grid_coord for a in alone]))


def test_deterministic_by_default_and_shuffle_is_selectable(tiny_sonata_config, make_surface_cloud):
    grid, feat = make_surface_cloud(20, seed=4)
    torch.manual_seed(0)
    encoder = build(tiny_sonata_config)
    first, second = run(encoder, grid, feat), run(encoder, grid, feat)
    assert torch.equal(first.features, second.features)

    shuffling = build(tiny_sonata_config | {"shuffle_orders": True})
    shuffling.load_state_dict(encoder.state_dict())
    outputs = []
    for seed in range(4):
        torch.manual_seed(seed)
        outputs.append(run(shuffling, grid, feat).features)
    assert any(not torch.allclose(o, first.features, atol=1e-5) for o in outputs)


def test_windows_pad_the_tail_with_the_previous_voxels():
    groups = window_groups(torch.tensor([10, 13]), patch_size=4)
    full, short = groups
    # cloud 0 (10 voxels): windows 0-3, 4-7 and the tail 6-9 that writes only 8, 9; cloud 1 (3): one window
    assert full.positions.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]
    assert full.writes.tolist() == [[True] * 4, [True] * 4, [False, False, True, True]]
    assert short.positions.tolist() == [[10, 11, 12]] and short.writes is None


def test_serialized_attention_equals_per_window_softmax():
    torch.manual_seed(0)
    attention = SerializedAttention(channels=8, num_heads=2)
    feat = torch.randn(10, 8)
    order = torch.randperm(10)
    out = attention(feat, order, window_groups(torch.tensor([10]), patch_size=4))
    qkv = attention.qkv(feat).view(10, 3, 2, 4)
    expected = torch.empty(10, 8)
    for window, writes in [(range(0, 4), range(0, 4)), (range(4, 8), range(4, 8)), (range(6, 10), range(8, 10))]:
        voxels = order[list(window)]
        q, k, v = qkv[voxels].unbind(1)  # (L, H, D)
        weights = torch.softmax(torch.einsum("lhd,mhd->hlm", q, k) / 2.0, dim=-1)
        attended = torch.einsum("hlm,mhd->lhd", weights, v).reshape(len(voxels), 8)
        keep = [list(window).index(w) for w in writes]
        expected[order[list(writes)]] = attended[keep]
    torch.testing.assert_close(out, attention.proj(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_voxels", [1, 2])
def test_tiny_clouds_encode(tiny_sonata_config, num_voxels):
    grid = torch.tensor([[100, 200, 30], [101, 200, 30]])[:num_voxels]
    feat = torch.zeros(num_voxels, 6)
    out = run(build(tiny_sonata_config), grid, feat)
    assert out.grid_coord.tolist() == [[6, 12, 1]] and out.features.shape == (1, 32)
    assert bool(torch.isfinite(out.features).all())


def test_grid_pooling_takes_the_channel_max_per_coarse_cell():
    pooling = GridPooling(2, 2, stride=2)
    with torch.no_grad():
        pooling.proj.weight.copy_(torch.eye(2))
        pooling.proj.bias.zero_()
    grid = torch.tensor([[3, 0, 0], [0, 0, 1], [2, 1, 1], [1, 1, 0]])
    feat = torch.tensor([[1.0, -5.0], [4.0, 0.0], [2.0, 7.0], [-1.0, 3.0]])
    voxels = VoxelBatch(grid, torch.zeros(4, dtype=torch.long), torch.tensor([4]))
    captured = {}
    pooling.norm.register_forward_hook(lambda module, args, output: captured.setdefault("pooled", args[0]))
    _, coarse = pooling(feat, voxels)
    assert coarse.grid_coord.tolist() == [[0, 0, 0], [1, 0, 0]] and coarse.offset.tolist() == [2]
    assert captured["pooled"].tolist() == [[4.0, 3.0], [2.0, 7.0]]
