"""Procedural indoor rooms: a point cloud (.ply) and its ground-truth layout (.txt, SpatialLM's language, metres).

Deterministic by seed. Each room: rectangular walls with thickness, doors and windows cut into them (holes in the
scan), furniture boxes, points sampled on floor, ceiling, inner wall faces and box faces with noise and colours,
the whole scene shifted to an arbitrary origin so the min-corner bookkeeping is exercised.

    python scripts/make_scenes.py --out scenes --count 3 --seed 0
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window, format_layout

# Furniture classes (SpatialLM's names) with typical (scale_x, scale_y, scale_z) in metres.
FURNITURE = {
    "bed": (2.0, 1.6, 0.5),
    "sofa": (2.0, 0.9, 0.8),
    "chair": (0.5, 0.5, 0.9),
    "dining_table": (1.4, 0.8, 0.75),
    "nightstand": (0.5, 0.4, 0.55),
    "wardrobe": (1.2, 0.6, 2.0),
    "coffee_table": (1.0, 0.6, 0.45),
    "desk": (1.2, 0.6, 0.75),
    "bookcase": (0.9, 0.35, 1.8),
    "tv_cabinet": (1.6, 0.45, 0.5),
}
WALL_COLOUR = (200, 196, 188)
FLOOR_COLOUR = (140, 105, 75)
CEILING_COLOUR = (235, 235, 235)
POINTS_PER_M2 = 350.0
NOISE_M = 0.004


@dataclass
class Opening:
    """A door or window on wall `wall_index`: centre offset along the wall (m), width, bottom and top heights."""

    wall_index: int
    offset_m: float
    width_m: float
    bottom_m: float
    top_m: float
    is_door: bool


def _sample_rect(rng: np.random.Generator, origin: np.ndarray, u: np.ndarray, v: np.ndarray, density: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points on the parallelogram origin + a*u + b*v, a, b in [0, 1]. Returns points (n,3), (a, b) (n,2)."""
    area = float(np.linalg.norm(np.cross(u, v)))
    count = rng.poisson(area * density)
    ab = rng.random((count, 2))
    return origin + ab[:, :1] * u + ab[:, 1:] * v, ab


