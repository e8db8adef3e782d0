"""Procedural indoor rooms: a scan-like point cloud and its ground-truth layout (SpatialLM's entities, metres).

Everything is drawn from one `numpy.random.Generator` seeded with `seed`, so a seed always gives the same room,
bit for bit. Training and held-out rooms come from disjoint seed ranges (`split_seed`).

A room is built in its own frame (metres, z up, floor at z = 0, the inner floor polygon's min corner at (0, 0)):
  * shape: a rectangle (70 %) or an L (30 %: one corner rectangle cut out, both remaining arms >= 1.5 m wide);
    floor 2.5-8 x 2.5-7 m, height 2.4-3.2 m, wall thickness 0.1, 0.15, 0.2 or 0.25 m;
  * walls as SpatialLM writes them: one per straight side, from floor (az = bz = 0) up to the ceiling, the a-b
    segment on the wall's centre line (half a thickness outside the inner face) and running from corner to corner,
    so that each wall's b is the next wall's a: at a convex corner the centre line runs half a thickness past the
    inner corner, at the reflex corner of an L it stops half a thickness short of it;
  * 1-2 doors and 0-3 windows cut into the walls (holes in the scanned wall face), >= 0.3 m from wall ends;
  * 2-8 furniture boxes (yaw 0 or 90 deg), ~60 % against a wall, none overlapping, none in front of a door, and
    none in front of a window unless it stays below the sill;
  * points on the floor (not under boxes), the ceiling (absent in 20 % of rooms), the inner wall faces and the box
    faces (top and sides), about `POINTS_PER_M2` on average, with a lognormal per-surface density factor, a falloff
    away from a virtual scanner, 2-6 occlusion holes and 5 mm Gaussian noise; colours from a per-room palette.
Then the whole room, points and layout alike, is turned by a yaw about the room frame's origin (0 in 85 % of rooms,
else uniform in [-30, 30] deg; box angle_z adds it) and shifted by a random origin offset.

Canonical entity order (the order a model learns to emit), fixed by the geometry in the room frame before the yaw:
walls counter-clockwise seen from above, wall 0 starting at the inner corner nearest the inner polygon's min (x, y)
corner; doors, then windows, each sorted by (wall id, distance of the centre from the wall's a along the wall);
boxes sorted by centre x, then centre y. Ids are the positions in these orders.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window

TRAIN_SEED_BASE = 0
HELDOUT_SEED_BASE = 1_000_000

# Furniture classes (SpatialLM's names) with typical full extents (scale_x along the box's own x, scale_y, scale_z),
# metres, and a base RGB colour that each box varies around.
FURNITURE: dict[str, tuple[float, float, float]] = {
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
FURNITURE_COLOURS: dict[str, tuple[int, int, int]] = {
    "bed": (205, 198, 186),
    "sofa": (112, 116, 126),
    "chair": (122, 88, 62),
    "dining_table": (150, 112, 76),
    "nightstand": (160, 122, 86),
    "wardrobe": (186, 172, 152),
    "coffee_table": (96, 72, 52),
    "desk": (172, 152, 122),
    "bookcase": (136, 102, 72),
    "tv_cabinet": (62, 62, 68),
}
WALL_THICKNESSES_M = (0.1, 0.15, 0.2, 0.25)
POINTS_PER_M2 = 90.0
NOISE_M = 0.005

_L_SHAPE_P = 0.3
_YAW_P = 0.15
_MAX_YAW_RAD = math.radians(30.0)
_NO_CEILING_P = 0.2
_MIN_ARM_M = 1.5  # width of each remaining arm of an L
_MIN_CUT_M = 0.8  # smallest side of the cut-out corner rectangle
_OPENING_END_MARGIN_M = 0.3
_OPENING_GAP_M = 0.1  # between two openings on one wall
_DOOR_CLEARANCE_M = 0.7  # no box stands within this depth in front of a door
_WINDOW_CLEARANCE_M = 0.4  # a box within this depth in front of a window stays below its sill
_SILL_GAP_M = 0.05
_AGAINST_WALL_P = 0.6
_BOX_GAP_M = 0.05
_SIZE_JITTER = 0.15
_SMALL_CLASSES = ("chair", "nightstand")  # fallback so that even a cramped room gets its two boxes
_DENSITY_SIGMA = 0.35
# Candidates are drawn at this multiple of the target density and thinned by the scanner falloff, whose mean
# keep probability is normalised to 1 / _OVERSAMPLE.
_OVERSAMPLE = 2.5
_FALLOFF_FLOOR = 0.25  # keep weight far from the scanner, relative to 1 next to it

Rect = tuple[float, float, float, float]  # (x0, y0, x1, y1), metres, room frame


def split_seed(split: str, index: int) -> int:
    """The seed of room `index` (>= 0) of a split: 'train' -> TRAIN_SEED_BASE + index (index < 1e6),
    'heldout' -> HELDOUT_SEED_BASE + index. Raises ValueError for another split or an index out of range."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"room index must be a non-negative integer, got {index!r}")
    if split == "train":
        if index >= HELDOUT_SEED_BASE - TRAIN_SEED_BASE:
            raise ValueError(f"train index {index} would reach the held-out seed range (max "
                             f"{HELDOUT_SEED_BASE - TRAIN_SEED_BASE - 1})")
        return TRAIN_SEED_BASE + int(index)
    if split == "heldout":
        return HELDOUT_SEED_BASE + int(index)
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


