"""Gravity and Manhattan alignment of a scan: walls axis-aligned, floor at z = 0, z up.

SpatialLM's models were trained on z-up scans whose walls run along x and y; many real scans are tilted, y-up or
turned. `estimate_alignment` finds, from the surface normals (open3d), the room's three orthogonal directions
(the Manhattan frame), decides which of them is up, levels the floor (gravity) and turns the walls onto the axes
(the Manhattan yaw):

  1. normals of a 5 cm voxel copy of the cloud; the dominant normal direction, then the dominant direction
     perpendicular to it, give the three axes;
  2. which axis is up, and its sign: furniture stands on the floor. Points off the outermost planes of the frame
     (floor, ceiling, outer walls) are grouped into connected blobs on a 10 cm grid; along the true up axis every
     blob reaches down to the lowest plane and none up to the highest, along a wall's axis only the pieces against
     that wall do. Two weaker cues decide rooms without furniture: the scan's own z (a tilted z-up scan's up is
     nearer +z than any wall normal) and a span along the axis that is a storey's height. A close call is logged
     as a warning naming --up, and `up` overrides all of it;
  3. gravity: the up axis refined as the principal direction of the horizontal surfaces' normals, and the
     smallest rotation taking it to +z;
  4. yaw: the wall normals' angle modulo 90 degrees (a circular mean of 4 x angle, refined on the normals near it),
     undone by a rotation about z within +-45 degrees;
  5. translation: the floor (median height of the upward-facing points near the bottom) to z = 0 and the cloud's
     min x, y corner to the origin.

Metres and radians throughout; rotations act on column vectors, p_aligned = R @ p + t.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from spatialvlm_cli.errors import InputError

log = logging.getLogger(__name__)

VOXEL_M = 0.05  # normals are estimated on this voxel copy: a real scan's millions of points add nothing to them
NORMAL_RADIUS_M = 0.3
NORMAL_NEIGHBOURS = 30
BLOB_VOXEL_M = 0.1  # the grid of the furniture-support test
STRUCTURE_SLAB_M = 0.15  # points this close to the frame's outermost planes are floor, ceiling or outer walls
SUPPORT_TOUCH_M = 0.25  # a blob reaching this close to the lowest plane stands on it
MIN_BLOB_CELLS = 5
PRIOR_WEIGHT = 0.25  # weight of the scan's own z against the support contrast (which lies in [-1, 1])
HEIGHT_BONUS = 0.2
ROOM_HEIGHT_M = (2.2, 3.6)  # a storey's floor-to-ceiling height
AMBIGUOUS_MARGIN = 0.25
MIN_POINTS = 100
UP_AXES = ("x", "-x", "y", "-y", "z", "-z")

_AXIS_TOLERANCE = math.radians(10.0)  # a normal within this angle of an axis belongs to it
_REFINE_TOLERANCE = math.radians(5.0)


@dataclass(frozen=True)
class Alignment:
    """p_aligned = rotation @ p + translation, for p (3,) metres in the scan's frame.

    rotation = Rz(yaw) @ gravity: gravity (3, 3) levels the floor (its smallest rotation taking the scan's up to
    +z); yaw (radians, in [-pi/4, pi/4]) then turns the walls onto x and y. translation (3,) metres puts the floor
    at z = 0 and the min x, y corner at the origin. up: the scan-frame unit vector (3,) found as up."""

    gravity: np.ndarray
    yaw: float
    translation: np.ndarray
    up: np.ndarray

    @property
    def rotation(self) -> np.ndarray:
        """Rz(yaw) @ gravity, (3, 3)."""
        return rotation_z(self.yaw) @ self.gravity

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) scan-frame metres -> (N, 3) aligned metres."""
        return points @ self.rotation.T + self.translation


def rotation_z(angle: float) -> np.ndarray:
    """(3, 3) counter-clockwise rotation by `angle` radians about +z."""
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking unit vector a to unit vector b (Rodrigues); for opposite vectors, a half
    turn about an axis perpendicular to a."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    axis = np.cross(a, b)
    sin, cos = float(np.linalg.norm(axis)), float(a @ b)
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        helper = np.eye(3)[int(np.argmin(np.abs(a)))]
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * cross + (1.0 - cos) * cross @ cross


