"""Geometric errors (`eval --geometry`) against hand-computed values, in metres."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.evaluation import evaluate_folders, geometry_report, room_geometry
from spatialvlm_cli.evaluation.room_geometry import (
    extent_difference,
    footprint_box,
    ospa,
    principal_angle,
    segment_hausdorff,
)
from spatialvlm_cli.layout import Door, Layout, Wall, Window, format_layout


def rectangle(width: float, depth: float, origin: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> Layout:
    """A width x depth room (metres) with its min corner at origin, turned by angle about origin: 4 walls
    counter-clockwise, a door in the middle of wall 0 and a window in the middle of wall 1."""
    corners = [(0.0, 0.0), (width, 0.0), (width, depth), (0.0, depth)]
    cos, sin = math.cos(angle), math.sin(angle)
    turned = [(origin[0] + x * cos - y * sin, origin[1] + x * sin + y * cos) for x, y in corners]
    walls = [Wall(i, *turned[i], 0.0, *turned[(i + 1) % 4], 0.0, 2.8, 0.2) for i in range(4)]
    mid0 = ((turned[0][0] + turned[1][0]) / 2, (turned[0][1] + turned[1][1]) / 2)
    mid1 = ((turned[1][0] + turned[2][0]) / 2, (turned[1][1] + turned[2][1]) / 2)
    return Layout(walls=walls, doors=[Door(0, 0, *mid0, 1.0, 0.9, 2.0)],
                  windows=[Window(0, 1, *mid1, 1.5, 1.2, 1.0)])


def replace_wall(layout: Layout, index: int, wall: Wall) -> Layout:
    walls = list(layout.walls)
    walls[index] = wall
    return Layout(walls=walls, doors=list(layout.doors), windows=list(layout.windows))


def test_ground_truth_against_itself_is_perfect():
    gt = rectangle(4.0, 3.0)
    room = room_geometry("r", gt, gt)
    assert room.extent_error == 0.0
    assert room.extent_sides == (0.0, 0.0, 0.0, 0.0)
    for errors in (room.walls, room.doors, room.windows):
        assert errors.error == 0.0 and errors.num_matched == errors.num_pred == errors.num_gt


def test_one_wall_shifted_by_30_cm():
    """Wall 1 (x = 4) moved to x = 4.3: its centre line is 0.3 m off, the other three are exact."""
    gt = rectangle(4.0, 3.0)
    pred = replace_wall(gt, 1, Wall(1, 4.3, 0.0, 0.0, 4.3, 3.0, 0.0, 2.8, 0.2))
    room = room_geometry("r", pred, gt)
    assert room.walls.error == pytest.approx(0.3 / 4)  # OSPA: (0.3 + 0 + 0 + 0) / 4 walls
    assert room.walls.matched_mean == pytest.approx(0.3 / 4)
    assert segment_hausdorff(np.array([[[4.3, 0.0], [4.3, 3.0]]]), np.array([[[4.0, 0.0], [4.0, 3.0]]]))[0, 0] \
        == pytest.approx(0.3)
    assert room.extent_error == pytest.approx(0.3)
    assert room.extent_sides == pytest.approx((0.0, 0.0, 0.3, 0.0))


def test_room_half_a_metre_too_long_in_x():
    gt, pred = rectangle(4.0, 3.0), rectangle(4.5, 3.0)
    room = room_geometry("r", pred, gt)
    assert room.extent_error == pytest.approx(0.5)
    assert room.extent_sides == pytest.approx((0.0, 0.0, 0.5, 0.0))
    # walls 0 and 2 are 0.5 m too long (Hausdorff 0.5), wall 1 is 0.5 m out, wall 3 is exact
    assert room.walls.error == pytest.approx((0.5 + 0.5 + 0.5 + 0.0) / 4)
    # the door sits in the middle of wall 0: 2.25 instead of 2.0; the window in the middle of wall 1 moved 0.5 in x
    assert room.doors.error == pytest.approx(0.25)
    assert room.windows.error == pytest.approx(0.5)


def test_shifted_room_pays_the_shift():
    gt, pred = rectangle(4.0, 3.0), rectangle(4.0, 3.0, origin=(0.0, -0.4))
    room = room_geometry("r", pred, gt)
    assert room.extent_error == pytest.approx(0.4)
    assert room.extent_sides == pytest.approx((0.0, -0.4, 0.0, -0.4))
    # walls 0 and 2 move 0.4 sideways; walls 1 and 3 slide 0.4 along themselves (an end 0.4 from the other line)
    assert room.walls.error == pytest.approx(0.4)


def test_extent_is_measured_in_the_rooms_principal_frame():
    """A room turned by 30°: 0.5 m too long along its own x is an extent error of 0.5, not of the world box."""
    angle = math.radians(30.0)
    gt, pred = rectangle(4.0, 3.0, angle=angle), rectangle(4.5, 3.0, angle=angle)
    gt_segments = np.array([[[w.ax, w.ay], [w.bx, w.by]] for w in gt.walls])
    assert principal_angle(gt_segments) == pytest.approx(angle)
    assert footprint_box(gt_segments, angle) == pytest.approx([0.0, 0.0, 4.0, 3.0])
    assert room_geometry("r", pred, gt).extent_error == pytest.approx(0.5)
    # the frame is folded into [0°, 90°): a room whose longest wall runs at 120° has its frame at 30°
    assert principal_angle(np.array([[[0.0, 0.0], [-1.0, math.sqrt(3.0)]]])) == pytest.approx(math.radians(30.0))


def test_empty_prediction_scores_the_cutoff_everywhere():
    gt = rectangle(4.0, 3.0)
    room = room_geometry("r", Layout(), gt, cutoff=2.0)
    assert room.extent_error == 2.0 and room.extent_sides is None
    assert (room.walls.error, room.doors.error, room.windows.error) == (2.0, 2.0, 2.0)
    assert room.walls.num_gt == 4 and room.walls.num_matched == 0
    assert room_geometry("r", None, gt, cutoff=1.5).walls.error == 1.5  # no prediction file: the same


def test_missing_and_extra_walls_cost_the_cutoff():
    gt = rectangle(4.0, 3.0)
    extra = Layout(walls=[*gt.walls, Wall(9, 1.0, 1.0, 0.0, 2.0, 1.0, 0.0, 2.8, 0.2)])
    assert room_geometry("r", extra, gt, cutoff=2.0).walls.error == pytest.approx(2.0 / 5)
    missing = Layout(walls=gt.walls[:3])
    assert room_geometry("r", missing, gt, cutoff=2.0).walls.error == pytest.approx(2.0 / 4)


def test_far_walls_are_capped_at_the_cutoff():
    distances = np.array([[5.0, 0.1], [0.2, 7.0]])
    result = ospa(distances, cutoff=2.0)
    assert result.error == pytest.approx((0.1 + 0.2) / 2)  # the assignment takes the two near pairs
    far = ospa(np.array([[5.0]]), cutoff=2.0)
    assert far.error == 2.0 and far.matched_mean == 5.0


def test_segment_hausdorff_by_hand():
    """(0,0)-(1,0) against (0,1)-(2,1): the far end (2,1) is sqrt(2) from (1,0); reversed segments, same."""
    p = np.array([[[0.0, 0.0], [1.0, 0.0]]])
    q = np.array([[[0.0, 1.0], [2.0, 1.0]], [[2.0, 1.0], [0.0, 1.0]]])
    assert segment_hausdorff(p, q) == pytest.approx(np.array([[math.sqrt(2.0), math.sqrt(2.0)]]))


def test_openings_on_a_wrong_wall_pay_the_distance():
    gt = rectangle(4.0, 3.0)
    moved = Layout(walls=gt.walls, doors=[Door(0, 1, 4.0, 1.5, 0.9, 1.0, 2.0)], windows=gt.windows)
    # door centre (2, 0) predicted at (4, 1.5): sqrt(4 + 2.25) = 2.5 m (under the 3 m cutoff)
    room = room_geometry("r", moved, gt, cutoff=3.0)
    assert room.doors.error == pytest.approx(2.5)


def test_a_class_neither_side_has_is_not_scored():
    gt = Layout(walls=rectangle(4.0, 3.0).walls)
    room = room_geometry("r", gt, gt)
    assert room.doors.error is None and room.windows.error is None
    report = geometry_report([("a", gt, gt), ("b", Layout(), gt), ("c", gt, None)], cutoff=2.0)
    assert [room.scene for room in report.rooms] == ["a", "b"]  # no ground truth: not a room
    wall = report.summary("wall")
    assert (wall.median, wall.mean, wall.rooms) == (1.0, 1.0, 2)
    door = report.summary("door")  # neither room has a door on either side
    assert (door.median, door.mean, door.rooms) == (None, None, 0)


def test_extent_difference_without_walls():
    none = np.zeros((0, 2, 2))
    assert extent_difference(none, none) == (None, None)
    assert extent_difference(np.array([[[0.0, 0.0], [1.0, 0.0]]]), none) == (None, None)


def test_evaluate_folders_geometry_and_json(tmp_path: Path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    (gt / "a.txt").write_text(format_layout(rectangle(4.0, 3.0)))
    (gt / "b.txt").write_text(format_layout(rectangle(4.0, 3.0)))
    (pred / "a.txt").write_text(format_layout(rectangle(4.5, 3.0)))  # b has no prediction: empty
    report = evaluate_folders(pred, gt, exact=True, geometry=True, geometry_cutoff=2.0)
    assert report.geometry is not None
    extent = report.geometry.summary("extent")
    assert extent.median == pytest.approx((0.5 + 2.0) / 2) and extent.mean == pytest.approx(1.25)
    data = report.to_json()["geometry"]
    assert data["cutoff_m"] == 2.0
    assert data["summary"]["wall"]["mean"] == pytest.approx((0.375 + 2.0) / 2)
    assert data["rooms"][1]["walls"] == {"error": 2.0, "matched_mean": None, "num_pred": 0, "num_gt": 4,
                                         "num_matched": 0}
    assert "geometry" not in evaluate_folders(pred, gt).to_json()
