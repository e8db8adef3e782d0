"""Geometric errors of predicted rooms in metres, with no matching threshold to hide them (`eval --geometry`).

F1 at an IoU threshold says how many entities are "close enough"; it cannot say how far off the rest are, and
SpatialLM's signed wall-plane distance even lets a wall a metre off on one side match. These figures are plain
distances in the floor plane (x, y; metres), computed per room (a scene with a ground-truth file):

room extent error
    The room's *principal frame* is the ground truth's: its longest wall's direction, folded into [0°, 90°). Both
    layouts' wall endpoints (a and b of every wall) are turned into that frame and boxed: (x_min, y_min, x_max,
    y_max). The error is the largest of the four side differences, max(|Δx_min|, |Δy_min|, |Δx_max|, |Δy_max|):
    a room 0.5 m too long in x scores 0.5, a room shifted by 0.3 m scores 0.3.
wall error
    Distance between two walls: the symmetric Hausdorff distance between their centre lines (the a–b segments),
    i.e. the farthest any point of either segment lies from the other segment. A wall moved sideways by 0.3 m
    scores 0.3; a wall 1 m too short scores 1. Predicted and ground-truth walls are paired by a Hungarian
    assignment on these distances (capped at the cutoff), with no threshold.
door error, window error
    Distance between two openings: the distance between their centres in the floor plane. For an opening on the
    right wall this is its error along that wall; an opening on a wrong wall also pays the distance between the
    walls. Paired per class (doors with doors, windows with windows) as walls are.

Missing and extra entities count (the OSPA metric of Schuhmacher et al. 2008, order 1): with cutoff c (default
2 m), a room's wall error is

    (sum over assigned pairs of min(d, c)  +  c * |number of predicted walls - number of ground-truth walls|)
    / max(number of predicted walls, number of ground-truth walls)

so every figure lies in [0, c]: 0 is perfect, c is the worst (an empty prediction of a room that has walls scores
c, as does a prediction with walls where the room has none). The extent error is capped at c too, and is c when
the prediction has no wall. A class that neither side has in a room is not scored there (None), as SpatialLM
masks such scenes. Aggregates are the median and the mean over the rooms where a figure is defined.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spatialvlm_cli.layout import Door, Layout, Wall, Window

DEFAULT_CUTOFF_M = 2.0
Sides = tuple[float, float, float, float]  # x_min, y_min, x_max, y_max (metres)
METRICS: tuple[str, ...] = ("extent", "wall", "door", "window")
METRIC_TITLES: dict[str, str] = {
    "extent": "room extent",
    "wall": "wall centre lines",
    "door": "door centres",
    "window": "window centres",
}


@dataclass(frozen=True)
class SetError:
    """One class in one room: the OSPA error (metres, in [0, cutoff]; None when neither side has the class), the
    mean distance of the assigned pairs (metres, uncapped; None when nothing was paired) and the counts."""

    error: float | None
    matched_mean: float | None
    num_pred: int
    num_gt: int
    num_matched: int


@dataclass(frozen=True)
class RoomGeometry:
    """A room's geometric errors (metres). extent_sides: predicted minus ground-truth box sides (x_min, y_min,
    x_max, y_max) in the ground truth's principal frame, None when either side has no wall."""

    scene: str
    extent_error: float | None
    extent_sides: Sides | None
    walls: SetError
    doors: SetError
    windows: SetError

    def value(self, metric: str) -> float | None:
        """The room's figure for one of METRICS (metres)."""
        if metric == "extent":
            return self.extent_error
        return {"wall": self.walls, "door": self.doors, "window": self.windows}[metric].error

    def to_json(self) -> dict[str, Any]:
        return {
            "scene": self.scene,
            "extent_error": _round(self.extent_error),
            "extent_sides": None if self.extent_sides is None else [_round(v) for v in self.extent_sides],
            **{name: _set_json(errors) for name, errors in
               (("walls", self.walls), ("doors", self.doors), ("windows", self.windows))},
        }