def estimate_alignment(points: np.ndarray, up: str | None = None) -> Alignment:
    """The alignment of a room scan. points: (N, 3) metres (any orientation); up: one of UP_AXES to name the
    scan's up axis instead of detecting it. Raises InputError when the scan has too few points or no planes."""
    if up is not None and up not in UP_AXES:
        raise InputError(f"the up axis must be one of {', '.join(UP_AXES)}, got '{up}'")
    sample, normals = _normals(points)
    axes = _manhattan_axes(normals)
    if up is not None:
        named = np.zeros(3)
        named["xyz".index(up[-1])] = -1.0 if up.startswith("-") else 1.0
        up_axis = axes[int(np.argmax(np.abs(axes @ named)))]
        up_axis = up_axis if up_axis @ named > 0 else -up_axis
    else:
        up_axis = _choose_up(sample, axes)
    up_axis = _refine_axis(normals, up_axis)
    gravity = rotation_between(up_axis, np.array([0.0, 0.0, 1.0]))
    levelled_normals = normals @ gravity.T
    yaw = -_manhattan_yaw(levelled_normals)
    rotation = rotation_z(yaw) @ gravity
    aligned = sample @ rotation.T
    aligned_normals = normals @ rotation.T
    floor = _floor_height(aligned, aligned_normals)
    low = np.percentile(aligned[:, :2], 0.5, axis=0)
    translation = np.array([-low[0], -low[1], -floor])
    return Alignment(gravity=gravity, yaw=float(yaw), translation=translation, up=up_axis)


