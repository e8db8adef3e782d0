"""Ray-cast box rooms as equirectangular panoramas, and a small panorama QA set whose answers the generator knows.

numpy only (the caller saves the images). World frame as in `panorama/geometry.py`: x right, y up, z forward, the
camera at the origin (1.5 m above the floor in the shipped room); yaw 0 (the panorama's centre column) looks
along +z. A room is an axis-aligned box with a colour per face and rectangular openings (doors, windows,
pictures) painted on its walls; shading falls off with distance, the floor is tiled, 2×2 supersampling.

`write_qa_set` writes `room_NNN.png` panoramas and `questions.jsonl` (one record per question: id, image,
question, answer, options) for `infer --image FOLDER` and `eval --task vqa`: how many doors, how many windows,
and, in a room with one door and one window, whether the door is left or right of the window as seen facing
yaw 0 (left: the smaller yaw in (-180°, 180°], i.e. further left in the panorama).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spatialvlm_cli.panorama.geometry import angles_to_rays, pixel_to_angles

AXES = "xyz"
DOOR_COLOUR = (95, 60, 40)
WINDOW_COLOUR = (170, 215, 245)
QUESTIONS_FILE = "questions.jsonl"
COUNT_OPTIONS = ("1", "2")
SIDE_OPTIONS = ("left", "right")


@dataclass(frozen=True)
class Opening:
    """A rectangle painted on a wall. kind: 'door' | 'window' | 'picture'. face: (axis, side), side 1 the wall
    at the room's max along the axis. extent: metres along the two in-plane axes, e.g. {'x': (0.4, 1.3),
    'y': (-1.5, 0.6)} on a z wall. colour: RGB 0-255."""

    kind: str
    face: tuple[str, int]
    extent: Mapping[str, tuple[float, float]]
    colour: tuple[int, int, int]

    def centre(self, room_min: np.ndarray, room_max: np.ndarray) -> np.ndarray:
        """(3,) metres: the middle of the rectangle on its wall."""
        axis, side = self.face
        point = np.empty(3)
        point[AXES.index(axis)] = (room_max if side else room_min)[AXES.index(axis)]
        for name, (low, high) in self.extent.items():
            point[AXES.index(name)] = (low + high) / 2
        return point


@dataclass(frozen=True)
class PanoramaRoom:
    """room_min / room_max: (3,) metres, the box around the camera at the origin. faces: (axis, side) -> RGB.
    openings: painted in order (a later one covers an earlier one)."""

    room_min: np.ndarray
    room_max: np.ndarray
    faces: Mapping[tuple[str, int], tuple[int, int, int]]
    openings: tuple[Opening, ...]

    def count(self, kind: str) -> int:
        return sum(opening.kind == kind for opening in self.openings)

    def yaw_deg(self, opening: Opening) -> float:
        """Yaw of the opening's centre seen from the camera, degrees in (-180, 180]."""
        x, _, z = opening.centre(self.room_min, self.room_max)
        return math.degrees(math.atan2(x, z))


FACE_COLOURS = {
    ("x", 0): (150, 170, 200),  # left wall
    ("x", 1): (205, 190, 150),  # right wall
    ("y", 0): (135, 100, 70),  # floor
    ("y", 1): (240, 240, 236),  # ceiling
    ("z", 0): (170, 200, 165),  # back wall (the seam)
    ("z", 1): (215, 205, 195),  # front wall
}
# The shipped room (`scripts/make_panorama.py`, scenes/pano_room.png): 6 m × 6 m × 2.7 m, camera off centre; a door
# on the front wall, a window on the right wall, a red picture on the back wall straddling the seam.
SHIPPED_ROOM = PanoramaRoom(
    room_min=np.array([-2.5, -1.5, -2.0]),
    room_max=np.array([3.5, 1.2, 4.0]),
    faces=FACE_COLOURS,
    openings=(
        Opening("door", ("z", 1), {"x": (0.4, 1.3), "y": (-1.5, 0.6)}, DOOR_COLOUR),
        Opening("window", ("x", 1), {"z": (0.6, 2.2), "y": (-0.4, 0.7)}, WINDOW_COLOUR),
        Opening("picture", ("z", 0), {"x": (-0.45, 0.45), "y": (-0.25, 0.45)}, (200, 40, 40)),
    ),
)


def shade_rays(room: PanoramaRoom, rays: np.ndarray) -> np.ndarray:
    """Colour of the first room surface each ray hits. rays: (N, 3) unit vectors. Returns (N, 3) float64."""
    safe = np.where(np.abs(rays) < 1e-12, 1e-12, rays)
    # Leaving a box from inside: per axis the wall in the ray's direction; the nearest of the three is hit.
    bound = np.where(rays > 0, room.room_max, room.room_min)
    distances = bound / safe  # (N, 3) positive
    axis = np.argmin(distances, axis=1)
    distance = distances[np.arange(len(rays)), axis]
    hit = rays * distance[:, None]
    colour = np.zeros((len(rays), 3))
    for (axis_name, side), rgb in room.faces.items():
        colour[_on_face(axis, rays, axis_name, side)] = rgb
    for opening in room.openings:
        inside = _on_face(axis, rays, *opening.face)
        for coordinate in AXES:
            if coordinate in opening.extent:
                low, high = opening.extent[coordinate]
                inside &= (hit[:, AXES.index(coordinate)] >= low) & (hit[:, AXES.index(coordinate)] <= high)
        colour[inside] = opening.colour
    floor = (axis == 1) & (rays[:, 1] < 0)
    tiles = ((np.floor(hit[:, 0] / 0.5) + np.floor(hit[:, 2] / 0.5)) % 2 == 0) & floor
    colour[tiles] *= 0.85
    return colour * np.clip(1.15 - 0.06 * distance, 0.6, 1.0)[:, None]


