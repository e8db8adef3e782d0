"""IoU of the pairs SpatialLM's eval.py scores, computed for many pairs at once.

Objects (`box_iou`): oriented 3-D IoU with bbox 0.9.4's conventions (SpatialLM scores boxes with
`bbox.metrics.iou_3d`): bird's-eye-view intersection of the yaw-rotated footprints (l = scale_x along the box's
local x, w = scale_y), times a vertical overlap, over the union volume, rounded to 5 decimals. bbox takes the
vertical overlap KITTI-style, as if position_z were the box's *top*:
    overlap = min(za, zb) - max(za - ha, zb - hb)
which differs from the overlap of centred boxes when the heights differ. `exact=True` uses centred boxes:
    overlap = min(za + ha/2, zb + hb/2) - max(za - ha/2, zb - hb/2).

Walls, doors and windows (`thin_rect_iou`): zero-thickness vertical rectangles (4 corners each, `*_corners`).
A pair counts only if the planes are parallel within 5° and close: SpatialLM measures closeness as the *signed*
distance dot(q1 - p1, n_pred) / |n_pred| < 0.2 m (a ground-truth rectangle any distance behind the predicted
plane passes); `exact=True` uses the absolute distance. Passing pairs are projected into the ground-truth
rectangle's plane basis and scored by 2-D polygon IoU (the projected prediction may be a parallelogram).
Pairs whose plane normal is degenerate (a zero-height wall, a zero-width door) score 0; SpatialLM's eval.py stops
with an AssertionError on them.
"""

from __future__ import annotations

import math

import numpy as np

from spatialvlm_cli.evaluation.geometry import clip_convex, convex_intersection_area, polygon_area
from spatialvlm_cli.layout.footprint import box_corners_xy

PARALLEL_TOLERANCE = math.sin(math.radians(5.0))  # |sin| of the angle between the two plane normals
DISTANCE_TOLERANCE_M = 0.2
DEGENERATE_NORMAL = 1e-6  # SpatialLM asserts |n_pred| * |n_gt| > 1e-6
IOU_DECIMALS = 5  # bbox 0.9.4 rounds iou_3d


def box_footprints(boxes: np.ndarray) -> np.ndarray:
    """Bottom face corners of boxes, counter-clockwise: boxes (N, 7) [x, y, z, angle_z, sx, sy, sz] metres/radians
    -> (N, 4, 2) metres, in bbox 0.9.4's p1..p4 order (see `layout.footprint.box_corners_xy`)."""
    return box_corners_xy(boxes[:, :2], boxes[:, 3], boxes[:, 4:6])


def box_iou(pred: np.ndarray, gt: np.ndarray, exact: bool = False) -> np.ndarray:
    """Oriented 3-D IoU of box pairs: pred, gt (N, 7) [x, y, z, angle_z, sx, sy, sz] (row i of pred with row i
    of gt). Extents must be positive (SpatialLM clamps them to >= 0.1 m first). Returns (N,) float64 in [0, 1],
    rounded to 5 decimals."""
    if len(pred) == 0:
        return np.zeros(0)
    pred_corners, gt_corners = box_footprints(pred), box_footprints(gt)
    polygons, counts = clip_convex(pred_corners, np.full(len(pred), 4), gt_corners)
    area = np.where(counts >= 3, polygon_area(polygons, counts), 0.0)
    za, zb, ha, hb = pred[:, 2], gt[:, 2], pred[:, 6], gt[:, 6]
    if exact:
        top, bottom = np.minimum(za + ha / 2, zb + hb / 2), np.maximum(za - ha / 2, zb - hb / 2)
    else:
        top, bottom = np.minimum(za, zb), np.maximum(za - ha, zb - hb)
    intersection = area * np.maximum(0.0, top - bottom)
    union = pred[:, 4] * pred[:, 5] * ha + gt[:, 4] * gt[:, 5] * hb - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = intersection / union
    iou = np.where(np.isfinite(iou), iou, 0.0)
    return np.round(iou, IOU_DECIMALS)


