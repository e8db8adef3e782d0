"""Every entity of a layout as an oriented box (a solid): what the viewer draws, the exports build and the corners in
a scan's own frame are computed from.

  wall    length |b - a| along a -> b, depth = thickness, height; centred on the a-b centre line, bottom at
          (az + bz) / 2;
  door /  width along its wall, depth = its wall's thickness (OPENING_DEPTH_M when the wall is missing or has
  window  none), height; centred on the opening's centre; turned with its wall (yaw 0 without one);
  bbox    scale_x, scale_y, scale_z about its centre, turned by angle_z.

Metres and radians, z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spatialvlm_cli.layout.entities import Layout, Wall
from spatialvlm_cli.layout.footprint import box_corners_xy

OPENING_DEPTH_M = 0.1  # depth of an opening whose wall is missing or has no thickness


@dataclass(frozen=True)
class Solid:
    """An entity as a box. kind: wall | door | window | bbox; name: the class name of a bbox, else the kind;
    centre (3,) metres; size (3,) metres along the box's local x (length, width), local y (depth) and z (height);
    yaw: radians from +x to the local x, about +z; wall_id: the host wall of a door or window."""

    kind: str
    id: int
    name: str
    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float
    wall_id: int | None = None

    def corners(self) -> np.ndarray:
        """(8, 3) metres: the bottom face counter-clockwise from local (-x, -y) seen from above, then the top face
        in the same order."""
        hz = self.size[2] / 2
        xy = box_corners_xy(np.array([self.centre[:2]]), np.array([self.yaw]), np.array([self.size[:2]]))[0]
        bottom = np.column_stack([xy, np.full(4, self.centre[2] - hz)])
        top = np.column_stack([xy, np.full(4, self.centre[2] + hz)])
        return np.concatenate([bottom, top])


def wall_solid(wall: Wall) -> Solid:
    """The box of a wall (see the module docstring)."""
    dx, dy = wall.bx - wall.ax, wall.by - wall.ay
    bottom = (wall.az + wall.bz) / 2
    centre = ((wall.ax + wall.bx) / 2, (wall.ay + wall.by) / 2, bottom + wall.height / 2)
    return Solid("wall", wall.id, "wall", centre, (math.hypot(dx, dy), wall.thickness, wall.height),
                 math.atan2(dy, dx))


def layout_solids(layout: Layout) -> list[Solid]:
    """Walls, doors, windows, then boxes, in the layout's order."""
    walls = {wall.id: wall for wall in layout.walls}
    solids = [wall_solid(wall) for wall in layout.walls]
    for opening in [*layout.doors, *layout.windows]:
        host = walls.get(opening.wall_id)
        yaw = math.atan2(host.by - host.ay, host.bx - host.ax) if host is not None else 0.0
        depth = host.thickness if host is not None and host.thickness > 0 else OPENING_DEPTH_M
        solids.append(Solid(opening.label, opening.id, opening.label,
                            (opening.position_x, opening.position_y, opening.position_z),
                            (opening.width, depth, opening.height), yaw, opening.wall_id))
    solids += [Solid("bbox", box.id, box.class_name, (box.position_x, box.position_y, box.position_z),
                     (box.scale_x, box.scale_y, box.scale_z), box.angle_z) for box in layout.bboxes]
    return solids
