"""Baselines: the constant room, the empty layout and the noisy ground truth, and how they score."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatialvlm_cli.evaluation.baselines import MeanRoom, binned_layout, constant_layout, mean_room, noisy_layout
from spatialvlm_cli.evaluation.benchmark import COLUMNS, format_figure, score_row
from spatialvlm_cli.io import read_point_cloud
from spatialvlm_cli.layout import Door, Layout, Wall, Window, format_layout, parse_layout
from spatialvlm_cli.preprocess import prepare_point_cloud

SCENES = Path(__file__).resolve().parents[2] / "scenes"


def box_room(x0: float, y0: float, x1: float, y1: float, height: float = 2.8) -> Layout:
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    walls = [Wall(i, *corners[i], 0.0, *corners[(i + 1) % 4], 0.0, height, 0.2) for i in range(4)]
    return Layout(walls=walls, doors=[Door(0, 0, (x0 + x1) / 2, y0, 1.0, 0.8, 2.0)],
                  windows=[Window(0, 1, x1, (y0 + y1) / 2, 1.5, 1.0, 1.2)])


def test_mean_room_by_hand():
    room = mean_room([box_room(-0.1, -0.1, 4.0, 3.0, height=2.6), box_room(-0.2, 0.0, 6.0, 5.0, height=3.0)])
    assert (room.x_min, room.y_min, room.x_max, room.y_max) == pytest.approx((-0.15, -0.05, 5.0, 4.0))
    assert room.wall_height == pytest.approx(2.8) and room.wall_z == 0.0 and room.num_rooms == 2
    assert (room.door_width, room.door_z, room.window_z) == pytest.approx((0.8, 1.0, 1.5))
    with pytest.raises(ValueError):
        mean_room([Layout()])


def test_constant_layout_sits_at_the_min_corner():
    room = MeanRoom(x_min=-0.1, y_min=-0.1, x_max=5.0, y_max=4.0, wall_z=0.0, wall_height=2.8, wall_thickness=0.2,
                    door_width=0.9, door_height=2.0, door_z=1.0, window_width=1.2, window_height=1.2,
                    window_z=1.5, num_rooms=1)
    layout = constant_layout(room, (10.0, 20.0, 0.5))
    first = layout.walls[0]
    assert (first.ax, first.ay, first.az, first.bx, first.by) == pytest.approx((9.9, 19.9, 0.5, 15.0, 19.9))
    assert [(w.id, w.bx, w.by) for w in layout.walls][2] == pytest.approx((2, 9.9, 24.0))
    door, window = layout.doors[0], layout.windows[0]
    assert (door.wall_id, door.position_x, door.position_y, door.position_z) == pytest.approx((0, 12.45, 19.9, 1.5))
    assert (window.wall_id, window.position_x, window.position_y) == pytest.approx((1, 15.0, 21.95))
    assert MeanRoom.from_json(room.to_json()) == room


def test_noisy_layout_moves_positions_only():
    gt = box_room(0.0, 0.0, 4.0, 3.0)
    assert noisy_layout(gt, 0.0) == gt
    moved = noisy_layout(gt, 0.05, seed=1)
    assert moved.walls[0].height == gt.walls[0].height and moved.doors[0].width == gt.doors[0].width
    assert 0 < abs(moved.walls[0].ax - gt.walls[0].ax) < 0.3
    assert noisy_layout(gt, 0.05, seed=1) == moved  # seeded


def test_binned_layout_clips_min_side_walls_onto_the_min_corner():
    """Scan min corner (10, 20, 0.5); bins of 2.5 cm (1280 over 32 m) read back at their lower edge."""
    gt = box_room(9.9, 19.95, 14.01, 23.0)
    binned = binned_layout(gt, (10.0, 20.0, 0.5), 1280)
    walls = binned.walls
    # min-side centre lines (10 and 5 cm outside the scan) are clipped onto the min corner; z 0 below it too
    assert (walls[0].ax, walls[0].ay, walls[0].az) == pytest.approx((10.0, 20.0, 0.5))
    # 4.01 m from the corner is bin 160 (4.00 m); 3.0 m is exactly bin 120
    assert (walls[1].ax, walls[2].ay) == pytest.approx((14.0, 23.0))
    assert walls[0].height == pytest.approx(2.8, abs=0.025) and walls[0].thickness == pytest.approx(0.2, abs=0.025)
    assert binned_layout(binned, (10.0, 20.0, 0.5), 1280).walls == walls  # a fixed point


def test_constant_room_scores_clearly_below_a_reading_on_the_shipped_rooms(tmp_path: Path):
    """The three shipped held-out rooms: SpatialLM's signed wall distance lets the constant room's walls match
    (wall F1 100 there); the exact metric and the geometry show it is no reading of the scan."""
    room = mean_room([box_room(-0.1, -0.1, 5.3, 4.8)])  # about the generator's mean room
    folders = {name: tmp_path / name for name in ("constant", "empty", "gt_noise")}
    for folder in folders.values():
        folder.mkdir()
    for index, ply in enumerate(sorted(SCENES.glob("room_*.ply"))):
        gt, _ = parse_layout(ply.with_suffix(".txt").read_text())
        min_corner = prepare_point_cloud(read_point_cloud(ply), 1280).min_extent
        (folders["constant"] / f"{ply.stem}.txt").write_text(format_layout(constant_layout(room, min_corner)))
        (folders["empty"] / f"{ply.stem}.txt").write_text("")
        (folders["gt_noise"] / f"{ply.stem}.txt").write_text(format_layout(noisy_layout(gt, 0.05, seed=index)))
    figures = {name: score_row(name, folder, SCENES).figures() for name, folder in folders.items()}
    reading, constant, empty = figures["gt_noise"], figures["constant"], figures["empty"]
    assert reading["wall_f1_25"] == 100.0 and reading["wall_m"] < 0.15 and reading["extent_m"] < 0.2
    assert constant["wall_f1_25_spatiallm"] > constant["wall_f1_25"]  # the signed distance flatters it
    assert constant["wall_f1_25"] <= 60.0
    assert constant["wall_m"] > 0.8 and constant["extent_m"] > 0.8 and constant["door_m"] > 1.0
    assert empty["wall_f1_25"] == 0.0 and empty["wall_m"] == 2.0 and empty["extent_m"] == 2.0
    assert format_figure("wall_m", empty["wall_m"]) == "2.00" and len(COLUMNS) == len(empty)