def _on_face(axis: np.ndarray, rays: np.ndarray, axis_name: str, side: int) -> np.ndarray:
    """(N,) bool: the rays whose hit lies on face (axis_name, side)."""
    index = AXES.index(axis_name)
    return (axis == index) & ((rays[:, index] > 0) == bool(side))


def render_room(room: PanoramaRoom, width: int, supersample: int = 2) -> np.ndarray:
    """(width / 2, width, 3) uint8 equirectangular panorama of `room`."""
    height = width // 2
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    total = np.zeros((height, width, 3))
    columns, rows = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    for dv in offsets:
        for du in offsets:
            yaw, pitch = pixel_to_angles(columns + du, rows + dv, width, height)
            total += shade_rays(room, angles_to_rays(yaw, pitch).reshape(-1, 3)).reshape(height, width, 3)
    return np.clip(np.rint(total / supersample**2), 0, 255).astype(np.uint8)


def random_room(seed: int) -> PanoramaRoom:
    """A room 4-7 m wide and deep around the camera with 1-2 doors (0.9 m × 2.1 m) and 1-2 windows (1.2 m ×
    1.1 m) at random places on its four walls, never overlapping on a wall, from `seed`."""
    rng = np.random.default_rng(seed)
    room_min = np.array([-rng.uniform(2.0, 3.5), -1.5, -rng.uniform(2.0, 3.5)])
    room_max = np.array([rng.uniform(2.0, 3.5), 1.2, rng.uniform(2.0, 3.5)])
    walls = [("x", 0), ("x", 1), ("z", 0), ("z", 1)]
    placed: list[tuple[tuple[str, int], float, float]] = []
    openings = []
    for kind, count, width, rows, colour in (
        ("door", int(rng.integers(1, 3)), 0.9, (-1.5, 0.6), DOOR_COLOUR),
        ("window", int(rng.integers(1, 3)), 1.2, (-0.4, 0.7), WINDOW_COLOUR),
    ):
        while sum(opening.kind == kind for opening in openings) < count:
            face = walls[int(rng.integers(len(walls)))]
            along = "z" if face[0] == "x" else "x"
            low_end, high_end = room_min[AXES.index(along)] + 0.3, room_max[AXES.index(along)] - 0.3 - width
            start = float(rng.uniform(low_end, high_end))
            if any(wall == face and start < end + 0.2 and begin < start + width + 0.2 for wall, begin, end in placed):
                continue
            placed.append((face, start, start + width))
            openings.append(Opening(kind, face, {along: (start, start + width), "y": rows}, colour))
    return PanoramaRoom(room_min=room_min, room_max=room_max, faces=FACE_COLOURS, openings=tuple(openings))


def room_questions(room: PanoramaRoom, name: str, image: str) -> list[dict[str, Any]]:
    """The QA records of one room (module docstring): id '<name>/<topic>', image, question, answer, options."""
    doors = [opening for opening in room.openings if opening.kind == "door"]
    windows = [opening for opening in room.openings if opening.kind == "window"]
    records = [
        {"id": f"{name}/doors", "image": image, "question": "How many doors are in this room? Answer with a number.",
         "answer": str(len(doors)), "options": list(COUNT_OPTIONS)},
        {"id": f"{name}/windows", "image": image,
         "question": "How many windows are in this room? Answer with a number.", "answer": str(len(windows)),
         "options": list(COUNT_OPTIONS)},
    ]
    if len(doors) == 1 and len(windows) == 1:
        side = "left" if room.yaw_deg(doors[0]) < room.yaw_deg(windows[0]) else "right"
        records.append({"id": f"{name}/door_side", "image": image,
                        "question": "Facing the centre of the panorama, is the door left or right of the window? "
                        "Answer left or right.", "answer": side, "options": list(SIDE_OPTIONS)})
    return records


def write_qa_set(folder: Path, count: int, seed: int = 0, width: int = 512) -> list[dict[str, Any]]:
    """Write `count` random rooms as `room_NNN.png` (width × width/2) and their questions to
    `folder/questions.jsonl`; returns the records. Room i uses seed `seed + i`."""
    from PIL import Image  # numpy-only module otherwise; only writing images needs Pillow

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(count):
        name = f"room_{index:03d}"
        room = random_room(seed + index)
        Image.fromarray(render_room(room, width)).save(folder / f"{name}.png")
        records.extend(room_questions(room, name, f"{name}.png"))
    (folder / QUESTIONS_FILE).write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return records
