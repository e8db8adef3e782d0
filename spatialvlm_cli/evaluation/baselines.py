"""Baseline predictors for the room benchmark: what a model that does not read the scan would score.

* constant room (`MeanRoom`, `constant_layout`): the mean training room, anchored at the scan's min corner. A room
  model sees the cloud shifted to its min corner and answers in bins relative to it, so a model that ignores the
  points can at best emit the average answer: the training rooms' mean wall-endpoint box (metres, relative to the
  cleaned cloud's min corner) as a rectangle of 4 walls (counter-clockwise from the box's min corner, as the
  generator orders them), with the mean wall height, z and thickness, one door in the middle of wall 0 and one
  window in the middle of wall 1 (mean sizes and heights), and no boxes.
* empty layout: nothing at all (the worst any metric can give).
* noisy ground truth (`noisy_layout`): the ground truth with every position moved by Gaussian noise, a stand-in
  for a model that reads the scan well; it must score near the top, and the constant room clearly below it.
* ground truth in bins (`binned_layout`): the ground truth written the way a room model must write it, in bins
  relative to the scan's min corner, then read back. The best any model can score under SpatialLM's answer
  convention: bins start at 0, so a wall whose centre line lies outside the scan (half a wall thickness beyond its
  inner face, on the min side) is clipped onto the min corner.

Units: metres and radians throughout.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spatialvlm_cli.layout import Door, Layout, Wall, Window


@dataclass(frozen=True)
class MeanRoom:
    """The mean training room, relative to each scan's min corner (metres). x_min..y_max: the mean wall-endpoint
    box; wall_z: mean wall bottom; door_z, window_z: mean opening centre heights."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    wall_z: float
    wall_height: float
    wall_thickness: float
    door_width: float
    door_height: float
    door_z: float
    window_width: float
    window_height: float
    window_z: float
    num_rooms: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeanRoom:
        return cls(**data)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"


def mean_room(layouts: Iterable[Layout]) -> MeanRoom:
    """The mean of training layouts already shifted to their scan's min corner (metres). Layouts without walls are
    left out of the wall figures, rooms without doors (windows) out of the door (window) figures."""
    boxes, z, heights, thicknesses = [], [], [], []
    doors: list[Door] = []
    windows: list[Window] = []
    count = 0
    for layout in layouts:
        count += 1
        doors += layout.doors
        windows += layout.windows
        if not layout.walls:
            continue
        points = np.array([[[w.ax, w.ay], [w.bx, w.by]] for w in layout.walls]).reshape(-1, 2)
        boxes.append((*points.min(axis=0), *points.max(axis=0)))
        z += [w.az for w in layout.walls]
        heights += [w.height for w in layout.walls]
        thicknesses += [w.thickness for w in layout.walls]
    if not boxes:
        raise ValueError("mean_room needs at least one layout with walls")
    box = np.mean(np.array(boxes, dtype=np.float64), axis=0)

    def mean(values: Sequence[float], default: float) -> float:
        return float(statistics.fmean(values)) if values else default

    return MeanRoom(
        x_min=float(box[0]), y_min=float(box[1]), x_max=float(box[2]), y_max=float(box[3]),
        wall_z=mean(z, 0.0), wall_height=mean(heights, 2.7), wall_thickness=mean(thicknesses, 0.2),
        door_width=mean([d.width for d in doors], 0.9), door_height=mean([d.height for d in doors], 2.0),
        door_z=mean([d.position_z for d in doors], 1.0),
        window_width=mean([w.width for w in windows], 1.2), window_height=mean([w.height for w in windows], 1.2),
        window_z=mean([w.position_z for w in windows], 1.5),
        num_rooms=count,
    )


def constant_layout(room: MeanRoom, min_corner: Sequence[float]) -> Layout:
    """The mean room placed at a scan's min corner (x, y, z metres, as `prepare_point_cloud` finds it)."""
    ox, oy, oz = (float(v) for v in min_corner)
    corners = [(room.x_min, room.y_min), (room.x_max, room.y_min), (room.x_max, room.y_max), (room.x_min, room.y_max)]
    corners = [(x + ox, y + oy) for x, y in corners]
    z = room.wall_z + oz
    walls = [Wall(i, *corners[i], z, *corners[(i + 1) % 4], z, room.wall_height, room.wall_thickness)
             for i in range(4)]

    def middle(i: int) -> tuple[float, float]:
        (ax, ay), (bx, by) = corners[i], corners[(i + 1) % 4]
        return (ax + bx) / 2, (ay + by) / 2

    door = Door(0, 0, *middle(0), room.door_z + oz, room.door_width, room.door_height)
    window = Window(0, 1, *middle(1), room.window_z + oz, room.window_width, room.window_height)
    return Layout(walls=walls, doors=[door], windows=[window])


def noisy_layout(layout: Layout, sigma_m: float, seed: int = 0) -> Layout:
    """The layout with Gaussian noise (standard deviation sigma_m metres) added to every wall endpoint and every
    door, window and box centre (x and y); sizes, heights and angles unchanged."""
    rng = np.random.default_rng(seed)

    def jitter(n: int) -> list[float]:
        return [float(v) for v in rng.normal(0.0, sigma_m, n)]

    walls = []
    for wall in layout.walls:
        dax, day, dbx, dby = jitter(4)
        walls.append(dataclasses.replace(wall, ax=wall.ax + dax, ay=wall.ay + day, bx=wall.bx + dbx,
                                         by=wall.by + dby))
    moved: dict[str, list] = {"walls": walls}
    for key in ("doors", "windows", "bboxes"):
        moved[key] = []
        for entity in getattr(layout, key):
            dx, dy = jitter(2)
            moved[key].append(dataclasses.replace(entity, position_x=entity.position_x + dx,
                                                  position_y=entity.position_y + dy))
    return Layout(**moved)


def binned_layout(layout: Layout, min_corner: Sequence[float], num_bins: int) -> Layout:
    """The layout (metres, scan frame) through a room model's answer convention: shifted to the scan's min corner
    (x, y, z metres, as `prepare_point_cloud` finds it), discretised to `num_bins` bins (clipped to
    [0, num_bins - 1]), read back to metres and shifted back."""
    offset = tuple(float(v) for v in min_corner)
    relative = layout.translate(tuple(-v for v in offset))
    return relative.discretize(num_bins).undiscretize(num_bins).translate(offset)