def _normals(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 5 cm voxel copy (M, 3) of the cloud and its unit normals (M, 3), unoriented."""
    # Here, not at the top: open3d takes ~1 s to import and `infer` imports preprocess/ to check its flags.
    import open3d as o3d

    if len(points) < MIN_POINTS:
        raise InputError(f"cannot align a scan of {len(points)} points (at least {MIN_POINTS} are needed)")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    cloud = cloud.voxel_down_sample(VOXEL_M)
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=NORMAL_RADIUS_M, max_nn=NORMAL_NEIGHBOURS))
    sample = np.asarray(cloud.points, dtype=np.float64)
    normals = np.asarray(cloud.normals, dtype=np.float64)
    keep = np.isfinite(normals).all(axis=1) & (np.linalg.norm(normals, axis=1) > 0.5)
    if keep.sum() < MIN_POINTS:
        raise InputError("cannot align the scan: too few points with a surface normal")
    return sample[keep], normals[keep]


def _dominant_direction(normals: np.ndarray, tolerance: float) -> np.ndarray:
    """The unit direction (sign-free) that the most normals lie within `tolerance` radians of: each normal votes
    for the candidates it is near (a sample of the normals themselves), the winner refined to the principal
    direction of its voters."""
    rng = np.random.default_rng(0)  # deterministic: the same scan always gives the same frame
    candidates = normals[rng.choice(len(normals), size=min(len(normals), 300), replace=False)]
    votes = (np.abs(normals @ candidates.T) > math.cos(tolerance)).sum(axis=0)
    direction = candidates[int(np.argmax(votes))]
    for limit in (tolerance, _REFINE_TOLERANCE):
        direction = _principal(normals[np.abs(normals @ direction) > math.cos(limit)], direction)
    return direction


def _principal(vectors: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The principal direction (unit, sign of `fallback`) of sign-free unit vectors (K, 3): the top eigenvector of
    their scatter matrix."""
    if len(vectors) < 3:
        return fallback
    _, eigenvectors = np.linalg.eigh(vectors.T @ vectors)
    direction = eigenvectors[:, -1]
    return direction if direction @ fallback >= 0 else -direction


def _manhattan_axes(normals: np.ndarray) -> np.ndarray:
    """Three orthonormal rows (3, 3): the dominant normal direction, then the dominant direction of the normals
    perpendicular to it (with its own perpendicular, Manhattan-style), then their cross product."""
    first = _dominant_direction(normals, _AXIS_TOLERANCE)
    side = normals[np.abs(normals @ first) < math.sin(_AXIS_TOLERANCE)]
    if len(side) < MIN_POINTS // 4:
        raise InputError("cannot align the scan: it shows no walls (no surfaces perpendicular to its main plane)")
    helper = np.eye(3)[int(np.argmin(np.abs(first)))]
    u = np.cross(first, helper)
    u /= np.linalg.norm(u)
    v = np.cross(first, u)
    angle = _angle_mod_90(np.arctan2(side @ v, side @ u))
    second = math.cos(angle) * u + math.sin(angle) * v
    return np.stack([first, second, np.cross(first, second)])


def _angle_mod_90(angles: np.ndarray) -> float:
    """The dominant angle of directions (K,) radians, modulo 90 degrees, in [-pi/4, pi/4]: the argument of the mean
    of exp(4i angle) over all of them, then over those within 10 degrees of it, twice (outliers and furniture at
    other angles drop out)."""
    if len(angles) == 0:
        raise InputError("cannot align the scan: it shows no walls")
    estimate = float(np.angle(np.exp(4j * angles).mean())) / 4
    for _ in range(2):
        offset = np.remainder(angles - estimate + math.pi / 4, math.pi / 2) - math.pi / 4
        near = offset[np.abs(offset) < _AXIS_TOLERANCE]
        if len(near):
            estimate += float(near.mean())
    return math.remainder(estimate, math.pi / 2)


def _manhattan_yaw(levelled_normals: np.ndarray) -> float:
    """The walls' angle modulo 90 degrees (radians, [-pi/4, pi/4]) from the near-horizontal normals of a levelled
    cloud."""
    walls = levelled_normals[np.abs(levelled_normals[:, 2]) < math.sin(_AXIS_TOLERANCE)]
    if len(walls) < MIN_POINTS // 4:
        raise InputError("cannot align the scan: it shows no walls (no vertical surfaces once levelled)")
    return _angle_mod_90(np.arctan2(walls[:, 1], walls[:, 0]))


def _refine_axis(normals: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """`axis` refined as the principal direction of the normals within 10, then 5 degrees of it."""
    for limit in (_AXIS_TOLERANCE, _REFINE_TOLERANCE):
        axis = _principal(normals[np.abs(normals @ axis) > math.cos(limit)], axis)
    return axis / np.linalg.norm(axis)


def _choose_up(points: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Which signed axis of the frame (3, 3) is up: the support contrast, plus PRIOR_WEIGHT times the axis's z,
    plus HEIGHT_BONUS when the scan's span along the axis is a room's height. Logs a warning when the runner-up
    comes within AMBIGUOUS_MARGIN."""
    framed = points @ axes.T
    contrast = _support_contrast(framed)
    span = np.percentile(framed, 99.5, axis=0) - np.percentile(framed, 0.5, axis=0)
    storey = (span >= ROOM_HEIGHT_M[0]) & (span <= ROOM_HEIGHT_M[1])
    scores = sorted(((contrast[i] * sign + PRIOR_WEIGHT * sign * axes[i, 2] + HEIGHT_BONUS * storey[i], i, sign)
                     for i in range(3) for sign in (1, -1)), reverse=True)
    (best_score, best, sign), (second_score, *_) = scores[0], scores[1]
    if best_score - second_score < AMBIGUOUS_MARGIN:
        log.warning("the scan's up direction is uncertain (%s chosen); if the aligned scan lies on its side, name "
                    "the up axis (--up)", _describe(sign * axes[best]))
    return sign * axes[best]


def _describe(direction: np.ndarray) -> str:
    """'+y' for a direction within 10 degrees of a scan axis, else its rounded components."""
    index = int(np.argmax(np.abs(direction)))
    if abs(direction[index]) > math.cos(_AXIS_TOLERANCE):
        return f"{'+' if direction[index] > 0 else '-'}{'xyz'[index]}"
    return "(" + ", ".join(f"{value:.2f}" for value in direction) + ")"


def _support_contrast(framed: np.ndarray) -> np.ndarray:
    """Per axis (3,) of points (N, 3) in the Manhattan frame: the share of the off-structure points whose blob
    reaches the axis's lowest plane minus the share whose blob reaches its highest, in [-1, 1]; 0 when nothing
    stands off the outermost planes."""
    from scipy import ndimage  # here, not at the top: scipy loads in ~0.3 s and infer imports preprocess/ early

    low = np.percentile(framed, 0.5, axis=0)
    high = np.percentile(framed, 99.5, axis=0)
    inside = ((framed > low + STRUCTURE_SLAB_M) & (framed < high - STRUCTURE_SLAB_M)).all(axis=1)
    if inside.sum() < 10:
        return np.zeros(3)
    cells = np.floor((framed[inside] - low) / BLOB_VOXEL_M).astype(np.int64)
    grid = np.zeros(cells.max(axis=0) + 1, dtype=bool)
    grid[tuple(cells.T)] = True
    labels, count = ndimage.label(grid, structure=np.ones((3, 3, 3)))
    point_label = labels[tuple(cells.T)]
    index = np.arange(1, count + 1)
    sizes = np.bincount(point_label, minlength=count + 1)[1:].astype(np.float64)
    reach = SUPPORT_TOUCH_M / BLOB_VOXEL_M
    top = (high - low) / BLOB_VOXEL_M - reach - 1
    touches_low = np.stack([np.asarray(ndimage.minimum(cells[:, axis], point_label, index)) <= reach
                            for axis in range(3)], axis=1)  # (blobs, 3)
    touches_high = np.stack([np.asarray(ndimage.maximum(cells[:, axis], point_label, index)) >= top[axis]
                             for axis in range(3)], axis=1)
    # Objects only: a blob spanning the frame from end to end along an axis is structure (the inner walls of an L,
    # furniture merged with them), and a few cells are the stray remains of a sparse wall.
    objects = (sizes >= MIN_BLOB_CELLS) & ~(touches_low & touches_high).any(axis=1)
    if not objects.any():
        return np.zeros(3)
    weight = sizes[objects] / sizes[objects].sum()
    return weight @ touches_low[objects] - weight @ touches_high[objects]


def _floor_height(aligned: np.ndarray, normals: np.ndarray) -> float:
    """The floor's z (metres): the median z of upward-facing points within 10 cm of the lowest such surface."""
    flat = np.abs(normals[:, 2]) > math.cos(_AXIS_TOLERANCE)
    heights = aligned[flat, 2] if flat.sum() >= 10 else aligned[:, 2]
    bottom = float(np.percentile(heights, 1.0))
    return float(np.median(heights[heights < bottom + 0.1]))
