"""Procedural rooms: determinism, seed splits, SpatialLM wall geometry, canonical order, openings, boxes, points.

Every check works from the returned arrays and layout alone: the room frame is recovered from the walls (the yaw
is the wall directions' angle modulo 90 deg, the translation does not matter for any property checked here)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.layout import Layout, format_layout, parse_layout
from spatialvlm_cli.synthetic import (
    FURNITURE,
    HELDOUT_SEED_BASE,
    TRAIN_SEED_BASE,
    SyntheticRoom,
    make_room,
    split_seed,
    write_ply,
)

REPO = Path(__file__).resolve().parents[2]
SEEDS = [split_seed("train", i) for i in range(100)] + [split_seed("heldout", i) for i in range(20)]
NOISE_TOL_M = 0.03  # 6 sigma of the 5 mm noise


@pytest.fixture(scope="module")
def rooms() -> dict[int, SyntheticRoom]:
    return {seed: make_room(seed) for seed in SEEDS}


def _yaw(layout: Layout) -> float:
    """The room's yaw (radians, in [-45, 45) deg) from the direction of wall 0 (walls are at right angles)."""
    wall = layout.walls[0]
    angle = math.atan2(wall.by - wall.ay, wall.bx - wall.ax)
    return (angle + math.pi / 4) % (math.pi / 2) - math.pi / 4


def _unturn(xy: np.ndarray, yaw: float) -> np.ndarray:
    """(N, 2) world xy turned by -yaw: axis-aligned room axes (the translation is kept)."""
    cos, sin = math.cos(yaw), math.sin(yaw)
    return xy @ np.array([[cos, -sin], [sin, cos]])


def _frame(room: SyntheticRoom) -> dict[str, np.ndarray | float]:
    """Room-frame geometry recovered from the walls: centre-line corners (K, 2), outward normals (K, 2) of the sides,
    inner corners (K, 2), yaw and floor z."""
    layout = room.layout
    yaw = _yaw(layout)
    centre = _unturn(np.array([[w.ax, w.ay] for w in layout.walls]), yaw)
    sides = np.roll(centre, -1, axis=0) - centre
    directions = sides / np.linalg.norm(sides, axis=1, keepdims=True)
    normals = np.stack([directions[:, 1], -directions[:, 0]], axis=1)
    thickness = layout.walls[0].thickness
    inner = centre - (np.roll(normals, 1, axis=0) + normals) * (thickness / 2)
    return {"yaw": yaw, "centre": centre, "normals": normals, "inner": inner, "floor": layout.walls[0].az}


