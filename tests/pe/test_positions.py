"""Point positions: sequential ids without collisions, coordinate normalisation with one scale, input checks."""

from __future__ import annotations

import pytest
import torch

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.pe import PointPositions, normalize_coords, sequential_position_ids


def test_text_after_the_point_block_continues_the_ids() -> None:
    point_mask = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    attention_mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    coords = [torch.zeros(3, 3), torch.zeros(5, 3)]
    positions = PointPositions.from_point_blocks(point_mask, coords, attention_mask)
    assert positions.position_ids.tolist() == [[0, 0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6]]
    for row in range(2):  # every real token has its own id: no text id collides with a point id
        real = positions.position_ids[row][attention_mask[row].bool()]
        assert len(set(real.tolist())) == len(real)
    assert sequential_position_ids((2, 3)).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_coordinates_are_scattered_to_their_tokens() -> None:
    point_mask = torch.tensor([[0, 1, 1, 0]], dtype=torch.bool)
    positions = PointPositions.from_point_blocks(point_mask, [torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])])
    assert positions.point_coords[0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6], [0, 0, 0]]


def test_point_count_must_equal_coordinate_count() -> None:
    # fork bug: coordinates of 106328 raw points handed over for 556 encoder tokens
    point_mask = torch.zeros(1, 10, dtype=torch.bool)
    point_mask[0, 2:8] = True
    with pytest.raises(InputError, match="6 point tokens but coordinates of shape \\(9, 3\\)"):
        PointPositions.from_point_blocks(point_mask, [torch.zeros(9, 3)])
    with pytest.raises(InputError, match="coordinates for 2 sequences"):
        PointPositions.from_point_blocks(point_mask, [torch.zeros(6, 3)] * 2)
    with pytest.raises(InputError, match="point_coords must have shape"):
        PointPositions(torch.zeros(1, 10, dtype=torch.long), point_mask, torch.zeros(1, 10, 2))
    with pytest.raises(InputError, match="bool"):
        PointPositions(torch.zeros(1, 10, dtype=torch.long), point_mask.long(), torch.zeros(1, 10, 3))


def test_normalisation_keeps_the_aspect_ratio() -> None:
    # a hallway 40 x 4 x 10 cells, offset from the origin, plus a text token and padding with junk coordinates
    coords = torch.tensor([[[99.0, 99.0, 99.0], [10.0, 20.0, 5.0], [50.0, 24.0, 15.0], [30.0, 22.0, 10.0],
                            [-7.0, 1e4, 3.0]]])
    mask = torch.tensor([[False, True, True, True, False]])
    grid = normalize_coords(coords, mask, "grid")
    assert grid[0].tolist() == [[0, 0, 0], [0, 0, 0], [40, 4, 10], [20, 2, 5], [0, 0, 0]]
    unit = normalize_coords(coords, mask, "unit")
    torch.testing.assert_close(unit[0, 2], torch.tensor([1.0, 0.1, 0.25]))  # longest axis spans [0, 1] only
    per_axis = (coords[0, 2] - coords[0, 1]) / (coords[0, 2] - coords[0, 1])  # the seed's old bug: a cube
    assert not torch.allclose(unit[0, 2], per_axis)


def test_normalisation_is_per_sequence_and_safe_without_points() -> None:
    coords = torch.tensor([[[1.0, 1.0, 1.0], [3.0, 1.0, 1.0]], [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]])
    mask = torch.tensor([[True, True], [False, False]])
    for unit in ("grid", "unit"):
        out = normalize_coords(coords, mask, unit)
        assert out.isfinite().all() and out[1].abs().sum() == 0
    single = normalize_coords(coords[:1, :1], mask[:1, :1], "unit")  # one point: zero extent, no division by 0
    assert single.tolist() == [[[0.0, 0.0, 0.0]]]
    with pytest.raises(ConfigError, match="coordinate unit"):
        normalize_coords(coords, mask, "metres")