def wall_corners(walls: np.ndarray) -> np.ndarray:
    """Walls (N, 7) [ax, ay, az, bx, by, bz, height] metres -> vertical rectangles (N, 4, 3):
    a, b, b + (0, 0, h), a + (0, 0, h)."""
    a, b = walls[:, 0:3], walls[:, 3:6]
    up = np.zeros_like(a)
    up[:, 2] = walls[:, 6]
    return np.stack([a, b, b + up, a + up], axis=1)


def opening_corners(openings: np.ndarray, host_walls: np.ndarray) -> np.ndarray:
    """Doors/windows (N, 5) [x, y, z, width, height] (centre, metres) with their walls (N, 7) as in `wall_corners`
    -> (N, 4, 3): the opening's rectangle in its wall's direction, corners start, (end_xy, start_z), end,
    (start_xy, end_z) as SpatialLM's get_corners."""
    direction = host_walls[:, 3:5] - host_walls[:, 0:2]
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.nan_to_num(direction / length, nan=0.0)
    offset = 0.5 * np.concatenate([unit * openings[:, 3:4], openings[:, 4:5]], axis=1)  # (N, 3)
    centre = openings[:, 0:3]
    start, end = centre - offset, centre + offset
    return np.stack(
        [start, np.concatenate([end[:, :2], start[:, 2:]], 1), end, np.concatenate([start[:, :2], end[:, 2:]], 1)],
        axis=1,
    )


def thin_rect_iou(pred: np.ndarray, gt: np.ndarray, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """2-D IoU of vertical rectangle pairs: pred, gt (N, 4, 3) corners (row i with row i).

    Returns iou (N,) float64 (0 for pairs that are not parallel and close) and degenerate (N,) bool: pairs with
    a zero-area plane, scored 0 (SpatialLM's eval.py would stop on them)."""
    n = len(pred)
    iou = np.zeros(n)
    if n == 0:
        return iou, np.zeros(0, dtype=bool)
    p1, p2, p3 = pred[:, 0], pred[:, 1], pred[:, 2]
    q1, q2, q3, q4 = gt[:, 0], gt[:, 1], gt[:, 2], gt[:, 3]
    n1 = np.cross(p2 - p1, p3 - p1)
    n2 = np.cross(q2 - q1, q3 - q1)
    n1_length, n2_length = np.linalg.norm(n1, axis=1), np.linalg.norm(n2, axis=1)
    degenerate = ~(n1_length * n2_length > DEGENERATE_NORMAL)
    with np.errstate(divide="ignore", invalid="ignore"):
        sine = np.linalg.norm(np.cross(n1, n2), axis=1) / (n1_length * n2_length)
        distance = np.einsum("ij,ij->i", q1 - p1, n1) / n1_length
    if exact:
        distance = np.abs(distance)
    scored = ~degenerate & (sine < PARALLEL_TOLERANCE) & (distance < DISTANCE_TOLERANCE_M)
    if not scored.any():
        return iou, degenerate

    q1s, corners_pred, corners_gt = q1[scored], pred[scored], gt[scored]
    v1, v2 = q2[scored] - q1s, q4[scored] - q1s
    basis1 = v1 / np.linalg.norm(v1, axis=1, keepdims=True)
    orthogonal = v2 - np.einsum("ij,ij->i", v2, basis1)[:, None] * basis1
    basis2 = orthogonal / np.linalg.norm(orthogonal, axis=1, keepdims=True)
    basis = np.stack([basis1, basis2], axis=2)  # (S, 3, 2)
    projected_pred = np.einsum("skc,scd->skd", corners_pred - q1s[:, None], basis)  # (S, 4, 2)
    projected_gt = np.einsum("skc,scd->skd", corners_gt - q1s[:, None], basis)
    full = np.full(len(projected_pred), 4)
    area_pred = polygon_area(projected_pred, full)
    area_gt = polygon_area(projected_gt, full)
    intersection = convex_intersection_area(projected_pred, projected_gt)
    union = area_pred + area_gt - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou[scored] = np.where(union > 0, intersection / union, 0.0)
    return iou, degenerate