@dataclass(frozen=True)
class MetricSummary:
    """Median and mean of one metric over the rooms where it is defined (metres; None if no room)."""

    median: float | None
    mean: float | None
    rooms: int


@dataclass
class GeometryReport:
    """Per-room geometric errors and their aggregates. cutoff: the worst value (metres)."""

    cutoff: float
    rooms: list[RoomGeometry] = field(default_factory=list)

    def summary(self, metric: str) -> MetricSummary:
        """Median and mean of `metric` (one of METRICS) over the rooms where it is defined."""
        values = [v for v in (room.value(metric) for room in self.rooms) if v is not None]
        if not values:
            return MetricSummary(None, None, 0)
        return MetricSummary(statistics.median(values), statistics.fmean(values), len(values))

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": "metres",
            "cutoff_m": self.cutoff,
            "definition": "per room: extent = max side difference of the wall-endpoint boxes in the ground truth's "
                          "principal frame; wall/door/window = OSPA (order 1) of centre-line Hausdorff / xy "
                          "centre distances, unmatched entities cost the cutoff; aggregates over rooms",
            "summary": {metric: {key: _round(value) if key != "rooms" else value
                                 for key, value in vars(self.summary(metric)).items()} for metric in METRICS},
            "rooms": [room.to_json() for room in self.rooms],
        }


def room_geometry(scene: str, pred: Layout | None, gt: Layout, cutoff: float = DEFAULT_CUTOFF_M) -> RoomGeometry:
    """All geometric errors of one room (see the module docstring). pred None: no prediction (an empty layout)."""
    pred = pred or Layout()
    pred_walls, gt_walls = _wall_segments(pred.walls), _wall_segments(gt.walls)
    extent_error, sides = extent_difference(pred_walls, gt_walls, cutoff)
    return RoomGeometry(
        scene=scene,
        extent_error=extent_error,
        extent_sides=sides,
        walls=ospa(segment_hausdorff(pred_walls, gt_walls), cutoff),
        doors=ospa(_centre_distances(pred.doors, gt.doors), cutoff),
        windows=ospa(_centre_distances(pred.windows, gt.windows), cutoff),
    )


def geometry_report(pairs: Sequence[tuple[str, Layout | None, Layout | None]],
                    cutoff: float = DEFAULT_CUTOFF_M) -> GeometryReport:
    """Geometric errors of every (scene, prediction, ground truth) whose ground truth exists (metres)."""
    if not cutoff > 0 or not math.isfinite(cutoff):
        raise ValueError(f"the geometry cutoff must be a positive number of metres, got {cutoff}")
    return GeometryReport(cutoff, [room_geometry(name, pred, gt, cutoff) for name, pred, gt in pairs
                                   if gt is not None])


def principal_angle(segments: np.ndarray) -> float:
    """Direction of the longest segment, folded into [0, pi/2) radians (0 when there is none or it has no length).

    segments: (N, 2, 2) metres, [a, b] of each."""
    if len(segments) == 0:
        return 0.0
    delta = segments[:, 1] - segments[:, 0]
    longest = delta[int(np.argmax(np.hypot(delta[:, 0], delta[:, 1])))]
    if not np.any(longest):
        return 0.0
    return float(math.atan2(longest[1], longest[0]) % (math.pi / 2))


def footprint_box(segments: np.ndarray, angle: float) -> np.ndarray:
    """(x_min, y_min, x_max, y_max) metres of the segments' endpoints turned by -angle (into the frame whose x axis
    points along `angle`). segments: (N, 2, 2) with N >= 1."""
    cos, sin = math.cos(angle), math.sin(angle)
    points = segments.reshape(-1, 2)
    x = points[:, 0] * cos + points[:, 1] * sin
    y = -points[:, 0] * sin + points[:, 1] * cos
    return np.array([x.min(), y.min(), x.max(), y.max()])


