"""Batched 2-D convex polygon geometry in numpy: Sutherland–Hodgman clipping and shoelace areas.

Polygons are padded arrays: vertices (N, V, 2) float64 with counts (N,) int64; rows beyond a polygon's count are
ignored. Every function works on N polygon pairs at once, with no Python loop over pairs.

The clipping follows bbox 0.9.4's `polygon_intersection` step by step (same inside test `cross >= 0`, same
output order), so its areas agree with that package's after its 5-decimal rounding. One difference, on purpose:
the crossing point is taken along the clipped segment, s + t (e - s) with t = d_s / (d_s - d_e) in [0, 1], where
bbox intersects two infinite lines. bbox's form divides by ~0 when a segment runs along a clip edge (vertices of
one polygon within rounding error of the other's edges, e.g. a box and the same box turned by pi) and then
returns arbitrary areas (IoUs of 0.0 or 1.6 for identical footprints); this form stays on the segment.
"""

from __future__ import annotations

import numpy as np


def cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z component of the cross product of 2-D vectors: (..., 2), (..., 2) -> (...)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def polygon_area(vertices: np.ndarray, counts: np.ndarray, signed: bool = False) -> np.ndarray:
    """Shoelace area of N padded polygons: vertices (N, V, 2), counts (N,) -> (N,) float64.

    signed=True keeps the sign: positive for counter-clockwise vertex order."""
    n, width = vertices.shape[:2]
    if width == 0:
        return np.zeros(n)
    index = np.arange(width)
    valid = index[None, :] < counts[:, None]  # (N, V)
    following = np.where(index[None, :] + 1 < counts[:, None], index[None, :] + 1, 0)  # (N, V)
    nxt = np.take_along_axis(vertices, following[..., None], axis=1)  # (N, V, 2)
    x, y = vertices[..., 0], vertices[..., 1]
    twice = (np.where(valid, x * nxt[..., 1], 0.0).sum(axis=1)
             - np.where(valid, nxt[..., 0] * y, 0.0).sum(axis=1))
    return twice / 2 if signed else np.abs(twice) / 2


def clip_convex(subject: np.ndarray, subject_counts: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersect N subject polygons with N convex clip polygons (Sutherland–Hodgman).

    subject: (N, V, 2) float64, padded, with subject_counts (N,); any vertex order.
    clip: (N, M, 2) float64, convex, counter-clockwise (its left side is inside; boundary points count as inside).
    Returns the intersection polygons (N, V', 2) and their vertex counts (N,); a count below 3 means an empty or
    degenerate intersection (area 0)."""
    vertices = np.asarray(subject, dtype=np.float64)
    counts = np.asarray(subject_counts, dtype=np.int64)
    n = vertices.shape[0]
    rows = np.arange(n)
    for j in range(clip.shape[1]):
        if vertices.shape[1] == 0:
            break
        edge_start = clip[:, j - 1][:, None, :]  # (N, 1, 2); j = 0 pairs the last clip vertex with the first
        edge_end = clip[:, j][:, None, :]
        index = np.arange(vertices.shape[1])
        valid = index[None, :] < counts[:, None]  # (N, V)
        previous_index = np.where(index[None, :] == 0, np.maximum(counts[:, None] - 1, 0), index[None, :] - 1)
        current = vertices
        previous = np.take_along_axis(vertices, previous_index[..., None], axis=1)  # (N, V, 2)
        edge = edge_end - edge_start
        current_side = cross2(edge, current - edge_start)  # (N, V): >= 0 is inside (left of the edge)
        previous_side = cross2(edge, previous - edge_start)
        current_inside, previous_inside = current_side >= 0, previous_side >= 0
        with np.errstate(divide="ignore", invalid="ignore"):  # only entries whose sides differ are kept
            along = (previous_side / (previous_side - current_side))[..., None]
            crossing = previous + along * (current - previous)  # (N, V, 2)

        # bbox's loop appends, per input vertex, [crossing point if the side changes, the vertex if inside].
        candidates = np.stack([crossing, current], axis=2).reshape(n, -1, 2)  # (N, 2V, 2)
        keep = np.stack([valid & (current_inside != previous_inside), valid & current_inside], axis=2).reshape(n, -1)
        counts = keep.sum(axis=1)
        slot = np.cumsum(keep, axis=1) - 1
        clipped = np.zeros((n, int(counts.max(initial=0)), 2))
        row_index = np.broadcast_to(rows[:, None], keep.shape)
        clipped[row_index[keep], slot[keep]] = candidates[keep]
        vertices = clipped
    return vertices, counts


def convex_intersection_area(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Area of the intersection of N pairs of convex quadrilaterals (or any convex M-gons).

    subject, clip: (N, M, 2) float64, either vertex order (reversed to counter-clockwise where needed).
    Returns (N,) float64 square units."""
    full = np.full(subject.shape[0], subject.shape[1], dtype=np.int64)
    subject = _counter_clockwise(subject, full)
    clip = _counter_clockwise(clip, np.full(clip.shape[0], clip.shape[1], dtype=np.int64))
    vertices, counts = clip_convex(subject, full, clip)
    return np.where(counts >= 3, polygon_area(vertices, counts), 0.0)


def _counter_clockwise(polygons: np.ndarray, counts: np.ndarray) -> np.ndarray:
    clockwise = polygon_area(polygons, counts, signed=True) < 0
    return np.where(clockwise[:, None, None], polygons[:, ::-1], polygons)