def _signed_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _inside(polygon: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(N,) bool: points strictly inside a simple polygon (K, 2), by ray casting along +x."""
    inside = np.zeros(len(xy), dtype=bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y0 > xy[:, 1]) != (y1 > xy[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (xy[:, 1] - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (xy[:, 0] < x_at)
    return inside


def test_split_seeds_are_disjoint_ranges():
    assert split_seed("train", 0) == TRAIN_SEED_BASE and split_seed("heldout", 0) == HELDOUT_SEED_BASE
    assert split_seed("train", 999_999) < split_seed("heldout", 0)
    assert split_seed("heldout", 7) == HELDOUT_SEED_BASE + 7
    for split, index in (("test", 0), ("train", -1), ("heldout", -3), ("train", 1_000_000), ("train", 1.5)):
        with pytest.raises(ValueError):
            split_seed(split, index)


def test_same_seed_gives_identical_rooms_and_different_seeds_differ(rooms):
    for seed in SEEDS[:5]:
        again = make_room(seed)
        assert np.array_equal(again.points, rooms[seed].points)
        assert np.array_equal(again.colours, rooms[seed].colours)
        assert again.layout == rooms[seed].layout
    layouts = [format_layout(rooms[seed].layout) for seed in SEEDS]
    assert len(set(layouts)) == len(layouts)
    assert not np.array_equal(rooms[SEEDS[0]].points[:100], rooms[SEEDS[1]].points[:100])


def test_arrays_have_the_documented_types(rooms):
    for room in rooms.values():
        assert room.points.dtype == np.float32 and room.points.shape[1] == 3
        assert room.colours.dtype == np.uint8 and room.colours.shape == room.points.shape


def test_walls_form_a_closed_counter_clockwise_loop_of_right_angles(rooms):
    for room in rooms.values():
        walls = room.layout.walls
        assert len(walls) in (4, 6)
        assert [w.id for w in walls] == list(range(len(walls)))
        for wall, following in zip(walls, walls[1:] + walls[:1], strict=True):
            assert (wall.bx, wall.by, wall.bz) == (following.ax, following.ay, following.az)
            assert wall.az == wall.bz == walls[0].az
            assert (wall.height, wall.thickness) == (walls[0].height, walls[0].thickness)
        frame = _frame(room)
        assert _signed_area(frame["centre"]) > 0
        normals = frame["normals"]
        assert np.allclose(np.sum(normals * np.roll(normals, -1, axis=0), axis=1), 0.0, atol=1e-9)
        assert walls[0].thickness in (0.1, 0.15, 0.2, 0.25) and 2.4 <= walls[0].height <= 3.2


def test_room_size_and_shape(rooms):
    shapes = {4: 0, 6: 0}
    for room in rooms.values():
        inner = _frame(room)["inner"]
        width, depth = inner.max(axis=0) - inner.min(axis=0)
        assert 2.5 - 1e-9 <= width <= 8.0 + 1e-9 and 2.5 - 1e-9 <= depth <= 7.0 + 1e-9
        sides = np.roll(inner, -1, axis=0) - inner
        turns = np.cross(np.roll(sides, 1, axis=0), sides)  # > 0 at a convex corner, < 0 at a reflex one
        shapes[len(inner)] += 1
        if len(inner) == 4:
            assert np.all(turns > 0)
        else:  # an L: one reflex corner; each arm (the sides two steps from it) at least 1.5 m wide
            (reflex,) = np.flatnonzero(turns < 0)
            lengths = np.linalg.norm(sides, axis=1)
            assert lengths[(reflex - 2) % 6] >= 1.5 - 1e-9 and lengths[(reflex + 1) % 6] >= 1.5 - 1e-9
    assert 0.15 <= shapes[6] / len(rooms) <= 0.45


def test_most_rooms_are_axis_aligned_and_those_have_axis_aligned_walls(rooms):
    turned = 0
    for room in rooms.values():
        yaw = _yaw(room.layout)
        assert abs(yaw) <= math.radians(30) + 1e-9
        if yaw == 0.0:
            assert all(w.ax == w.bx or w.ay == w.by for w in room.layout.walls)
            assert all(b.angle_z in (0.0, math.pi / 2) for b in room.layout.bboxes)
        else:
            turned += 1
    assert 0.05 <= turned / len(rooms) <= 0.3


def test_walls_start_at_the_corner_nearest_the_min_corner(rooms):
    for room in rooms.values():
        inner = _frame(room)["inner"]
        distance = np.linalg.norm(inner - inner.min(axis=0), axis=1)
        assert int(np.argmin(distance)) == 0


def test_openings_sit_on_their_wall_centre_line_in_canonical_order(rooms):
    for room in rooms.values():
        layout = room.layout
        floor = layout.walls[0].az
        assert 1 <= len(layout.doors) <= 2 and 0 <= len(layout.windows) <= 3
        for group in (layout.doors, layout.windows):
            assert [o.id for o in group] == list(range(len(group)))
            keys = []
            for o in group:
                wall = layout.walls[o.wall_id]
                a, b = np.array([wall.ax, wall.ay]), np.array([wall.bx, wall.by])
                length = float(np.linalg.norm(b - a))
                direction = (b - a) / length
                rel = np.array([o.position_x, o.position_y]) - a
                assert abs(float(np.cross(direction, rel))) < 1e-6
                along = float(rel @ direction)
                # >= 0.3 m from the inner face's ends, which lie within half a thickness of the centre line's.
                margin = 0.3 - wall.thickness / 2 - 1e-9
                assert along - o.width / 2 >= margin and along + o.width / 2 <= length - margin
                keys.append((o.wall_id, along))
            assert keys == sorted(keys)
        for o in layout.doors:
            assert 0.75 <= o.width <= 1.0 and o.position_z - o.height / 2 == pytest.approx(floor, abs=1e-9)
            assert 2.0 <= o.height <= 2.2
        for o in layout.windows:
            bottom, top = o.position_z - o.height / 2 - floor, o.position_z + o.height / 2 - floor
            assert 0.8 <= o.width <= 1.8 and 0.7 - 1e-9 <= bottom <= 1.0 + 1e-9 and 1.8 - 1e-9 <= top <= 2.3 + 1e-9
        spans_by_wall: dict[int, list[tuple[float, float]]] = {}
        for o in layout.doors + layout.windows:
            wall = layout.walls[o.wall_id]
            along = math.hypot(o.position_x - wall.ax, o.position_y - wall.ay)
            spans_by_wall.setdefault(o.wall_id, []).append((along - o.width / 2, along + o.width / 2))
        for spans in spans_by_wall.values():
            spans.sort()
            assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))


def test_no_points_in_the_openings(rooms):
    for room in rooms.values():
        layout = room.layout
        for o in layout.doors + layout.windows:
            wall = layout.walls[o.wall_id]
            a, b = np.array([wall.ax, wall.ay]), np.array([wall.bx, wall.by])
            direction = (b - a) / np.linalg.norm(b - a)
            rel = room.points[:, :2].astype(np.float64) - np.array([o.position_x, o.position_y])
            along, across = rel @ direction, rel @ np.array([-direction[1], direction[0]])  # across: + inwards
            in_hole = ((np.abs(along) < o.width / 2 - NOISE_TOL_M) & (np.abs(across) < wall.thickness / 2 + 0.1)
                       & (np.abs(room.points[:, 2] - o.position_z) < o.height / 2 - NOISE_TOL_M))
            assert not in_hole.any()
            # The wall face just beside the opening is scanned.
            beside = ((np.abs(along) > o.width / 2 + 0.05) & (np.abs(along) < o.width / 2 + 0.3)
                      & (np.abs(across - wall.thickness / 2) < NOISE_TOL_M))
            assert beside.sum() > 0


def test_points_lie_inside_the_room(rooms):
    for room in rooms.values():
        frame = _frame(room)
        xy = _unturn(room.points[:, :2].astype(np.float64), frame["yaw"])
        # The inner polygon grown by the noise tolerance (well inside the outer wall polygon).
        grown = frame["inner"] + (np.roll(frame["normals"], 1, axis=0) + frame["normals"]) * NOISE_TOL_M
        outer = frame["centre"] + (np.roll(frame["normals"], 1, axis=0) + frame["normals"]) * (
            room.layout.walls[0].thickness / 2)
        assert _inside(grown, xy).all() and _inside(outer, xy).all()
        z = room.points[:, 2] - frame["floor"]
        assert z.min() > -NOISE_TOL_M and z.max() < room.layout.walls[0].height + NOISE_TOL_M


def test_about_a_fifth_of_the_rooms_have_no_ceiling(rooms):
    rectangles = missing = 0
    for room in rooms.values():
        if len(room.layout.walls) != 4:
            continue
        frame = _frame(room)
        xy = _unturn(room.points[:, :2].astype(np.float64), frame["yaw"])
        inner = frame["inner"]
        # Away from the walls (whose faces reach the ceiling height), near the ceiling.
        central = np.all((xy > inner.min(axis=0) + 0.3) & (xy < inner.max(axis=0) - 0.3), axis=1)
        high = room.points[:, 2] - frame["floor"] > room.layout.walls[0].height - NOISE_TOL_M
        rectangles += 1
        missing += not np.any(central & high)
    assert 0.08 <= missing / rectangles <= 0.35


def test_boxes_are_on_the_floor_inside_and_apart_in_canonical_order(rooms):
    against_wall = total = 0
    for room in rooms.values():
        frame = _frame(room)
        boxes = room.layout.bboxes
        assert 2 <= len(boxes) <= 8 and [b.id for b in boxes] == list(range(len(boxes)))
        centres = _unturn(np.array([[b.position_x, b.position_y] for b in boxes]), frame["yaw"])
        assert [tuple(c) for c in centres] == sorted(tuple(c) for c in centres)
        rects = []
        for box, (x, y) in zip(boxes, centres, strict=True):
            nominal = np.array(FURNITURE[box.class_name])
            scale = np.array([box.scale_x, box.scale_y, box.scale_z])
            assert np.all(scale[:2] >= nominal[:2] * 0.85 - 1e-9) and np.all(scale <= nominal * 1.15 + 1e-9)
            assert box.position_z - frame["floor"] == pytest.approx(box.scale_z / 2, abs=1e-9)
            assert box.scale_z < room.layout.walls[0].height
            local_yaw = box.angle_z - frame["yaw"]
            assert min(abs(local_yaw), abs(local_yaw - math.pi / 2)) < 1e-9
            hx, hy = (box.scale_x / 2, box.scale_y / 2) if abs(local_yaw) < 1e-9 else (box.scale_y / 2,
                                                                                        box.scale_x / 2)
            corners = np.array([[x - hx, y - hy], [x + hx, y - hy], [x + hx, y + hy], [x - hx, y + hy]])
            assert _inside(frame["inner"], corners).all()
            rects.append((x - hx, y - hy, x + hx, y + hy))
            # Against a wall: a footprint side within 10 cm of an inner side's line, overlapping it along the side.
            inner, total = frame["inner"], total + 1
            for p, q in zip(inner, np.roll(inner, -1, axis=0), strict=True):
                along_y = abs(p[0] - q[0]) < 1e-9 and min(abs(x - hx - p[0]), abs(x + hx - p[0])) < 0.1
                along_x = abs(p[1] - q[1]) < 1e-9 and min(abs(y - hy - p[1]), abs(y + hy - p[1])) < 0.1
                if ((along_y and max(y - hy, min(p[1], q[1])) < min(y + hy, max(p[1], q[1])))
                        or (along_x and max(x - hx, min(p[0], q[0])) < min(x + hx, max(p[0], q[0])))):
                    against_wall += 1
                    break
        for i, a in enumerate(rects):
            for b in rects[i + 1:]:
                assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    assert 0.45 <= against_wall / total <= 0.75


def test_layout_text_round_trips(rooms):
    for room in rooms.values():
        parsed, issues = parse_layout(format_layout(room.layout) + "\n")
        assert issues == [] and parsed == room.layout


def test_point_counts_and_density(rooms):
    counts, densities = [], []
    for room in rooms.values():
        layout = room.layout
        inner = _frame(room)["inner"]
        height = layout.walls[0].height
        perimeter = float(np.sum(np.linalg.norm(np.roll(inner, -1, axis=0) - inner, axis=1)))
        box_area = sum(b.scale_x * b.scale_y + 2 * (b.scale_x + b.scale_y) * b.scale_z for b in layout.bboxes)
        area = 2 * _signed_area(inner) + perimeter * height + box_area
        counts.append(len(room.points))
        densities.append(len(room.points) / area)
    assert min(counts) >= 2_000 and max(counts) <= 30_000 and 6_000 <= np.median(counts) <= 15_000
    # About 90 points/m² drawn; holes, openings, the floor under boxes and missing ceilings take some away.
    assert 70 <= np.mean(densities) <= 95
    assert np.std(densities) > 5  # uneven from room to room


def test_colours_vary_per_room_and_per_point(rooms):
    means = np.array([room.colours.reshape(-1, 3).mean(axis=0) for room in rooms.values()])
    assert np.std(means, axis=0).min() > 3
    assert all(room.colours.astype(float).std(axis=0).min() > 3 for room in rooms.values())


def test_write_ply_is_binary_little_endian_float_xyz_uchar_rgb(tmp_path: Path, rooms):
    room = rooms[SEEDS[0]]
    path = tmp_path / "room.ply"
    write_ply(path, room.points, room.colours)
    data = path.read_bytes()
    header, body = data.split(b"end_header\n", 1)
    assert header.decode("ascii").splitlines()[:3] == ["ply", "format binary_little_endian 1.0",
                                                       f"element vertex {len(room.points)}"]
    rows = np.frombuffer(body, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    assert np.array_equal(rows["xyz"], room.points) and np.array_equal(rows["rgb"], room.colours)
    with pytest.raises(ValueError):
        write_ply(path, room.points, room.colours[:-1])


def test_script_writes_numbered_rooms_of_a_split(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_scenes.py"), "--out", str(tmp_path),
                             "--split", "train", "--start", "5", "--count", "2", "--prefix", "t"],
                            capture_output=True, text=True, check=True, cwd=REPO)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t_005.ply", "t_005.txt", "t_006.ply", "t_006.txt"]
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["t_005", "t_006"]
    expected = make_room(split_seed("train", 6))
    assert (tmp_path / "t_006.txt").read_text() == format_layout(expected.layout) + "\n"
    assert f"{len(expected.points)} points, {len(expected.layout.walls)} walls" in result.stdout.splitlines()[1]
