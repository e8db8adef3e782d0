"""Hand-computed IoUs: boxes (bbox 0.9.4 conventions and --exact) and thin wall/door rectangles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialvlm_cli.evaluation.geometry import clip_convex, convex_intersection_area, polygon_area
from spatialvlm_cli.evaluation.iou import box_iou, opening_corners, thin_rect_iou, wall_corners


def boxes(*rows: list[float]) -> np.ndarray:
    """Rows [x, y, z, angle_z, sx, sy, sz]."""
    return np.array(rows, dtype=np.float64)


UNIT = [0.0, 0.0, 0.5, 0.0, 1.0, 1.0, 1.0]


def test_polygon_area_and_clip_of_squares():
    square = np.array([[[0, 0], [2, 0], [2, 2], [0, 2]]], dtype=float)
    assert polygon_area(square, np.array([4]))[0] == 4.0
    assert polygon_area(square[:, ::-1], np.array([4]), signed=True)[0] == -4.0
    shifted = square + 1.0
    vertices, counts = clip_convex(square, np.array([4]), shifted)
    assert counts[0] == 4 and polygon_area(vertices, counts)[0] == 1.0
    # Clockwise inputs are turned around: the overlap is still the 1 x 1 square.
    assert convex_intersection_area(square[:, ::-1], shifted[:, ::-1])[0] == 1.0
    assert convex_intersection_area(square, square + 5.0)[0] == 0.0


def test_box_iou_identical_disjoint_and_shifted():
    iou = box_iou(
        boxes(UNIT, UNIT, [0, 0, 0.5, 0, 2, 1, 1]),
        boxes(UNIT, [3.0, 0, 0.5, 0, 1, 1, 1], [1, 0, 0.5, 0, 2, 1, 1]),
    )
    # identical; disjoint; 2x1x1 shifted by 1 m: overlap 1, union 2 + 2 - 1 = 3
    assert iou.tolist() == [1.0, 0.0, 0.33333]


def test_box_iou_square_against_itself_turned_45_degrees():
    # The overlap is a regular octagon of area 2(sqrt(2) - 1); IoU = 2(sqrt2-1) / (2 - 2(sqrt2-1)) = 1/sqrt(2).
    iou = box_iou(boxes(UNIT), boxes([0.0, 0.0, 0.5, math.pi / 4, 1.0, 1.0, 1.0]))
    assert iou[0] == round(1 / math.sqrt(2), 5) == 0.70711


def test_box_iou_same_footprint_turned_by_pi_is_stable():
    # bbox 0.9.4's line-line intersection returns arbitrary values here (e.g. 0.0 or 1.6); ours stays exact.
    angles = np.linspace(-3.0, 3.0, 13)
    pred = np.array([[1.3, 0.4, 0.4, a, 1.1, 1.4, 0.8] for a in angles])
    gt = pred.copy()
    gt[:, 3] += math.pi
    assert box_iou(pred, gt).tolist() == [1.0] * len(angles)


def test_box_iou_z_overlap_kitti_quirk_and_exact():
    tall = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0]  # centre z 0, height 2: spans [-1, 1]; bbox reads it as [-2, 0]
    pairs = boxes([0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.4], [0.0, 0.0, 0.5, 0.0, 1.0, 1.0, 1.0])
    pred = boxes(tall, tall)
    # Short box at z=1 (h 0.4): exact [0.8, 1.2] overlaps [-1, 1] by 0.2 -> 0.2 / 2.2; KITTI [0.6, 1.0] vs [-2, 0]: 0.
    # Box at z=0.5 (h 1): exact [0, 1] inside [-1, 1] -> 1 / 2; KITTI [-0.5, 0.5] vs [-2, 0]: 0.5 / 2.5.
    assert box_iou(pred, pairs).tolist() == [0.0, 0.2]
    assert box_iou(pred, pairs, exact=True).tolist() == [0.09091, 0.5]


def test_box_iou_equal_heights_agree_in_both_conventions():
    pred = boxes([0.2, 0.1, 0.7, 0.3, 1.5, 0.8, 1.0])
    gt = boxes([0.0, 0.0, 0.4, 0.1, 1.2, 0.9, 1.0])
    assert box_iou(pred, gt)[0] == box_iou(pred, gt, exact=True)[0] > 0


def walls(*rows: list[float]) -> np.ndarray:
    """Rows [ax, ay, az, bx, by, bz, height]."""
    return wall_corners(np.array(rows, dtype=np.float64))


GT_WALL = [0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 3.0]


def test_wall_iou_identical_reversed_shifted_and_lower():
    pred = walls(GT_WALL, [4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0], [2.0, 0.0, 0.0, 6.0, 0.0, 0.0, 3.0],
                 [0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 2.5])
    iou, degenerate = thin_rect_iou(pred, walls(*[GT_WALL] * 4))
    # identical; reversed direction; half overlap along the wall 2 / 6; lower wall 2.5 / 3
    assert iou == pytest.approx([1.0, 1.0, 1 / 3, 2.5 / 3], abs=1e-12)
    assert not degenerate.any()


@pytest.mark.parametrize(
    ("offset_y", "quirk", "exact"),
    [
        (-0.19, 1.0, 1.0),  # 0.19 m in front of the predicted plane: close enough
        (-0.21, 0.0, 0.0),  # 0.21 m in front: too far
        (0.21, 1.0, 0.0),  # 0.21 m behind: SpatialLM's signed distance is negative, so it passes
        (5.0, 1.0, 0.0),  # even 5 m behind passes, and the projection overlaps fully
    ],
)
def test_wall_distance_edges_signed_and_exact(offset_y: float, quirk: float, exact: float):
    # Predicted wall along +x with height 3 has normal 3 * (0, -4, 0): +y is "behind" it.
    pred = walls(GT_WALL)
    gt = walls([0.0, offset_y, 0.0, 4.0, offset_y, 0.0, 3.0])
    assert thin_rect_iou(pred, gt)[0][0] == pytest.approx(quirk, abs=1e-12)
    assert thin_rect_iou(pred, gt, exact=True)[0][0] == pytest.approx(exact, abs=1e-12)


def test_wall_parallel_tolerance_edges():
    def turned(deg: float) -> list[float]:
        rad = math.radians(deg)
        return [0.0, 0.0, 0.0, 4 * math.cos(rad), 4 * math.sin(rad), 0.0, 3.0]

    iou, _ = thin_rect_iou(walls(turned(4.9), turned(5.1), turned(-4.9)), walls(*[GT_WALL] * 3))
    # Inside 5°: projected onto the GT wall the prediction spans 4 cos(4.9°) of its 4 m -> IoU cos(4.9°).
    assert iou == pytest.approx([math.cos(math.radians(4.9)), 0.0, math.cos(math.radians(4.9))], abs=1e-12)


def test_door_iou_on_its_wall_and_degenerate_rectangles():
    host = np.array([GT_WALL, GT_WALL], dtype=np.float64)
    gt_doors = opening_corners(np.array([[2.0, 0.0, 1.0, 1.0, 2.0]] * 2), host)
    pred_doors = opening_corners(np.array([[2.5, 0.0, 1.0, 1.0, 2.0], [2.0, 0.0, 1.0, 0.0, 2.0]]), host)
    iou, degenerate = thin_rect_iou(pred_doors, gt_doors)
    # shifted by half its width: overlap 0.5 x 2 = 1, union 2 + 2 - 1 = 3; a zero-width door has no plane
    assert iou == pytest.approx([1 / 3, 0.0], abs=1e-12)
    assert degenerate.tolist() == [False, True]
    flat_wall = walls([0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    assert thin_rect_iou(flat_wall, walls(GT_WALL))[1].tolist() == [True]


def test_empty_inputs():
    assert box_iou(np.zeros((0, 7)), np.zeros((0, 7))).shape == (0,)
    iou, degenerate = thin_rect_iou(np.zeros((0, 4, 3)), np.zeros((0, 4, 3)))
    assert iou.shape == degenerate.shape == (0,)
