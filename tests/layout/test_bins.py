"""Bins <-> metres exactly as SpatialLM: truncating encode, lower-edge decode, hand-computed values."""

from __future__ import annotations

import math

import pytest

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, bin_size, format_layout, parse_layout


def test_bin_sizes_at_1280_and_640():
    assert bin_size("world", 1280) == 0.025 and bin_size("world", 640) == 0.05
    assert bin_size("height", 1280) == 0.02 and bin_size("width", 640) == 0.04
    assert bin_size("scale", 1280) == 0.015625 and bin_size("scale", 640) == 0.03125
    assert bin_size("angle", 1280) == pytest.approx(0.0098175, abs=1e-7)


@pytest.mark.parametrize(
    ("num_bins", "expected"),
    [
        # world 100 -> 100/N*32; height 7 -> 7/N*25.6; width 45 -> 45/N*25.6; scale 64 -> 64/N*20; angle 640 -> 0 or pi
        (1280, (2.5, 0.13999999999999999, 0.9, 1.0, 0.0)),
        (640, (5.0, 0.27999999999999997, 1.8, 2.0, 6.2832)),
    ],
)
def test_decode_is_the_lower_bin_edge(num_bins: int, expected: tuple[float, ...]):
    world, height, width, scale, angle = expected
    layout, _ = parse_layout(
        "wall_0=Wall(100,0,0,0,100,0,7,0)\ndoor_0=Door(wall_0,100,0,0,45,7)\nbbox_0=Bbox(bed,0,0,0,640,64,64,0)"
    )
    metres = layout.undiscretize(num_bins)
    wall, door, box = metres.walls[0], metres.doors[0], metres.bboxes[0]
    assert (wall.ax, wall.by, wall.height, wall.ay, wall.thickness) == (world, world, height, 0.0, 0.0)
    assert (door.position_x, door.width, door.height) == (world, width, height)
    assert (box.scale_x, box.scale_z) == (scale, 0.0)
    assert box.angle_z == pytest.approx(angle, abs=1e-12)
    assert box.position_x == 0.0  # bin 0 decodes to the range minimum, not half a bin above it
    assert layout.walls[0].ax == 100  # undiscretize returns a new layout


@pytest.mark.parametrize(
    ("value", "num_bins", "expected_bin"),
    [
        (2.5, 1280, 100),
        (2.5249, 1280, 100),  # truncation, not rounding
        (2.5251, 1280, 101),
        (2.5, 640, 50),
        (-1.0, 1280, 0),  # clipped below
        (40.0, 1280, 1279),  # clipped above
        (40.0, 640, 639),
    ],
)
def test_encode_world_truncates_and_clips(value: float, num_bins: int, expected_bin: int):
    wall = Wall(0, value, 0.0, 0.0, 1.0, 0.0, 0.0, 2.5, 0.2)
    assert Layout(walls=[wall]).discretize(num_bins).walls[0].ax == expected_bin


def test_encode_angle_and_scale_by_hand():
    # (pi/2 + 6.2832) / 12.5664 * 1280 = 799.99963... -> 799; (0 + 6.2832) / 12.5664 * 1280 = 640
    # scale 0.9 m: 0.9 / 20 * 1280 = 57.6 -> 57; at 640: 28.8 -> 28
    box = Bbox(0, "sofa", 1.0, 1.0, 0.4, math.pi / 2, 0.9, 0.0, 0.9)
    at_1280 = Layout(bboxes=[box]).discretize(1280).bboxes[0]
    assert (at_1280.angle_z, at_1280.scale_x, at_1280.scale_y) == (799, 57, 0)
    assert Layout(bboxes=[box]).discretize(640).bboxes[0].scale_x == 28
    assert Layout(bboxes=[Bbox(0, "sofa", 0, 0, 0, 0.0, 1, 1, 1)]).discretize(1280).bboxes[0].angle_z == 640


def test_decode_then_encode_can_lose_a_bin_as_in_spatiallm():
    # 7/1280*25.6 = 0.13999999999999999 m; encoding divides back to 6.9999... and truncates to 6.
    layout, _ = parse_layout("wall_0=Wall(76,40,0,240,40,0,7,10)")
    again = layout.undiscretize(1280).discretize(1280)
    assert (again.walls[0].ax, again.walls[0].height, again.walls[0].thickness) == (76, 6, 10)
    assert format_layout(again) == "wall_0=Wall(76,40,0,240,40,0,6,10)"


def test_translate_moves_positions_only():
    layout = Layout(
        walls=[Wall(0, 1.0, 2.0, 0.0, 3.0, 2.0, 0.0, 2.5, 0.2)],
        doors=[Door(0, 0, 2.0, 2.0, 1.0, 0.9, 2.0)],
        bboxes=[Bbox(0, "bed", 1.0, 1.0, 0.3, 0.5, 2.0, 1.6, 0.6)],
    )
    moved = layout.translate((0.5, -1.0, 0.25))
    assert moved.walls[0] == Wall(0, 1.5, 1.0, 0.25, 3.5, 1.0, 0.25, 2.5, 0.2)
    assert moved.doors[0] == Door(0, 0, 2.5, 1.0, 1.25, 0.9, 2.0)
    assert moved.bboxes[0] == Bbox(0, "bed", 1.5, 0.0, 0.55, 0.5, 2.0, 1.6, 0.6)


def test_bad_num_bins_and_non_finite_values_raise():
    with pytest.raises(ConfigError, match="positive integer"):
        Layout().undiscretize(0)
    with pytest.raises(InputError, match="non-finite"):
        Layout(walls=[Wall(0, math.nan, 0, 0, 1, 0, 0, 2, 0)]).discretize(1280)
