"""3D_Sinusoidal: hand-computed channels, agreement with the reference loops, only point rows change."""

from __future__ import annotations

import math

import pytest
import torch

from spatialvlm_cli.pe import PointPositions, build_position_encoding, normalize_coords
from spatialvlm_cli.pe.reference import reference_sinusoid


def two_points() -> PointPositions:
    point_mask = torch.tensor([[False, True, True, False]])
    return PointPositions.from_point_blocks(point_mask, [torch.tensor([[7.0, 9.0, 4.0], [9.0, 14.0, 5.0]])])


def test_3d_only_channels_hand_computed(lm_config) -> None:
    pe = build_position_encoding("3D_Sinusoidal", "3D_only", lm_config("qwen2-hd16"))  # 32 pairs: x 10, y 10, z 12
    embeds = torch.zeros(1, 4, 64)
    out = pe.embed_points(embeds, two_points())
    x, y, z = 2.0, 5.0, 1.0  # second point minus the scene's min corner (7, 9, 4), in grid cells
    expected = {0: math.sin(x), 32: math.cos(x), 1: math.sin(x * 100 ** (-1 / 10)), 10: math.sin(y),
                42: math.cos(y), 20: math.sin(z), 21: math.sin(z * 100 ** (-1 / 12)),
                63: math.cos(z * 100 ** (-11 / 12))}
    for channel, value in expected.items():
        assert float(out[0, 2, channel]) == pytest.approx(value, abs=1e-6), channel
    # the first point is the min corner: sin 0 = 0, cos 0 = 1
    assert torch.equal(out[0, 1], torch.cat((torch.zeros(32), torch.ones(32))))
    assert torch.equal(out[0, [0, 3]], torch.zeros(2, 64))


def test_3d_with_1d_channels_hand_computed(lm_config) -> None:
    pe = build_position_encoding("3D_Sinusoidal", "3D_with_1D", lm_config("qwen2-hd16"))  # t 16 | 5 / 5 / 6
    out = pe.embed_points(torch.zeros(1, 4, 64), two_points())
    position = 2.0
    expected = {0: math.sin(position), 1: math.sin(position * 10000 ** (-1 / 16)), 16: math.sin(2.0),
                21: math.sin(5.0), 26: math.sin(1.0), 48: math.cos(2.0)}
    for channel, value in expected.items():
        assert float(out[0, 2, channel]) == pytest.approx(value, abs=1e-6), channel


@pytest.mark.parametrize("rule", ["3D_only", "3D_with_1D"])
@pytest.mark.parametrize("options", [{}, {"layout": "interleaved", "coord_unit": "unit", "scale": 0.5}])
def test_matches_the_reference_loops(lm_config, rule: str, options: dict) -> None:
    pe = build_position_encoding("3D_Sinusoidal", rule, lm_config("llama-hd24"), options)
    point_mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    grid = torch.randint(0, 40, (2, 6, 3), generator=torch.Generator().manual_seed(0)).float()
    positions = PointPositions(torch.tensor([[0, 0, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5]]), point_mask, grid)
    embeds = torch.randn(2, 6, 64)
    out = pe.embed_points(embeds, positions)
    coords = normalize_coords(grid, point_mask, pe.options.coord_unit)
    expected = embeds + reference_sinusoid(pe, positions.position_ids, point_mask, coords)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(out[~point_mask], embeds[~point_mask])  # text rows untouched, bit for bit