@dataclass
class SyntheticRoom:
    """points: (N, 3) float32 metres, z up, arbitrary world frame; colours: (N, 3) uint8; layout: ground truth in
    the same frame (metres, radians), entities in canonical order."""

    points: np.ndarray
    colours: np.ndarray
    layout: Layout


@dataclass(frozen=True)
class _Room:
    """Room-frame geometry. inner: (K, 2) inner floor corners, counter-clockwise, canonical start first;
    directions, normals: (K, 2) unit direction of side k (corner k -> k + 1) and its outward normal;
    lengths: (K,) inner side lengths; centre: (K, 2) wall centre-line corners (wall k runs centre[k] -> [k + 1]);
    cut: the L's cut-out rectangle or None. Metres."""

    width: float
    depth: float
    height: float
    thickness: float
    inner: np.ndarray
    directions: np.ndarray
    normals: np.ndarray
    lengths: np.ndarray
    centre: np.ndarray
    cut: Rect | None

    def on_floor(self, rect: Rect) -> bool:
        """Whether an axis-aligned footprint lies inside the floor polygon."""
        inside = rect[0] >= 0.0 and rect[1] >= 0.0 and rect[2] <= self.width and rect[3] <= self.depth
        return inside and (self.cut is None or not _overlap(rect, self.cut))


@dataclass(frozen=True)
class _Opening:
    """A door or window in side `wall`: centre `offset` metres along the inner face from corner `wall`, width, and
    bottom/top heights above the floor (metres)."""

    wall: int
    offset: float
    width: float
    bottom: float
    top: float
    is_door: bool


@dataclass(frozen=True)
class _Box:
    """A furniture box: centre (x, y) on the floor, yaw 0 or pi/2 (radians), full extents (sx, sy, sz) in the box's
    own axes; room frame, metres."""

    name: str
    x: float
    y: float
    yaw: float
    sx: float
    sy: float
    sz: float

    @property
    def rect(self) -> Rect:
        hx, hy = (self.sx / 2, self.sy / 2) if self.yaw == 0.0 else (self.sy / 2, self.sx / 2)
        return (self.x - hx, self.y - hy, self.x + hx, self.y + hy)


