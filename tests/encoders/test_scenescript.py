"""SceneScript encoder: checkpoint names/shapes, equality with a dense-volume re-implementation of the whole
network, and the token-cell, permutation and batching properties."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spatialvlm_cli.encoders import build_point_encoder, output_grid_coords
from spatialvlm_cli.encoders.fourier import fourier_encode
from spatialvlm_cli.encoders.voxels import torchsparse_offsets
from spatialvlm_cli.errors import InputError


def expected_scenescript_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of SpatialLM 1.0's point_backbone (reference notes, section 2.4)."""
    layers, cin, d = config["conv_layers"], config["input_channels"], config["embed_channels"]
    p = "point_backbone.sparse_resnet."

    def conv_norm(prefix: str, c_in: int, c_out: int, volume: int) -> dict[str, tuple[int, ...]]:
        return {prefix + "0.kernel": (volume, c_in, c_out), prefix + "1.weight": (c_out,), prefix + "1.bias": (c_out,)}

    def res_block(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
        return conv_norm(prefix + "block0.", c, c, 27) | conv_norm(prefix + "block1.", c, c, 27)

    shapes = conv_norm(p + "stem.0.", cin, layers[0], 343) | res_block(p + "stem.1.", layers[0])
    for i in range(len(layers) - 1):
        block = f"{p}blocks.{i}."
        shapes |= conv_norm(block + "0.", layers[i], layers[i + 1], 8)
        shapes |= res_block(block + "1.", layers[i + 1]) | res_block(block + "2.", layers[i + 1])
    last = layers[-1]
    shapes |= {
        p + "bottleneck.0.weight": (2 * last, last),
        p + "bottleneck.0.bias": (2 * last,),
        p + "bottleneck.1.weight": (2 * last,),
        p + "bottleneck.1.bias": (2 * last,),
        p + "bottleneck.3.weight": (d, 2 * last),
        p + "bottleneck.3.bias": (d,),
        "point_backbone.input_proj.weight": (d, d + 63),
        "point_backbone.input_proj.bias": (d,),
        "point_backbone.extra_embedding": (d,),
    }
    return shapes


def build(config: dict, seed: int, make_seeded_weights) -> nn.Module:
    encoder = build_point_encoder("scenescript", config).eval()
    encoder.load_state_dict(make_seeded_weights(encoder.state_dict(), seed))
    return encoder


def run(encoder: nn.Module, grid: torch.Tensor, feat: torch.Tensor, offset: torch.Tensor | None = None):
    with torch.no_grad():
        return encoder(grid, feat, torch.tensor([len(grid)]) if offset is None else offset)


def dense_weight(kernel: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """torchsparse (k**3, C_in, C_out) kernel -> conv3d weight (C_out, C_in, k, k, k)."""
    shift = kernel_size // 2 if kernel_size % 2 else 0
    weight = kernel.new_zeros(kernel.shape[2], kernel.shape[1], kernel_size, kernel_size, kernel_size)
    for index, (dx, dy, dz) in enumerate(torchsparse_offsets(kernel_size)):
        weight[:, :, dx + shift, dy + shift, dz + shift] = kernel[index].t()
    return weight


def dense_reference(encoder: nn.Module, grid: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The SceneScript network on a dense volume with an occupancy mask: submanifold conv = padded conv3d
    kept on occupied cells; stride-2 conv = conv3d stride 2 on the volume cropped to [0, max] per axis (the
    valid range torchsparse infers); GroupNorm over occupied cells. Returns (tokens, cells) lexicographic."""
    extent = (grid.max(0).values + 1).tolist()
    volume = feat.new_zeros(1, feat.shape[1], *extent)
    volume[0, :, grid[:, 0], grid[:, 1], grid[:, 2]] = feat.t()
    mask = torch.zeros(extent, dtype=torch.bool)
    mask[grid[:, 0], grid[:, 1], grid[:, 2]] = True

    def norm_relu(norm, x, occupied):
        values = x[0][:, occupied][None]  # (1, C, V)
        x = torch.zeros_like(x)
        x[0][:, occupied] = F.group_norm(values, norm.num_groups, norm.weight, norm.bias, norm.eps)[0]
        return torch.relu(x)

    def subm(layer, x, occupied):
        conv, norm = layer
        k = conv.kernel_size
        return norm_relu(norm, F.conv3d(x, dense_weight(conv.kernel, k), padding=k // 2) * occupied, occupied)

    def res_block(block, x, occupied):
        return x + subm(block.block1, subm(block.block0, x, occupied), occupied)

    resnet = encoder.sparse_resnet
    volume = res_block(resnet.stem[1], subm(resnet.stem[0], volume, mask), mask)
    for down, res0, res1 in resnet.blocks:
        top = mask.nonzero().amax(dim=0) + 1  # crop to [0, max] on every axis
        volume, mask = volume[..., : top[0], : top[1], : top[2]], mask[: top[0], : top[1], : top[2]]
        conv, norm = down
        mask = F.max_pool3d(mask[None, None].float(), 2, stride=2)[0, 0] > 0
        volume = norm_relu(norm, F.conv3d(volume, dense_weight(conv.kernel, 2), stride=2) * mask, mask)
        volume = res_block(res1, res_block(res0, volume, mask), mask)
    cells = mask.nonzero()  # lexicographic
    tokens = resnet.bottleneck(volume[0][:, mask].t())
    position = cells.float() / (encoder.config.reduced_grid_size - 1)
    tokens = encoder.input_proj(torch.cat([tokens, fourier_encode(position)], dim=1)) + encoder.extra_embedding
    return tokens, cells


def test_state_dict_names_and_shapes_match_spatiallm():
    config = dict(input_channels=6, embed_channels=512, conv_layers=[32, 64, 128, 256], num_bins=640)
    with torch.device("meta"):
        model = nn.Module()
        model.point_backbone = build_point_encoder("scenescript", config)
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert ours == expected_scenescript_shapes(config)
    assert model.point_backbone.out_channels == 512


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_dense_volume_reference(tiny_scenescript_config, make_random_cloud, make_seeded_weights, seed):
    grid, feat = make_random_cloud(260, 13, seed)  # extent 13: odd and even maxima across downsamplings
    encoder = build(tiny_scenescript_config, seed, make_seeded_weights)
    out = run(encoder, grid, feat)
    tokens, cells = dense_reference(encoder, grid, feat)
    assert torch.equal(out.grid_coord, cells)
    torch.testing.assert_close(out.features, tokens, rtol=1e-4, atol=1e-4)


def test_valid_range_drops_the_even_last_row(tiny_scenescript_config, make_random_cloud):
    grid, _ = make_random_cloud(300, 12, seed=3)
    grid = torch.cat([grid, torch.tensor([[12, 0, 0]])])  # x max 12 (even): its row has no full 2-window
    offset = torch.tensor([len(grid)])
    valid, _ = output_grid_coords("scenescript", tiny_scenescript_config, grid, offset)
    full, _ = output_grid_coords("scenescript", tiny_scenescript_config | {"downsample_range": "full"}, grid, offset)
    assert torch.equal(full, torch.unique(grid // 4, dim=0))
    assert int(valid[:, 0].max()) == 2 and int(full[:, 0].max()) == 3


def test_output_grid_coords_equals_forward(tiny_scenescript_config, make_surface_cloud, make_seeded_weights):
    grid, feat = make_surface_cloud(16, seed=0)
    out = run(build(tiny_scenescript_config, 0, make_seeded_weights), grid, feat)
    coords, offset = output_grid_coords("scenescript", tiny_scenescript_config, grid, torch.tensor([len(grid)]))
    assert torch.equal(coords, out.grid_coord) and torch.equal(offset, out.offset)
    assert out.features.shape == (len(coords), 32)


def test_input_permutation_does_not_change_tokens(tiny_scenescript_config, make_surface_cloud, make_seeded_weights):
    grid, feat = make_surface_cloud(14, seed=1)
    encoder = build(tiny_scenescript_config, 1, make_seeded_weights)
    out = run(encoder, grid, feat)
    perm = torch.randperm(len(grid), generator=torch.Generator().manual_seed(0))
    shuffled = run(encoder, grid[perm], feat[perm])
    assert torch.equal(out.grid_coord, shuffled.grid_coord)  # lexicographic whatever the input order
    torch.testing.assert_close(out.features, shuffled.features, rtol=1e-4, atol=1e-4)


def test_batch_of_two_equals_separate_runs(tiny_scenescript_config, make_surface_cloud, make_seeded_weights):
    a, a_feat = make_surface_cloud(16, seed=2)
    b, b_feat = make_surface_cloud(9, seed=3)
    encoder = build(tiny_scenescript_config, 2, make_seeded_weights)
    batched = run(encoder, torch.cat([a, b]), torch.cat([a_feat, b_feat]), torch.tensor([len(a), len(a) + len(b)]))
    alone = [run(encoder, a, a_feat), run(encoder, b, b_feat)]
    torch.testing.assert_close(batched.features, torch.cat([x.features for x in alone]), rtol=1e-4, atol=1e-4)
    assert torch.equal(batched.grid_coord, torch.cat([x.grid_coord for x in alone]))
    assert batched.offset.tolist() == [len(alone[0].features), len(alone[0].features) + len(alone[1].features)]


def test_cloud_too_small_for_the_down_convolutions(tiny_scenescript_config):
    grid = torch.tensor([[2, 3, 3]])  # one voxel at an even x maximum: no 2-window fits along x
    with pytest.raises(InputError, match="too small for SceneScript"):
        output_grid_coords("scenescript", tiny_scenescript_config, grid, torch.tensor([1]))
    encoder = build_point_encoder("scenescript", tiny_scenescript_config)
    with pytest.raises(InputError, match="too small for SceneScript"):
        encoder(grid, torch.zeros(1, 6), torch.tensor([1]))
    full = build_point_encoder("scenescript", tiny_scenescript_config | {"downsample_range": "full"})
    assert full(grid, torch.zeros(1, 6), torch.tensor([1])).grid_coord.tolist() == [[0, 0, 0]]


def test_fourier_encoding_layout():
    position = torch.tensor([[0.5, 0.25, 1.0]])
    code = fourier_encode(position)
    assert code.shape == (1, 63)
    torch.testing.assert_close(code[0, :3], position[0])
    first_band = torch.pi * position[0]
    torch.testing.assert_close(code[0, 3:6], torch.sin(first_band))
    torch.testing.assert_close(code[0, 6:9], torch.cos(first_band))
    torch.testing.assert_close(code[0, -3:], torch.cos(30 * torch.pi * position[0]), atol=1e-5, rtol=1e-5)