def _coloured(points: np.ndarray, colour: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    jitter = rng.normal(0, 6, size=(len(points), 3))
    return np.clip(np.asarray(colour) + jitter, 0, 255).astype(np.uint8)


def make_room(seed: int) -> tuple[np.ndarray, np.ndarray, Layout]:
    """One synthetic room. Returns points (N, 3) float32 metres, colours (N, 3) uint8, ground-truth layout (metres)."""
    rng = np.random.default_rng(seed)
    width, depth = rng.uniform(3.0, 6.5), rng.uniform(3.0, 5.5)
    height, thickness = rng.uniform(2.5, 3.0), rng.choice([0.1, 0.15, 0.2])
    origin = np.array([rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(-1.5, 0.5)])

    # Inner corners counter-clockwise; the wall entity is the centre line, half a thickness outside the inner face.
    inner = np.array([[0, 0], [width, 0], [width, depth], [0, depth]], dtype=float)
    outward = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float)
    walls: list[Wall] = []
    for i in range(4):
        a, b = inner[i], inner[(i + 1) % 4]
        direction = (b - a) / np.linalg.norm(b - a)
        shift = outward[i] * thickness / 2
        # Extend the centre line by half a thickness at both ends so that walls meet at the corners.
        a_c, b_c = a + shift - direction * thickness / 2, b + shift + direction * thickness / 2
        walls.append(Wall(id=i, ax=a_c[0], ay=a_c[1], az=0.0, bx=b_c[0], by=b_c[1], bz=0.0,
                          height=float(height), thickness=float(thickness)))

    openings: list[Opening] = []
    for is_door, count in ((True, rng.integers(1, 3)), (False, rng.integers(1, 3))):
        for _ in range(count):
            for _attempt in range(20):
                wall_index = int(rng.integers(0, 4))
                length = float(np.linalg.norm(inner[(wall_index + 1) % 4] - inner[wall_index]))
                w = rng.uniform(0.8, 1.0) if is_door else rng.uniform(0.9, 1.6)
                if length < w + 0.8:
                    continue
                offset = rng.uniform(0.4 + w / 2, length - 0.4 - w / 2)
                if is_door:
                    bottom, top = 0.0, rng.uniform(2.0, 2.15)
                else:
                    bottom, top = rng.uniform(0.8, 1.0), rng.uniform(1.9, 2.2)
                clash = any(o.wall_index == wall_index and abs(o.offset_m - offset) < (o.width_m + w) / 2 + 0.2
                            for o in openings)
                if not clash:
                    openings.append(Opening(wall_index, offset, w, bottom, top, is_door))
                    break

    # (class, centre (3,) room frame, yaw rad, scale (3,), footprint half-extent (2,) in the room's axes)
    boxes: list[tuple[str, np.ndarray, float, np.ndarray, np.ndarray]] = []
    classes = list(FURNITURE)
    for _ in range(int(rng.integers(3, 7))):
        for _attempt in range(30):
            name = classes[int(rng.integers(0, len(classes)))]
            scale = np.asarray(FURNITURE[name]) * rng.uniform(0.9, 1.1, size=3)
            yaw = float(rng.choice([0.0, math.pi / 2]))
            half = (scale[:2] if yaw == 0.0 else scale[[1, 0]]) / 2
            if np.any(half * 2 + 0.3 > [width, depth]):
                continue
            centre_xy = rng.uniform(half + 0.1, [width, depth] - half - 0.1)
            if not any(np.all(np.abs(centre_xy - c[:2]) < half + h) for _, c, _, _, h in boxes):
                boxes.append((name, np.array([*centre_xy, scale[2] / 2]), yaw, scale, half))
                break

    point_parts, colour_parts = [], []

    def add(points: np.ndarray, colour: tuple[int, int, int]) -> None:
        point_parts.append(points)
        colour_parts.append(_coloured(points, colour, rng))

    floor_pts, _ = _sample_rect(rng, np.zeros(3), np.array([width, 0, 0]), np.array([0, depth, 0]), POINTS_PER_M2)
    add(floor_pts, FLOOR_COLOUR)
    ceiling_pts, _ = _sample_rect(rng, np.array([0, 0, height]), np.array([width, 0, 0]), np.array([0, depth, 0]),
                                  POINTS_PER_M2 * 0.5)
    add(ceiling_pts, CEILING_COLOUR)
    for i in range(4):
        a, b = inner[i], inner[(i + 1) % 4]
        length = float(np.linalg.norm(b - a))
        face, ab = _sample_rect(rng, np.array([*a, 0.0]), np.array([*(b - a), 0.0]), np.array([0, 0, height]),
                                POINTS_PER_M2)
        along, up = ab[:, 0] * length, ab[:, 1] * height
        keep = np.ones(len(face), dtype=bool)
        for o in (o for o in openings if o.wall_index == i):
            keep &= ~((np.abs(along - o.offset_m) < o.width_m / 2) & (up > o.bottom_m) & (up < o.top_m))
        add(face[keep], WALL_COLOUR)
    for name, centre, yaw, scale, _ in boxes:
        rotation = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
        colour = tuple(int(c) for c in np.random.default_rng(classes.index(name)).integers(40, 220, size=3))
        for axis in range(3):
            for sign in (-1.0, 1.0):
                if axis == 2 and sign < 0:
                    continue  # the bottom face is on the floor, unseen
                u_axis, v_axis = [k for k in range(3) if k != axis]
                origin_local = -scale / 2
                origin_local[axis] = sign * scale[axis] / 2
                u = np.zeros(3)
                v = np.zeros(3)
                u[u_axis], v[v_axis] = scale[u_axis], scale[v_axis]
                pts, _ = _sample_rect(rng, origin_local, u, v, POINTS_PER_M2 * 2)
                add(pts @ rotation.T + centre, colour)

    points = np.concatenate(point_parts) + rng.normal(0, NOISE_M, size=(sum(map(len, point_parts)), 3))
    colours = np.concatenate(colour_parts)

    doors, windows = [], []
    for o in openings:
        wall = walls[o.wall_index]
        a, b = np.array([wall.ax, wall.ay]), np.array([wall.bx, wall.by])
        direction = (b - a) / np.linalg.norm(b - a)
        centre = a + direction * (o.offset_m + thickness / 2)
        fields = dict(wall_id=o.wall_index, position_x=centre[0], position_y=centre[1],
                      position_z=(o.bottom_m + o.top_m) / 2, width=o.width_m, height=o.top_m - o.bottom_m)
        if o.is_door:
            doors.append(Door(id=len(doors), **fields))
        else:
            windows.append(Window(id=len(windows), **fields))
    bboxes = [Bbox(id=i, class_name=name, position_x=c[0], position_y=c[1], position_z=c[2], angle_z=yaw,
                   scale_x=s[0], scale_y=s[1], scale_z=s[2]) for i, (name, c, yaw, s, _) in enumerate(boxes)]
    layout = Layout(walls=walls, doors=doors, windows=windows, bboxes=bboxes).translate(tuple(origin))
    return (points + origin).astype(np.float32), colours, layout


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz and uchar rgb."""
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rows = np.zeros(len(points), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    rows["xyz"], rows["rgb"] = points, colours
    path.write_bytes(header.encode("ascii") + rows.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("scenes"))
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="room i uses seed + i")
    parser.add_argument("--prefix", default="room")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        points, colours, layout = make_room(args.seed + i)
        stem = f"{args.prefix}_{args.seed + i:03d}"
        write_ply(args.out / f"{stem}.ply", points, colours)
        (args.out / f"{stem}.txt").write_text(format_layout(layout) + "\n")
        print(f"{stem}: {len(points)} points, {len(layout.walls)} walls, {len(layout.doors)} doors, "
              f"{len(layout.windows)} windows, {len(layout.bboxes)} boxes")


if __name__ == "__main__":
    main()