def _overlap(a: Rect, b: Rect, gap: float = 0.0) -> bool:
    """Whether two rectangles come closer than `gap` (open intervals: touching rectangles do not overlap)."""
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _make_shape(rng: np.random.Generator) -> _Room:
    """Size, shape (rectangle or L), thickness, and the derived corner and wall geometry."""
    width, depth = float(rng.uniform(2.5, 8.0)), float(rng.uniform(2.5, 7.0))
    height = float(rng.uniform(2.4, 3.2))
    thickness = float(WALL_THICKNESSES_M[int(rng.integers(len(WALL_THICKNESSES_M)))])
    corners = [(0.0, 0.0), (width, 0.0), (width, depth), (0.0, depth)]
    cut: Rect | None = None
    if rng.random() < _L_SHAPE_P:
        k = int(rng.integers(4))
        cut_size = {0: float(rng.uniform(_MIN_CUT_M, width - _MIN_ARM_M)),  # along x
                    1: float(rng.uniform(_MIN_CUT_M, depth - _MIN_ARM_M))}  # along y
        (px, py), (qx, qy), (rx, ry) = corners[k], corners[k - 1], corners[(k + 1) % 4]
        d_in = ((px > qx) - (px < qx), (py > qy) - (py < qy))  # unit direction into the corner
        d_out = ((rx > px) - (rx < px), (ry > py) - (ry < py))  # and out of it
        len_in, len_out = cut_size[0 if d_in[0] else 1], cut_size[0 if d_out[0] else 1]
        # The corner becomes three: back along the incoming side, the reflex corner, on along the outgoing side.
        start = (px - d_in[0] * len_in, py - d_in[1] * len_in)
        reflex = (start[0] + d_out[0] * len_out, start[1] + d_out[1] * len_out)
        end = (px + d_out[0] * len_out, py + d_out[1] * len_out)
        corners[k:k + 1] = [start, reflex, end]
        cut = (min(px, reflex[0]), min(py, reflex[1]), max(px, reflex[0]), max(py, reflex[1]))
    # Canonical start: the corner nearest the min corner (0, 0); ties (equal cut sides) broken by y, then x.
    first = min(range(len(corners)), key=lambda i: (math.hypot(*corners[i]), corners[i][1], corners[i][0]))
    inner = np.array(corners[first:] + corners[:first])
    sides = np.roll(inner, -1, axis=0) - inner
    lengths = np.linalg.norm(sides, axis=1)
    directions = sides / lengths[:, None]
    normals = np.stack([directions[:, 1], -directions[:, 0]], axis=1)  # outward for a counter-clockwise polygon
    # Offsetting both sides of a right-angle corner by t/2 moves it by (n_prev + n_next) t/2: past the inner corner
    # along both walls at a convex corner, short of it at a reflex one.
    centre = inner + (np.roll(normals, 1, axis=0) + normals) * (thickness / 2)
    return _Room(width, depth, height, thickness, inner, directions, normals, lengths, centre, cut)


def _place_openings(rng: np.random.Generator, room: _Room) -> list[_Opening]:
    """1-2 doors and 0-3 windows, none overlapping on a wall, each >= 0.3 m from the ends of its inner face."""
    openings: list[_Opening] = []
    for is_door, count in ((True, int(rng.integers(1, 3))), (False, int(rng.integers(0, 4)))):
        for _ in range(count):
            for _attempt in range(20):
                if is_door:
                    width, bottom, top = float(rng.uniform(0.75, 1.0)), 0.0, float(rng.uniform(2.0, 2.2))
                else:
                    width, bottom = float(rng.uniform(0.8, 1.8)), float(rng.uniform(0.7, 1.0))
                    top = float(rng.uniform(1.8, 2.3))  # the ceiling is >= 2.4 m
                free = room.lengths - width - 2 * _OPENING_END_MARGIN_M
                walls = np.flatnonzero(free > 0)
                if len(walls) == 0:
                    continue
                wall = int(walls[rng.integers(len(walls))])
                offset = _OPENING_END_MARGIN_M + width / 2 + float(rng.uniform(0.0, free[wall]))
                if all(o.wall != wall or abs(o.offset - offset) >= (o.width + width) / 2 + _OPENING_GAP_M
                       for o in openings):
                    openings.append(_Opening(wall, offset, width, bottom, top, is_door))
                    break
    return openings


def _front_zone(room: _Room, opening: _Opening, depth: float) -> Rect:
    """The floor rectangle in front of an opening: its width along the wall, `depth` metres into the room."""
    k = opening.wall
    along = room.inner[k] + room.directions[k] * np.array([[opening.offset - opening.width / 2],
                                                           [opening.offset + opening.width / 2]])
    corners = np.concatenate([along, along - room.normals[k] * depth])
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


