"""Bad inputs and bad configs fail with one clear InputError / ConfigError, never deep inside torch."""

from __future__ import annotations

import logging

import pytest
import torch

from spatialvlm_cli.encoders import build_point_encoder, output_grid_coords
from spatialvlm_cli.errors import ConfigError, InputError


@pytest.fixture(params=["sonata", "scenescript"])
def encoder_and_config(request, tiny_sonata_config, tiny_scenescript_config):
    config = tiny_sonata_config if request.param == "sonata" else tiny_scenescript_config
    return request.param, build_point_encoder(request.param, config), config


def good_cloud() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    axis = torch.arange(6)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3) + 1
    return grid, torch.zeros(len(grid), 6), torch.tensor([len(grid)])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g, f, o: (g[:0], f[:0], torch.tensor([0])), "empty"),
        (lambda g, f, o: (g - 2, f, o), r"must lie in the grid \[0, \d+\]"),
        (lambda g, f, o: (g + 2000, f, o), r"must lie in the grid \[0, \d+\]"),
        (lambda g, f, o: (g, f.index_fill(0, torch.tensor([3]), float("nan")), o), "NaN or infinite"),
        (lambda g, f, o: (g, f.index_fill(0, torch.tensor([0]), float("inf")), o), "NaN or infinite"),
        (lambda g, f, o: (torch.cat([g, g[:1]]), torch.cat([f, f[:1]]), o + 1), "same voxel twice"),
        (lambda g, f, o: (g, f, o - 1), r"offset\[-1\]"),
        (lambda g, f, o: (g, f, torch.tensor([0, len(g)])), "cloud 0 of the batch is empty"),
        (lambda g, f, o: (g.float(), f, o), "integer grid cells"),
        (lambda g, f, o: (g[:, :2], f, o), r"shape \(N, 3\)"),
        (lambda g, f, o: (g, f[:, :5], o), r"feat must have shape"),
        (lambda g, f, o: (g, f.long(), o), "floating-point"),
    ],
)
def test_bad_input_raises_input_error(encoder_and_config, mutate, message):
    _, encoder, _ = encoder_and_config
    grid, feat, offset = mutate(*good_cloud())
    with pytest.raises(InputError, match=message):
        encoder(grid, feat, offset)


def test_good_cloud_encodes(encoder_and_config):
    _, encoder, _ = encoder_and_config
    out = encoder(*good_cloud())
    assert out.features.shape == (len(out.grid_coord), encoder.out_channels)
    assert out.grid_coord.dtype == torch.int64 and out.offset.dtype == torch.int64


def test_output_grid_coords_validates_too(encoder_and_config):
    backbone, _, config = encoder_and_config
    grid, _, offset = good_cloud()
    with pytest.raises(InputError, match="must lie in the grid"):
        output_grid_coords(backbone, config, -grid, offset)


def test_unknown_backbone_is_a_config_error(tiny_sonata_config):
    with pytest.raises(ConfigError, match="unknown point backbone 'ptv3'"):
        build_point_encoder("ptv3", tiny_sonata_config)
    with pytest.raises(ConfigError, match="unknown point backbone"):
        output_grid_coords("ptv3", tiny_sonata_config, *good_cloud()[::2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order": ["z", "peano"]}, "order"),
        ({"enc_mode": False}, "encoder mode"),
        ({"enc_num_head": [3, 1, 2, 2, 2]}, "not divisible"),
        ({"stride": [2, 2, 2]}, "4 entries"),
        ({"enc_channels": [8, 8, 16, 16]}, "5 entries"),
        ({"num_bins": 0}, "positive integer"),
        ({"shuffle_orders": "yes"}, "true or false"),
    ],
)
def test_bad_sonata_config(tiny_sonata_config, change, message):
    with pytest.raises(ConfigError, match=message):
        build_point_encoder("sonata", tiny_sonata_config | change)


def test_missing_and_unknown_keys(tiny_sonata_config, tiny_scenescript_config, caplog):
    del tiny_sonata_config["enc_depths"]
    with pytest.raises(ConfigError, match="lacks"):
        build_point_encoder("sonata", tiny_sonata_config)
    with pytest.raises(ConfigError, match="not one of 'valid', 'full'"):
        build_point_encoder("scenescript", tiny_scenescript_config | {"downsample_range": "same"})
    with caplog.at_level(logging.WARNING):
        encoder = build_point_encoder("scenescript", tiny_scenescript_config | {"grid_size": 0.05})
    assert encoder.out_channels == 32
    assert "grid_size" in caplog.text


def test_encoders_without_downsampling_keep_the_input_order(tiny_sonata_config, tiny_scenescript_config):
    """With no pooling / down-convolution the tokens are the input voxels, in the caller's order."""
    sonata = tiny_sonata_config | {
        "stride": [],
        "enc_depths": [1],
        "enc_channels": [8],
        "enc_num_head": [2],
        "enc_patch_size": [16],
    }
    scenescript = tiny_scenescript_config | {"conv_layers": [8], "embed_channels": 16}
    grid, feat, offset = good_cloud()
    perm = torch.randperm(len(grid), generator=torch.Generator().manual_seed(0))
    grid, feat = grid[perm], feat[perm] + torch.rand(len(grid), 6)
    for backbone, config in [("sonata", sonata), ("scenescript", scenescript)]:
        encoder = build_point_encoder(backbone, config)
        with torch.no_grad():
            out = encoder(grid, feat, offset)
            again = encoder(grid.flip(0), feat.flip(0), offset)
        assert torch.equal(out.grid_coord, grid)
        assert torch.equal(output_grid_coords(backbone, config, grid, offset)[0], grid)
        torch.testing.assert_close(again.features, out.features.flip(0), rtol=1e-5, atol=1e-5)