def extent_difference(pred: np.ndarray, gt: np.ndarray,
                      cutoff: float = DEFAULT_CUTOFF_M) -> tuple[float | None, Sides | None]:
    """Room extent error (metres, capped at cutoff) and the signed side differences pred - gt.

    pred, gt: wall segments (N, 2, 2). No ground-truth wall: (None, None); no predicted wall: (cutoff, None)."""
    if len(gt) == 0:
        return None, None
    if len(pred) == 0:
        return cutoff, None
    angle = principal_angle(gt)
    sides = footprint_box(pred, angle) - footprint_box(gt, angle)
    x_min, y_min, x_max, y_max = (float(v) for v in sides)
    return min(float(np.abs(sides).max()), cutoff), (x_min, y_min, x_max, y_max)


def point_segment_distance(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Distance (metres) from points (..., 2) to segments start-end (..., 2), broadcast; a zero-length segment is
    its start point."""
    direction = ends - starts
    length2 = np.sum(direction * direction, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(length2 > 0, np.sum((points - starts) * direction, axis=-1) / length2, 0.0)
    nearest = starts + np.clip(t, 0.0, 1.0)[..., None] * direction
    return np.hypot(*np.moveaxis(points - nearest, -1, 0))


def segment_hausdorff(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Symmetric Hausdorff distance (metres) between every pair of segments: pred (N, 2, 2), gt (M, 2, 2) -> (N, M).

    The distance from a point to a segment is convex along another segment, so the farthest point of one segment
    from the other is one of its endpoints: the distance is the largest of the four endpoint-to-segment distances."""
    if len(pred) == 0 or len(gt) == 0:
        return np.zeros((len(pred), len(gt)))
    p = pred[:, None]  # (N, 1, 2, 2)
    g = gt[None, :]  # (1, M, 2, 2)
    distances = [
        point_segment_distance(p[:, :, 0], g[:, :, 0], g[:, :, 1]),
        point_segment_distance(p[:, :, 1], g[:, :, 0], g[:, :, 1]),
        point_segment_distance(g[:, :, 0], p[:, :, 0], p[:, :, 1]),
        point_segment_distance(g[:, :, 1], p[:, :, 0], p[:, :, 1]),
    ]
    return np.maximum.reduce(distances)


def ospa(distances: np.ndarray, cutoff: float = DEFAULT_CUTOFF_M) -> SetError:
    """OSPA of order 1 from a (num_pred, num_gt) distance matrix (metres): Hungarian assignment on the distances
    capped at `cutoff`, each unassigned entity on either side costs `cutoff`, divided by the larger count."""
    num_pred, num_gt = distances.shape
    if num_pred == 0 and num_gt == 0:
        return SetError(None, None, 0, 0, 0)
    if num_pred == 0 or num_gt == 0:
        return SetError(cutoff, None, num_pred, num_gt, 0)
    from scipy.optimize import linear_sum_assignment  # imported here: scipy.optimize takes ~0.5 s to import

    capped = np.minimum(distances, cutoff)
    rows, cols = linear_sum_assignment(capped)
    total = float(capped[rows, cols].sum()) + cutoff * abs(num_pred - num_gt)
    return SetError(total / max(num_pred, num_gt), float(distances[rows, cols].mean()), num_pred, num_gt, len(rows))


def _wall_segments(walls: Sequence[Wall]) -> np.ndarray:
    """Walls -> (N, 2, 2) float64 metres: the xy of a and b."""
    return np.array([[[w.ax, w.ay], [w.bx, w.by]] for w in walls], dtype=np.float64).reshape(-1, 2, 2)


def _centre_distances(pred: Sequence[Door | Window], gt: Sequence[Door | Window]) -> np.ndarray:
    """(num_pred, num_gt) xy distances (metres) between opening centres."""
    p = np.array([[o.position_x, o.position_y] for o in pred], dtype=np.float64).reshape(-1, 2)
    g = np.array([[o.position_x, o.position_y] for o in gt], dtype=np.float64).reshape(-1, 2)
    return np.hypot(*np.moveaxis(p[:, None] - g[None, :], -1, 0))


def _set_json(errors: SetError) -> dict[str, Any]:
    return {"error": _round(errors.error), "matched_mean": _round(errors.matched_mean),
            "num_pred": errors.num_pred, "num_gt": errors.num_gt, "num_matched": errors.num_matched}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)