def _try_box(rng: np.random.Generator, name: str, room: _Room, blocked: list[Rect],
             sills: list[tuple[Rect, float]]) -> _Box | None:
    """One placement attempt for a box of class `name`; None when it leaves the floor, comes near a blocked rect,
    or overlaps a (zone, max height) of `sills` while taller than that height."""
    sx, sy, sz = (np.asarray(FURNITURE[name]) * rng.uniform(1 - _SIZE_JITTER, 1 + _SIZE_JITTER, size=3)).tolist()
    sz = min(sz, room.height - 0.1)
    if rng.random() < _AGAINST_WALL_P:
        # Its own x axis along the wall, its back 1-6 cm off the inner face.
        k = int(rng.integers(len(room.lengths)))
        free = float(room.lengths[k]) - sx - 0.04
        if free <= 0:
            return None
        along = 0.02 + sx / 2 + float(rng.uniform(0.0, free))
        x, y = (room.inner[k] + room.directions[k] * along
                - room.normals[k] * (sy / 2 + float(rng.uniform(0.01, 0.06)))).tolist()
        yaw = 0.0 if room.directions[k][1] == 0.0 else math.pi / 2
    else:
        # Free-standing: at least 0.3 m from the bounding walls.
        yaw = float(rng.integers(2)) * (math.pi / 2)
        hx, hy = (sx / 2, sy / 2) if yaw == 0.0 else (sy / 2, sx / 2)
        free_x, free_y = room.width - 2 * hx - 0.6, room.depth - 2 * hy - 0.6
        if free_x <= 0 or free_y <= 0:
            return None
        x, y = 0.3 + hx + float(rng.uniform(0.0, free_x)), 0.3 + hy + float(rng.uniform(0.0, free_y))
    box = _Box(name, x, y, yaw, sx, sy, sz)
    rect = box.rect
    if not room.on_floor(rect) or any(_overlap(rect, other, _BOX_GAP_M) for other in blocked):
        return None
    if any(sz > limit and _overlap(rect, zone) for zone, limit in sills):
        return None
    return box


