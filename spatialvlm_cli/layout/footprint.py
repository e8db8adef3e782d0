"""The floor-plane footprint of a box: one function for the metric (`evaluation.iou`) and the plan (`floorplan`)."""

from __future__ import annotations

import numpy as np


def box_corners_xy(center_xy: np.ndarray, angle_z: np.ndarray, size_xy: np.ndarray) -> np.ndarray:
    """Bottom-face corners of boxes: center_xy (N, 2) metres, angle_z (N,) radians about z, size_xy (N, 2) metres
    along the box's local x and y -> (N, 4, 2) metres, counter-clockwise from local (-x, -y): (-l/2, -w/2),
    (l/2, -w/2), (l/2, w/2), (-l/2, w/2), bbox 0.9.4's p1..p4."""
    half = np.asarray(size_xy, dtype=np.float64) / 2
    local = np.stack([-half, half * [1, -1], half, half * [-1, 1]], axis=1)  # (N, 4, 2)
    cos, sin = np.cos(angle_z)[:, None], np.sin(angle_z)[:, None]
    x = center_xy[:, None, 0] + cos * local[..., 0] - sin * local[..., 1]
    y = center_xy[:, None, 1] + sin * local[..., 0] + cos * local[..., 1]
    return np.stack([x, y], axis=-1)
