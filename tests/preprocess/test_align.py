"""Gravity and Manhattan alignment of synthetic rooms turned every way: tilted up to 90 degrees (y-up scans too) and
turned about their up axis, the floor comes back level within 2 degrees and the walls onto the axes within 2 degrees
(modulo 90), the floor at z = 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.preprocess.align import estimate_alignment, rotation_between, rotation_z
from spatialvlm_cli.synthetic import make_room, split_seed

UP = np.array([0.0, 0.0, 1.0])


def rotation_x(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])


def rotation_y(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])


def turned_scan(index: int, roll_deg: float, pitch_deg: float, yaw_deg: float) -> tuple[np.ndarray, np.ndarray, object]:
    """A held-out room's points turned by yaw about z, then pitch about y, then roll about x (degrees) and moved:
    (points (N, 3), the turn (3, 3), the room)."""
    room = make_room(split_seed("heldout", index))
    turn = rotation_x(math.radians(roll_deg)) @ rotation_y(math.radians(pitch_deg)) @ rotation_z(math.radians(yaw_deg))
    points = room.points.astype(np.float64) @ turn.T + np.array([3.0, -7.0, 1.5])
    return points, turn, room


def errors_deg(rotation: np.ndarray, turn: np.ndarray, room) -> tuple[float, float]:
    """Gravity error (angle of the room's up after both rotations from +z) and the largest wall angle off the axes
    (modulo 90 degrees), in degrees."""
    total = rotation @ turn
    gravity = math.degrees(math.acos(min(1.0, float((total @ UP) @ UP))))
    walls = []
    for wall in room.layout.walls:
        direction = total @ np.array([wall.bx - wall.ax, wall.by - wall.ay, 0.0])
        angle = math.degrees(math.atan2(direction[1], direction[0]))
        walls.append(abs(math.remainder(angle, 90.0)))
    return gravity, max(walls)


def _cases() -> list[tuple[int, float, float, float]]:
    rng = np.random.default_rng(17)
    cases = [(0, -90.0, 0.0, 30.0), (1, 90.0, 0.0, -120.0), (2, 0.0, 90.0, 75.0), (3, 0.0, 0.0, 0.0)]  # y/x-up
    cases += [(4 + k, *np.round(rng.uniform(-90.0, 90.0, 2), 1), round(rng.uniform(-180.0, 180.0), 1))
              for k in range(12)]
    return cases


@pytest.mark.parametrize(("index", "roll", "pitch", "yaw"), _cases())
def test_turned_rooms_come_back_level_with_axis_aligned_walls(index: int, roll: float, pitch: float, yaw: float):
    points, turn, room = turned_scan(index, roll, pitch, yaw)
    alignment = estimate_alignment(points)
    gravity, walls = errors_deg(alignment.rotation, turn, room)
    assert gravity < 2.0
    assert walls < 2.0
    aligned = alignment.apply(points)
    assert abs(float(np.percentile(aligned[:, 2], 2.0))) < 0.05  # the floor, the room's lowest surface, at z = 0
    assert float(np.percentile(aligned[:, 2], 99.0)) == pytest.approx(room.layout.walls[0].height, abs=0.15)
    np.testing.assert_allclose(np.percentile(aligned[:, :2], 0.5, axis=0), 0.0, atol=0.05)  # min corner at 0


def test_a_named_up_axis_overrides_detection():
    points, turn, room = turned_scan(5, -90.0, 0.0, 10.0)  # the room's up is the scan's +y
    alignment = estimate_alignment(points, up="y")
    np.testing.assert_allclose(alignment.up, [0.0, 1.0, 0.0], atol=0.01)
    assert errors_deg(alignment.rotation, turn, room)[0] < 2.0
    wrong = estimate_alignment(points, up="x")  # a wall's normal named as up: levelled onto that wall
    assert errors_deg(wrong.rotation, turn, room)[0] == pytest.approx(90.0, abs=2.0)
    with pytest.raises(InputError, match="must be one of x, -x, y, -y, z, -z"):
        estimate_alignment(points, up="up")


def test_rotation_between_by_hand():
    # +y to +z: a quarter turn about +x, so (x, y, z) -> (x, -z, y).
    np.testing.assert_allclose(rotation_between(np.array([0.0, 1.0, 0.0]), UP),
                               [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(rotation_between(UP, UP), np.eye(3))
    flip = rotation_between(-UP, UP)
    np.testing.assert_allclose(flip @ -UP, UP, atol=1e-12)
    np.testing.assert_allclose(flip @ flip.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(flip) == pytest.approx(1.0)


def test_too_few_points_or_no_walls_are_one_line_errors():
    with pytest.raises(InputError, match="cannot align a scan of 50 points"):
        estimate_alignment(np.random.default_rng(0).uniform(0, 1, (50, 3)))
    floor = np.random.default_rng(0).uniform(0, 4, (3000, 3)) * [1, 1, 0]
    with pytest.raises(InputError, match="shows no walls"):
        estimate_alignment(floor)
