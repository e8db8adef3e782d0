"""The entities of SpatialLM's layout language and the `Layout` that holds them.

Units: metres and radians in saved files and ground truth (z-up, the scene's frame); integer bins in model text
(see `bins.py`). Values keep the Python type they were written with: ints for bins, floats otherwise, so that
text -> entities -> text reproduces the input.

Geometry conventions (SpatialLM's `Layout.to_boxes` and `eval.get_corners`):
  Wall   (ax, ay, az)-(bx, by, bz) is the bottom edge; `height` extends upwards (+z); `thickness` is not used by
         the metric.
  Door   the centre of the opening; `width` runs along its wall's direction, `height` along z. `wall_id` names
  Window the wall it sits in.
  Bbox   the box centre; scale_x/y/z are full extents (made non-negative on construction, as SpatialLM's abs());
         angle_z is the yaw about +z.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from spatialvlm_cli.layout.bins import FIELD_RANGES, check_num_bins, decode_value, encode_value


@dataclass(frozen=True)
class Wall:
    """A wall: bottom edge a -> b (metres), height and thickness (metres)."""

    id: int
    ax: float
    ay: float
    az: float
    bx: float
    by: float
    bz: float
    height: float
    thickness: float

    label: ClassVar[str] = "wall"
    numeric_fields: ClassVar[tuple[str, ...]] = ("ax", "ay", "az", "bx", "by", "bz", "height", "thickness")

    def translate(self, dx: float, dy: float, dz: float) -> Wall:
        return dataclasses.replace(
            self, ax=self.ax + dx, ay=self.ay + dy, az=self.az + dz, bx=self.bx + dx, by=self.by + dy, bz=self.bz + dz
        )


@dataclass(frozen=True)
class _Opening:
    """Fields shared by doors and windows: the centre of the opening (metres) and its size (metres)."""

    id: int
    wall_id: int
    position_x: float
    position_y: float
    position_z: float
    width: float
    height: float

    numeric_fields: ClassVar[tuple[str, ...]] = ("position_x", "position_y", "position_z", "width", "height")

    def translate(self, dx: float, dy: float, dz: float) -> _Opening:
        return dataclasses.replace(
            self, position_x=self.position_x + dx, position_y=self.position_y + dy, position_z=self.position_z + dz
        )


@dataclass(frozen=True)
class Door(_Opening):
    """A door in wall `wall_id`."""

    label: ClassVar[str] = "door"


@dataclass(frozen=True)
class Window(_Opening):
    """A window in wall `wall_id`."""

    label: ClassVar[str] = "window"


@dataclass(frozen=True)
class Bbox:
    """An object: class name (underscored, e.g. dining_table), centre (metres), yaw (radians), full extents (metres)."""

    id: int
    class_name: str
    position_x: float
    position_y: float
    position_z: float
    angle_z: float
    scale_x: float
    scale_y: float
    scale_z: float

    label: ClassVar[str] = "bbox"
    numeric_fields: ClassVar[tuple[str, ...]] = (
        "position_x", "position_y", "position_z", "angle_z", "scale_x", "scale_y", "scale_z",
    )

    def __post_init__(self) -> None:
        # Extents are sizes: SpatialLM applies abs() whenever a Bbox is built.
        for name in ("scale_x", "scale_y", "scale_z"):
            object.__setattr__(self, name, abs(getattr(self, name)))

    def translate(self, dx: float, dy: float, dz: float) -> Bbox:
        return dataclasses.replace(
            self, position_x=self.position_x + dx, position_y=self.position_y + dy, position_z=self.position_z + dz
        )


Entity = Wall | Door | Window | Bbox


def _map_numeric(entity: Entity, convert: Callable[[float, str], float]) -> Entity:
    """A copy of `entity` with convert(value, range_name) applied to each numeric field."""
    ranges = FIELD_RANGES[entity.label]
    return dataclasses.replace(entity, **{name: convert(getattr(entity, name), ranges[name])
                                          for name in entity.numeric_fields})


@dataclass
class Layout:
    """A scene: walls, doors, windows and boxes, in the order SpatialLM writes them."""

    walls: list[Wall] = field(default_factory=list)
    doors: list[Door] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    bboxes: list[Bbox] = field(default_factory=list)

    def entities(self) -> list[Entity]:
        """All entities, walls first, then doors, windows and boxes (serialisation order)."""
        return [*self.walls, *self.doors, *self.windows, *self.bboxes]

    def __len__(self) -> int:
        return len(self.walls) + len(self.doors) + len(self.windows) + len(self.bboxes)

    def describe(self) -> str:
        """Its entity counts in words: '4 walls, 1 door, 0 windows, 6 boxes'."""
        counts = [(len(self.walls), "wall", "walls"), (len(self.doors), "door", "doors"),
                  (len(self.windows), "window", "windows"), (len(self.bboxes), "box", "boxes")]
        return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)

    def _map(self, transform: Callable[[Entity], Entity]) -> Layout:
        return Layout(
            walls=[transform(e) for e in self.walls],
            doors=[transform(e) for e in self.doors],
            windows=[transform(e) for e in self.windows],
            bboxes=[transform(e) for e in self.bboxes],
        )

    def undiscretize(self, num_bins: int) -> Layout:
        """Model bins -> metres/radians (lower bin edge), relative to the preprocessed cloud's min corner.

        Follow with `translate(min_extent)` to return to the input cloud's frame."""
        check_num_bins(num_bins)
        return self._map(lambda e: _map_numeric(e, lambda v, r: decode_value(v, r, num_bins)))

    def discretize(self, num_bins: int) -> Layout:
        """Metres/radians -> int bins in [0, num_bins - 1] (training targets). Raises InputError on NaN/inf."""
        check_num_bins(num_bins)
        return self._map(lambda e: _map_numeric(e, lambda v, r: encode_value(v, r, num_bins)))

    def translate(self, offset: tuple[float, float, float]) -> Layout:
        """Shift every position by offset (dx, dy, dz) metres; sizes and angles are unchanged."""
        dx, dy, dz = offset
        return self._map(lambda e: e.translate(dx, dy, dz))

    def turned(self, angle_z: float, scale: float, centre: tuple[float, float, float]) -> Layout:
        """The layout rotated by angle_z radians (counter-clockwise seen from above) about the vertical axis through
        `centre`, then scaled by `scale` about `centre`: positions move, sizes (widths, heights, thicknesses, box
        extents) scale, box yaws turn with it, wrapped to (-π, π]. A point cloud turned the same way stays under it."""
        cos, sin = math.cos(angle_z), math.sin(angle_z)
        cx, cy, cz = centre

        def point(x: float, y: float, z: float) -> tuple[float, float, float]:
            dx, dy = x - cx, y - cy
            return cx + scale * (cos * dx - sin * dy), cy + scale * (sin * dx + cos * dy), cz + scale * (z - cz)

        def turn(entity: Entity) -> Entity:
            if isinstance(entity, Wall):
                ax, ay, az = point(entity.ax, entity.ay, entity.az)
                bx, by, bz = point(entity.bx, entity.by, entity.bz)
                return dataclasses.replace(entity, ax=ax, ay=ay, az=az, bx=bx, by=by, bz=bz,
                                           height=scale * entity.height, thickness=scale * entity.thickness)
            x, y, z = point(entity.position_x, entity.position_y, entity.position_z)
            if isinstance(entity, Bbox):
                yaw = math.remainder(entity.angle_z + angle_z, 2 * math.pi)
                return dataclasses.replace(entity, position_x=x, position_y=y, position_z=z, angle_z=yaw,
                                           scale_x=scale * entity.scale_x, scale_y=scale * entity.scale_y,
                                           scale_z=scale * entity.scale_z)
            return dataclasses.replace(entity, position_x=x, position_y=y, position_z=z, width=scale * entity.width,
                                       height=scale * entity.height)

        return self._map(turn)
