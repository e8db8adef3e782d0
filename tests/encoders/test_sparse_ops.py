"""Sparse-tensor core against dense references: submanifold and strided convolutions equal ``conv3d`` on
small grids, pooling order and values, per-cloud GroupNorm, and spconv's CPU build when installed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spatialvlm_cli.encoders.conv import SpconvSubMConv3d, TorchsparseConv3d, sparse_conv
from spatialvlm_cli.encoders.norm import SampleGroupNorm
from spatialvlm_cli.encoders.voxels import (
    downsample,
    pack_keys,
    spconv_offsets,
    strided_kernel_map,
    submanifold_kernel_map,
    torchsparse_offsets,
    unpack_keys,
)

EXTENT = 9


def scatter_dense(grid: torch.Tensor, feat: torch.Tensor, extent: int) -> torch.Tensor:
    """(V, 3) cells and (V, C) features -> (1, C, E, E, E) dense volume with zeros elsewhere."""
    dense = feat.new_zeros(1, feat.shape[1], extent, extent, extent)
    dense[0, :, grid[:, 0], grid[:, 1], grid[:, 2]] = feat.t()
    return dense


def torchsparse_dense_weight(kernel: torch.Tensor, offsets: list[tuple[int, int, int]], shift: int) -> torch.Tensor:
    """torchsparse (k**3, C_in, C_out) kernel -> conv3d weight (C_out, C_in, k, k, k), offset d at d + shift."""
    k = round(kernel.shape[0] ** (1 / 3))
    dense = kernel.new_zeros(kernel.shape[2], kernel.shape[1], k, k, k)
    for index, (dx, dy, dz) in enumerate(offsets):
        dense[:, :, dx + shift, dy + shift, dz + shift] = kernel[index].t()
    return dense


def test_pack_unpack_roundtrip_and_lexicographic_order():
    grid = torch.tensor([[3, 0, 0], [0, 7, 1], [0, 7, 0], [65535, 2, 9]])
    batch = torch.tensor([1, 0, 0, 0])
    keys = pack_keys(batch, grid)
    b, g = unpack_keys(keys)
    assert torch.equal(b, batch) and torch.equal(g, grid)
    assert torch.argsort(keys).tolist() == [2, 1, 3, 0]  # (batch, x, y, z) lexicographic


@pytest.mark.parametrize("seed", [0, 1])
def test_spconv_submanifold_equals_dense_conv3d(seed, make_random_cloud):
    grid, _ = make_random_cloud(200, EXTENT, seed)
    feat = torch.randn(len(grid), 5)
    conv = SpconvSubMConv3d(5, 4, 3, bias=True)
    kernel_map = submanifold_kernel_map(torch.zeros(len(grid), dtype=torch.long), grid, spconv_offsets(3))
    out = conv(feat, kernel_map)
    dense = F.conv3d(scatter_dense(grid, feat, EXTENT), conv.weight.permute(0, 4, 1, 2, 3), conv.bias, padding=1)
    expected = dense[0, :, grid[:, 0], grid[:, 1], grid[:, 2]].t()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [3, 7])
def test_torchsparse_submanifold_equals_dense_conv3d(kernel_size, make_random_cloud):
    grid, _ = make_random_cloud(150, EXTENT, seed=kernel_size)
    feat = torch.randn(len(grid), 3)
    conv = TorchsparseConv3d(3, 4, kernel_size)
    offsets = torchsparse_offsets(kernel_size)
    r = kernel_size // 2
    assert offsets[:2] == [(-r, -r, -r), (-r + 1, -r, -r)]  # x varies fastest
    kernel_map = submanifold_kernel_map(torch.zeros(len(grid), dtype=torch.long), grid, offsets)
    out = conv(feat, kernel_map)
    weight = torchsparse_dense_weight(conv.kernel.detach(), offsets, kernel_size // 2)
    dense = F.conv3d(scatter_dense(grid, feat, EXTENT), weight, padding=kernel_size // 2)
    expected = dense[0, :, grid[:, 0], grid[:, 1], grid[:, 2]].t()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("valid_range", [False, True])
def test_strided_conv_equals_dense_strided_conv3d(valid_range, make_random_cloud):
    grid, _ = make_random_cloud(120, EXTENT, seed=5)  # EXTENT 9 is odd: the last row matters for valid_range
    grid = torch.cat([grid, torch.tensor([[8, 8, 8]])]).unique(dim=0)
    feat = torch.randn(len(grid), 3)
    batch = torch.zeros(len(grid), dtype=torch.long)
    conv = TorchsparseConv3d(3, 5, kernel_size=2, stride=2)
    offsets = torchsparse_offsets(2)
    assert offsets[:3] == [(0, 0, 0), (0, 0, 1), (0, 1, 0)]  # z varies fastest
    down = downsample(batch, grid, 2, 1, valid_range=valid_range)
    out = conv(feat, strided_kernel_map(grid, down, 2, offsets))
    weight = torchsparse_dense_weight(conv.kernel.detach(), offsets, 0)
    # valid range == dense conv without padding on the tight grid (max + 1 = 9 cells: outputs 0..3)
    extent = EXTENT if valid_range else EXTENT + 1
    dense = F.conv3d(scatter_dense(grid, feat, extent), weight, stride=2)
    coarse = down.grid_coord
    expected = dense[0, :, coarse[:, 0], coarse[:, 1], coarse[:, 2]].t()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    expected_cells = torch.unique(grid // 2, dim=0)
    if valid_range:
        expected_cells = expected_cells[(expected_cells <= 3).all(dim=1)]
        assert bool((down.inverse[(grid == 8).any(dim=1)] == -1).all())
    assert torch.equal(coarse, expected_cells)


def test_downsample_is_lexicographic_unique_floor_half_per_cloud(make_random_cloud):
    grid_a, _ = make_random_cloud(80, 12, seed=2)
    grid_b, _ = make_random_cloud(50, 12, seed=3)
    grid = torch.cat([grid_a, grid_b])
    batch = torch.cat([torch.zeros(80, dtype=torch.long), torch.ones(50, dtype=torch.long)])
    down = downsample(batch, grid, 2, 2)
    expected_a = torch.unique(grid_a // 2, dim=0)  # torch.unique(dim=0) sorts lexicographically
    expected_b = torch.unique(grid_b // 2, dim=0)
    assert torch.equal(down.grid_coord, torch.cat([expected_a, expected_b]))
    assert torch.equal(down.batch, torch.cat([torch.zeros(len(expected_a)), torch.ones(len(expected_b))]).long())
    assert torch.equal(down.grid_coord[down.inverse], grid // 2)
    assert torch.equal(down.batch[down.inverse], batch)


def test_kernel_map_pairs_are_exact_neighbours_and_mirror(make_surface_cloud):
    grid, _ = make_surface_cloud(6, seed=0)
    batch = torch.zeros(len(grid), dtype=torch.long)
    offsets = spconv_offsets(3)
    kernel_map = submanifold_kernel_map(batch, grid, offsets)
    total = 0
    for k, pairs in enumerate(kernel_map.pairs):
        if offsets[k] == (0, 0, 0):
            assert pairs is None
            continue
        out_idx, in_idx = pairs
        assert torch.equal(grid[in_idx] - grid[out_idx], torch.tensor(offsets[k]).expand(len(out_idx), 3))
        total += len(out_idx)
    # brute force: every ordered pair of distinct voxels within Chebyshev distance 1
    diff = (grid[:, None, :] - grid[None, :, :]).abs().amax(dim=2)
    assert total == int((diff == 1).sum())


def test_voxels_of_different_clouds_are_not_neighbours():
    grid = torch.tensor([[1, 1, 1], [1, 1, 2], [1, 1, 1], [1, 1, 2]])
    batch = torch.tensor([0, 0, 1, 1])
    kernel_map = submanifold_kernel_map(batch, grid, spconv_offsets(3))
    for pairs in kernel_map.pairs:
        if pairs is not None:
            assert torch.equal(batch[pairs[0]], batch[pairs[1]])


def test_identity_only_map_is_a_plain_matmul():
    feat = torch.randn(4, 3)
    weight = torch.randn(27, 3, 2)
    grid = torch.tensor([[0, 0, 0], [5, 5, 5], [0, 9, 0], [9, 0, 9]])  # isolated voxels
    kernel_map = submanifold_kernel_map(torch.zeros(4, dtype=torch.long), grid, spconv_offsets(3))
    torch.testing.assert_close(sparse_conv(feat, kernel_map, weight), feat @ weight[13])


def test_sample_group_norm_equals_torch_group_norm_per_cloud():
    norm = SampleGroupNorm(4, 8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    feat = torch.randn(30, 8) * 3 + 1
    batch = torch.cat([torch.zeros(12, dtype=torch.long), torch.ones(18, dtype=torch.long)])
    out = norm(feat, batch, 2)
    reference = torch.nn.GroupNorm(4, 8)
    reference.load_state_dict(norm.state_dict())
    for b in range(2):
        rows = feat[batch == b].t()[None]  # (1, C, V_b), as torchsparse's spnn.GroupNorm
        expected = reference(rows)[0].t()
        torch.testing.assert_close(out[batch == b], expected, rtol=1e-5, atol=1e-5)


def test_matches_spconv_cpu_build(make_surface_cloud):
    spconv = pytest.importorskip("spconv.pytorch")
    grid, _ = make_surface_cloud(14, seed=1)
    feat = torch.randn(len(grid), 16)
    conv = SpconvSubMConv3d(16, 12, 3, bias=True)
    kernel_map = submanifold_kernel_map(torch.zeros(len(grid), dtype=torch.long), grid, spconv_offsets(3))
    ours = conv(feat, kernel_map)
    reference = spconv.SubMConv3d(16, 12, 3, bias=False)
    with torch.no_grad():
        reference.weight.copy_(conv.weight)
    indices = torch.cat([torch.zeros(len(grid), 1, dtype=torch.int32), grid.int()], dim=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # spconv's CPU SubMConv3d races with more threads (anchors.md)
    try:
        sparse = spconv.SparseConvTensor(feat, indices, (grid.max(0).values + 1).tolist(), 1)
        out = reference(sparse)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(out.indices.long(), indices.long())  # spconv keeps subm voxels in input order
    torch.testing.assert_close(ours, out.features + conv.bias, rtol=1e-5, atol=1e-5)


def test_chunked_conv_matches_unchunked_and_supports_autograd(make_surface_cloud, monkeypatch):
    grid, _ = make_surface_cloud(8, seed=2)
    feat = torch.randn(len(grid), 4)
    kernel_map = submanifold_kernel_map(torch.zeros(len(grid), dtype=torch.long), grid, spconv_offsets(3))
    weight = torch.randn(27, 4, 3)
    with torch.no_grad():
        whole = sparse_conv(feat, kernel_map, weight)
        monkeypatch.setattr("spatialvlm_cli.encoders.conv.CHUNK_ELEMENTS", 4 * 50)  # ~50 pairs per chunk
        chunked = sparse_conv(feat, kernel_map, weight)
    assert len(kernel_map.chunks(50)) > 5
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
    weight.requires_grad_(True)
    out = sparse_conv(feat, kernel_map, weight)
    torch.testing.assert_close(out.detach(), whole, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    reference = weight.detach().clone().requires_grad_(True)
    dense = F.conv3d(scatter_dense(grid, feat, 8), reference.view(3, 3, 3, 4, 3).permute(4, 3, 0, 1, 2), padding=1)[
        0, :, grid[:, 0], grid[:, 1], grid[:, 2]
    ]
    dense.square().sum().backward()
    torch.testing.assert_close(weight.grad, reference.grad, rtol=1e-4, atol=1e-4)