def _place_boxes(rng: np.random.Generator, room: _Room, openings: list[_Opening]) -> list[_Box]:
    """2-8 non-overlapping boxes on the floor, clear of the doors, below the sill in front of a window."""
    blocked = [_front_zone(room, o, _DOOR_CLEARANCE_M) for o in openings if o.is_door]
    sills = [(_front_zone(room, o, _WINDOW_CLEARANCE_M), o.bottom - _SILL_GAP_M) for o in openings if not o.is_door]
    boxes: list[_Box] = []
    names = list(FURNITURE)

    def attempt(choices: list[str] | tuple[str, ...], tries: int) -> None:
        for _ in range(tries):
            box = _try_box(rng, choices[int(rng.integers(len(choices)))], room, blocked, sills)
            if box is not None:
                boxes.append(box)
                blocked.append(box.rect)
                return

    for _ in range(int(rng.integers(2, 9))):
        attempt(names, 25)
    for _ in range(2 - len(boxes)):
        attempt(_SMALL_CLASSES, 200)
    return boxes


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB (3,) in 0..255 from hue, saturation, value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _palette(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-room wall, floor and ceiling base colours (3,) 0..255: muted, plausible interior tints."""
    wall = _hsv(rng.uniform(0, 1), rng.uniform(0.02, 0.15), rng.uniform(0.72, 0.93))
    style = int(rng.integers(3))
    if style == 0:  # wood
        floor = _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.6), rng.uniform(0.35, 0.7))
    elif style == 1:  # tiles, concrete
        floor = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.08), rng.uniform(0.45, 0.85))
    else:  # carpet
        floor = _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.6))
    ceiling = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.04), rng.uniform(0.85, 0.97))
    return wall, floor, ceiling


_FLOOR, _CEILING, _WALL, _BOX = 0, 1, 2, 3


def _sample_points(rng: np.random.Generator, room: _Room, openings: list[_Opening], boxes: list[_Box],
                   has_ceiling: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scan-like points (N, 3) float64 metres and colours (N, 3) uint8, room frame."""
    wall_colour, floor_colour, ceiling_colour = _palette(rng)
    w, d, h = room.width, room.depth, room.height
    # Surfaces as parallelograms origin + a u + b v (a, b in [0, 1]), with a kind and a base colour.
    origins, us, vs, kinds, colours = [], [], [], [], []

    def surface(origin: tuple[float, ...], u: tuple[float, ...], v: tuple[float, ...], kind: int,
                colour: np.ndarray) -> None:
        origins.append(origin)
        us.append(u)
        vs.append(v)
        kinds.append(kind)
        colours.append(colour)

    surface((0.0, 0.0, 0.0), (w, 0.0, 0.0), (0.0, d, 0.0), _FLOOR, floor_colour)
    if has_ceiling:
        surface((0.0, 0.0, h), (w, 0.0, 0.0), (0.0, d, 0.0), _CEILING, ceiling_colour)
    first_wall = len(kinds)
    for k in range(len(room.lengths)):
        (ox, oy), (ux, uy) = room.inner[k].tolist(), (room.directions[k] * room.lengths[k]).tolist()
        surface((ox, oy, 0.0), (ux, uy, 0.0), (0.0, 0.0, h), _WALL, wall_colour * rng.uniform(0.88, 1.04))
    for box in boxes:
        x0, y0, x1, y1 = box.rect
        ex, ey, ez = x1 - x0, y1 - y0, box.sz
        base = np.asarray(FURNITURE_COLOURS[box.name]) * rng.uniform(0.8, 1.15) + rng.normal(0.0, 12.0, size=3)
        surface((x0, y0, ez), (ex, 0.0, 0.0), (0.0, ey, 0.0), _BOX, base)  # top, lit from above
        for origin, u in (((x0, y0, 0.0), (0.0, ey, 0.0)), ((x1, y0, 0.0), (0.0, ey, 0.0)),
                          ((x0, y0, 0.0), (ex, 0.0, 0.0)), ((x0, y1, 0.0), (ex, 0.0, 0.0))):
            surface(origin, u, (0.0, 0.0, ez), _BOX, base * rng.uniform(0.8, 0.95))
    origin_a, u_a, v_a = np.array(origins), np.array(us), np.array(vs)
    kind_a, colour_a = np.array(kinds), np.array(colours)

    areas = np.linalg.norm(np.cross(u_a, v_a), axis=1)
    density = POINTS_PER_M2 * rng.lognormal(-_DENSITY_SIGMA ** 2 / 2, _DENSITY_SIGMA, size=len(areas))
    surface_of = np.repeat(np.arange(len(areas)), rng.poisson(areas * density * _OVERSAMPLE))
    ab = rng.random((len(surface_of), 2))
    points = origin_a[surface_of] + ab[:, :1] * u_a[surface_of] + ab[:, 1:] * v_a[surface_of]

    # Scanner falloff: keep weight 1 next to the scanner, _FALLOFF_FLOOR far away, normalised to the target mean.
    while True:
        scanner = np.array([rng.uniform(0.3, w - 0.3), rng.uniform(0.3, d - 0.3), rng.uniform(1.0, 1.8)])
        if room.on_floor((scanner[0], scanner[1], scanner[0], scanner[1])):
            break
    reach = rng.uniform(2.5, 5.0)
    distance = np.linalg.norm(points - scanner, axis=1)
    weight = _FALLOFF_FLOOR + (1 - _FALLOFF_FLOOR) / (1 + (distance / reach) ** 2)
    keep = rng.random(len(points)) < weight / (weight.mean() * _OVERSAMPLE)

    kind = kind_a[surface_of]
    if room.cut is not None:
        x0, y0, x1, y1 = room.cut
        keep &= ~((kind <= _CEILING) & (points[:, 0] > x0) & (points[:, 0] < x1)
                  & (points[:, 1] > y0) & (points[:, 1] < y1))
    floor = kind == _FLOOR
    for box in boxes:  # the floor under a box is never seen
        x0, y0, x1, y1 = box.rect
        keep &= ~(floor & (points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1))
    for o in openings:
        along = ab[:, 0] * room.lengths[o.wall]
        keep &= ~((surface_of == first_wall + o.wall) & (np.abs(along - o.offset) < o.width / 2)
                  & (points[:, 2] > o.bottom) & (points[:, 2] < o.top))
    points, surface_of = points[keep], surface_of[keep]

    # Occlusion holes: balls (a disc where they cut a surface) or axis-aligned cubes around surface points.
    for _ in range(int(rng.integers(2, 7))):
        centre = points[rng.integers(len(points))]
        radius = rng.uniform(0.3, 1.0) / 2
        offset = np.abs(points - centre)
        inside = (offset.max(axis=1) < radius) if rng.random() < 0.5 else ((offset ** 2).sum(axis=1) < radius ** 2)
        points, surface_of = points[~inside], surface_of[~inside]

    points = points + rng.normal(0.0, NOISE_M, size=points.shape)
    rgb = (colour_a[surface_of] + rng.normal(0.0, 5.0, size=points.shape)
           + rng.normal(0.0, 4.0, size=(len(points), 1)))  # per-channel and brightness jitter
    return points, np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _layout(room: _Room, openings: list[_Opening], boxes: list[_Box], yaw: float, offset: np.ndarray) -> Layout:
    """The ground truth in the world frame (room turned by `yaw` about its origin, then shifted by `offset` (3,)),
    entities in canonical order."""
    cos, sin = math.cos(yaw), math.sin(yaw)
    ox, oy, oz = offset.tolist()

    def world(x: float, y: float) -> tuple[float, float]:
        return (cos * x - sin * y + ox, sin * x + cos * y + oy) if yaw else (x + ox, y + oy)

    t, count = room.thickness, len(room.lengths)
    walls = []
    for k in range(count):
        ax, ay = world(*room.centre[k].tolist())
        bx, by = world(*room.centre[(k + 1) % count].tolist())
        walls.append(Wall(id=k, ax=ax, ay=ay, az=oz, bx=bx, by=by, bz=oz, height=room.height, thickness=t))

    placed = []  # (wall, distance from the wall's a, x, y, opening), room frame
    for o in openings:
        x, y = (room.inner[o.wall] + room.directions[o.wall] * o.offset + room.normals[o.wall] * (t / 2)).tolist()
        along = float((np.array([x, y]) - room.centre[o.wall]) @ room.directions[o.wall])
        placed.append((o.wall, along, x, y, o))
    placed.sort(key=lambda p: (p[0], p[1]))
    doors, windows = [], []
    for wall, _, x, y, o in placed:
        group, kind = (doors, Door) if o.is_door else (windows, Window)
        px, py = world(x, y)
        group.append(kind(id=len(group), wall_id=wall, position_x=px, position_y=py,
                          position_z=(o.bottom + o.top) / 2 + oz, width=o.width, height=o.top - o.bottom))

    bboxes = []
    for i, box in enumerate(sorted(boxes, key=lambda b: (b.x, b.y))):
        px, py = world(box.x, box.y)
        bboxes.append(Bbox(id=i, class_name=box.name, position_x=px, position_y=py, position_z=box.sz / 2 + oz,
                           angle_z=box.yaw + yaw, scale_x=box.sx, scale_y=box.sy, scale_z=box.sz))
    return Layout(walls=walls, doors=doors, windows=windows, bboxes=bboxes)


def make_room(seed: int) -> SyntheticRoom:
    """The synthetic room of `seed` (a non-negative integer; see `split_seed`): points, colours and ground truth
    in one random world frame. Deterministic: the same seed gives identical arrays and layout."""
    rng = np.random.default_rng(seed)
    room = _make_shape(rng)
    openings = _place_openings(rng, room)
    boxes = _place_boxes(rng, room, openings)
    points, colours = _sample_points(rng, room, openings, boxes, has_ceiling=rng.random() >= _NO_CEILING_P)
    yaw = float(rng.uniform(-_MAX_YAW_RAD, _MAX_YAW_RAD)) if rng.random() < _YAW_P else 0.0
    offset = np.array([rng.uniform(-5.0, 5.0), rng.uniform(-5.0, 5.0), rng.uniform(-1.5, 0.5)])
    if yaw:
        cos, sin = math.cos(yaw), math.sin(yaw)
        points[:, :2] = points[:, :2] @ np.array([[cos, sin], [-sin, cos]])  # row vectors: p @ R^T
    return SyntheticRoom(points=(points + offset).astype(np.float32), colours=colours,
                         layout=_layout(room, openings, boxes, yaw, offset))
