"""A user's own scan made ready for the model: units, crop and alignment (`read_scan`), and the way back from the
model's layout to the scan (`ScanTransform`).

  units    a scan clearly not in metres (its smallest extent a room's height in millimetres, centimetres or
           inches) is refused with one line naming the unit, unless `units` or `scale` says what it is;
  crop     an axis-aligned box in metres, in the scan's frame (after units), keeps one region of a large scan;
  align    gravity and Manhattan alignment (`align.py`): the model sees a z-up scan with axis-aligned walls;
  extent   a warning when the scene is larger than one room or than the model's grid.

The frames: input (the file's coordinates and units) -> scaled (metres) -> aligned, the model's frame:
p_aligned = R @ (scale * p_input) + t with R = Rz(yaw) @ G (G levels the floor). The layout is written in the
*levelled* frame, p_levelled = G @ (scale * p_input): yaw and translation undone, so it lies over the user's scan
(exactly so for a z-up scan in metres); the JSON also carries every entity's corners in the input frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.io.pointcloud import PointCloud, read_point_cloud
from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.solids import layout_solids
from spatialvlm_cli.preprocess.align import UP_AXES, Alignment, estimate_alignment
from spatialvlm_cli.preprocess.pointcloud import WORLD_EXTENT_M

log = logging.getLogger(__name__)

UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}  # metres per unit
UNIT_NAMES = {"m": "metres", "cm": "centimetres", "mm": "millimetres", "in": "inches"}
ROOM_HEIGHT_RANGE_M = (2.0, 4.5)  # a room's smallest extent, its height, when the scan is in the unit it is in
METRE_SCAN_RANGE_M = (1.0, 60.0)  # a smallest extent in this range reads as metres: nothing to say
ONE_ROOM_M = 12.0  # wider than this across, a scan is likely several rooms (a heuristic, stated as one)


@dataclass(frozen=True)
class ScanOptions:
    """What to do to a scan before the model sees it. units: one of UNITS, or None; scale: metres per file unit,
    or None (at most one of the two; neither: detect, and refuse a scan clearly not in metres); crop: (x0, y0, z0,
    x1, y1, z1) metres in the scan's frame, or (x0, y0, x1, y1) for a box of any height, or None; align: gravity and
    Manhattan alignment; up: one of UP_AXES to name the scan's up axis for `align`, or None to detect it."""

    units: str | None = None
    scale: float | None = None
    crop: tuple[float, ...] | None = None
    align: bool = False
    up: str | None = None

    def __post_init__(self) -> None:
        if self.units is not None and self.units not in UNITS:
            raise ConfigError(f"--units must be one of {', '.join(UNITS)}, got '{self.units}'")
        if self.units is not None and self.scale is not None:
            raise ConfigError("give --units or --scale, not both")
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"--scale must be a positive number (metres per unit), got {self.scale}")
        if self.crop is not None:
            _crop_bounds(self.crop)
        if self.up is not None and self.up not in UP_AXES:
            raise ConfigError(f"--up must be one of {', '.join(UP_AXES)}, got '{self.up}'")
        if self.up is not None and not self.align:
            raise ConfigError("--up names the scan's up axis for --align; add --align")

    @property
    def factor(self) -> float | None:
        """Metres per file unit when the options say it, else None."""
        return self.scale if self.scale is not None else UNITS[self.units] if self.units is not None else None

    def to_json(self) -> dict[str, Any]:
        return {"units": self.units, "scale": self.scale, "crop": list(self.crop) if self.crop else None,
                "align": self.align, "up": self.up}


def parse_crop(text: str) -> tuple[float, ...]:
    """'x0,y0,z0,x1,y1,z1' or 'x0,y0,x1,y1' (metres) -> the numbers; ConfigError otherwise."""
    try:
        values = tuple(float(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise ConfigError(f"--crop takes x0,y0,z0,x1,y1,z1 or x0,y0,x1,y1 in metres, got '{text}'") from None
    _crop_bounds(values)
    return values


def _crop_bounds(crop: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The (3,) low and high corners of a crop (z unbounded for 4 values); ConfigError for a malformed box."""
    if len(crop) == 4:
        low, high = np.array([crop[0], crop[1], -np.inf]), np.array([crop[2], crop[3], np.inf])
    elif len(crop) == 6:
        low, high = np.array(crop[:3], dtype=np.float64), np.array(crop[3:], dtype=np.float64)
    else:
        raise ConfigError(f"--crop takes 6 numbers (x0,y0,z0,x1,y1,z1) or 4 (x0,y0,x1,y1), got {len(crop)}")
    if not all(math.isfinite(value) for value in crop) or (low >= high).any():
        raise ConfigError(f"--crop's low corner must lie below its high corner on every axis, got {list(crop)}")
    return low, high


@dataclass(frozen=True)
class ScanTransform:
    """How the model's frame relates to the input file: p_aligned = rotation @ (scale * p_input) + translation.

    scale: metres per file unit; units: the unit named or detected ('m' when nothing was said); crop: the box kept
    (metres, scan frame) or None; alignment: None when the scan was not aligned."""

    scale: float = 1.0
    units: str | None = None
    crop: tuple[float, ...] | None = None
    alignment: Alignment | None = None

    @property
    def is_identity(self) -> bool:
        """Whether the model's frame is the input file's (metres, nothing cropped or turned): infer's JSON then
        needs no transform."""
        return self.scale == 1.0 and self.crop is None and self.alignment is None

    @property
    def gravity(self) -> np.ndarray:
        """(3, 3) the levelling rotation (identity without alignment)."""
        return self.alignment.gravity if self.alignment is not None else np.eye(3)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) scaled input frame -> aligned frame."""
        return self.alignment.rotation if self.alignment is not None else np.eye(3)

    @property
    def translation(self) -> np.ndarray:
        """(3,) metres."""
        return self.alignment.translation if self.alignment is not None else np.zeros(3)

    @property
    def yaw(self) -> float:
        """Radians about +z from the levelled frame to the aligned one."""
        return self.alignment.yaw if self.alignment is not None else 0.0

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) homogeneous: input-file coordinates -> the model's frame (metres)."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.scale * self.rotation
        matrix[:3, 3] = self.translation
        return matrix

    def to_written_frame(self, layout: Layout) -> Layout:
        """A layout in the model's (aligned) frame -> the levelled frame it is written in: translation and yaw
        undone (sizes kept, box yaws turned back)."""
        if self.alignment is None:
            return layout
        return layout.translate(tuple(-self.translation)).turned(-self.yaw, 1.0, (0.0, 0.0, 0.0))

    def scaled_to_written(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) metres in the scan's frame (the file's coordinates times `scale`, as `read_point_cloud(path,
        scale)` gives them) -> the written (levelled) frame, where the layout lies."""
        return np.asarray(points, dtype=np.float64) @ self.gravity.T

    def written_to_input(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) metres in the written (levelled) frame -> the input file's frame and units."""
        return (np.asarray(points, dtype=np.float64) @ self.gravity) / self.scale

    def input_corners(self, written: Layout) -> dict[str, list[dict[str, Any]]]:
        """Every entity of a written-frame layout as its 8 box corners (`layout.solids`) in the input file's frame
        and units: {"walls": [{"id", "corners": 8 x [x, y, z]}], "doors": [...], "windows": [...], "bboxes":
        [{"id", "class_name", "corners"}]}."""
        groups: dict[str, list[dict[str, Any]]] = {"walls": [], "doors": [], "windows": [], "bboxes": []}
        for solid in layout_solids(written):
            item: dict[str, Any] = {"id": solid.id}
            if solid.kind == "bbox":
                item["class_name"] = solid.name
            item["corners"] = np.round(self.written_to_input(solid.corners()), 6).tolist()
            groups[f"{solid.kind}s" if solid.kind != "bbox" else "bboxes"].append(item)
        return groups

    def to_json(self) -> dict[str, Any]:
        """The transform as infer's JSON records it (key "scan_transform")."""
        return {
            "units": self.units,
            "scale": self.scale,
            "crop": list(self.crop) if self.crop else None,
            "aligned": self.alignment is not None,
            "up_in_input_frame": self.alignment.up.round(6).tolist() if self.alignment is not None else None,
            "gravity_rotation": self.gravity.round(9).tolist(),
            "yaw_rad": round(self.yaw, 9),
            "translation_m": self.translation.round(6).tolist(),
            "input_to_model": self.matrix.round(9).tolist(),
            "layout_frame": "levelled" if self.alignment is not None else "input",
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> ScanTransform:
        """The inverse of `to_json` (infer's JSON, key "scan_transform"). InputError when malformed."""
        try:
            scale = float(record["scale"])
            alignment = None
            if record["aligned"]:
                alignment = Alignment(gravity=np.array(record["gravity_rotation"], dtype=np.float64).reshape(3, 3),
                                      yaw=float(record["yaw_rad"]),
                                      translation=np.array(record["translation_m"], dtype=np.float64).reshape(3),
                                      up=np.array(record["up_in_input_frame"], dtype=np.float64).reshape(3))
            crop = tuple(float(v) for v in record["crop"]) if record.get("crop") else None
            return cls(scale=scale, units=record.get("units"), crop=crop, alignment=alignment)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"the layout's scan_transform is malformed ({error})") from None


def read_scan_under_layout(path: Path, record: dict[str, object]) -> PointCloud:
    """The scan at `path` in the frame of a layout infer wrote from it, so the two lie over each other: the file's
    points times the recorded scale, levelled (`ScanTransform.scaled_to_written`). record: infer's JSON object
    (`layout.files.LayoutFile.record`); without a `scan_transform` (text layouts, identity transforms) the file's
    own frame, with a warning when that is clearly not metres (the layout is, so the two would not line up).
    points: (N, 3) metres. InputError for an unreadable scan or a malformed transform."""
    entry = record.get("scan_transform")
    if not isinstance(entry, dict):
        cloud = read_point_cloud(path)
        unit = detect_units(cloud.points)
        if unit is not None:
            log.warning(f"'{Path(path).name}' looks like it is in {UNIT_NAMES[unit]} while the layout is in metres "
                        "and records no scan transform, so the two will not line up: give the .json layout infer "
                        "wrote, which records it")
        return cloud
    transform = ScanTransform.from_json(entry)
    cloud = read_point_cloud(path, scale=transform.scale)
    return PointCloud(transform.scaled_to_written(cloud.points), cloud.colors)


def detect_units(points: np.ndarray) -> str | None:
    """The unit a scan is clearly in when that is not metres, else None. points: (N, 3) in file units.

    The smallest extent of the scan's principal box (1st to 99th percentile), a room's height, is compared with
    2-4.5 m in millimetres, centimetres and inches; these ranges do not overlap, and a smallest extent of 1-60
    reads as metres."""
    if len(points) < 10:
        return None
    centred = points - points.mean(axis=0)
    _, _, axes = np.linalg.svd(centred[:: max(1, len(points) // 200_000)], full_matrices=False)
    framed = centred @ axes.T
    extent = float((np.percentile(framed, 99, axis=0) - np.percentile(framed, 1, axis=0)).min())
    if METRE_SCAN_RANGE_M[0] <= extent <= METRE_SCAN_RANGE_M[1]:
        return None
    for unit in ("mm", "cm", "in"):
        if ROOM_HEIGHT_RANGE_M[0] <= extent * UNITS[unit] <= ROOM_HEIGHT_RANGE_M[1]:
            return unit
    return None


def extent_warning(points: np.ndarray, source: str = "the scan") -> str | None:
    """A line when a scan (N, 3) metres is wider than one room (ONE_ROOM_M) or than the model's grid
    (WORLD_EXTENT_M, beyond which points are clipped), else None."""
    extent = points.max(axis=0) - points.min(axis=0)
    size = f"{extent[0]:.1f} x {extent[1]:.1f} x {extent[2]:.1f} m"
    if extent.max() > WORLD_EXTENT_M:
        return (f"{source} spans {size}: more than the model's {WORLD_EXTENT_M:.0f} m grid, so points beyond it are "
                "clipped; run one region with --crop x0,y0,x1,y1")
    if extent[:2].max() > ONE_ROOM_M:
        return (f"{source} spans {size}: likely more than one room (over {ONE_ROOM_M:.0f} m across), which the "
                "model reads less well; run one room with --crop x0,y0,x1,y1")
    return None


def condition_scan(cloud: PointCloud, options: ScanOptions, source: str = "the scan",
                   scaled: bool = False) -> tuple[PointCloud, ScanTransform]:
    """Units, crop and alignment of a scan read in its file's units (or already scaled by `options.factor`:
    scaled=True, as `read_scan` does), and a warning when it is larger than one room. Returns the cloud in the
    model's frame (metres) and the transform. InputError for a scan clearly not in metres when the options do not
    say its unit, or a crop that keeps no point."""
    factor = options.factor
    units = options.units if options.units is not None else ("m" if factor in (None, 1.0) else None)
    points, colors = cloud.points, cloud.colors
    if factor is None:
        detected = detect_units(points)
        if detected is not None:
            raise InputError(f"{source} looks like it is in {UNIT_NAMES[detected]}, not metres: pass --units "
                             f"{detected} (or --units m to run it as it is)")
        factor = 1.0
    elif not scaled and factor != 1.0:
        points = points * factor
    if options.crop is not None:
        low, high = _crop_bounds(options.crop)
        keep = ((points >= low) & (points <= high)).all(axis=1)
        if not keep.any():
            lo, hi = points.min(axis=0), points.max(axis=0)
            raise InputError(f"--crop keeps no point of {source}, which spans x {lo[0]:.2f}..{hi[0]:.2f}, "
                             f"y {lo[1]:.2f}..{hi[1]:.2f}, z {lo[2]:.2f}..{hi[2]:.2f} m")
        points, colors = points[keep], colors[keep] if colors is not None else None
    alignment = None
    if options.align:
        alignment = estimate_alignment(points, options.up)
        points = alignment.apply(points)
    warning = extent_warning(points, source)
    if warning is not None:
        log.warning(warning)
    transform = ScanTransform(scale=factor, units=units, crop=options.crop, alignment=alignment)
    return PointCloud(points=points, colors=colors), transform


# A scan ready for the model: the cloud in the model's frame and how that frame relates to the file.
Scan = tuple[PointCloud, ScanTransform]


def read_scan(path: Path, options: ScanOptions) -> Scan:
    """Read a scan (`io.read_point_cloud`, any supported format) and condition it (`condition_scan`)."""
    factor = options.factor
    cloud = read_point_cloud(path, scale=factor if factor is not None else 1.0)
    return condition_scan(cloud, options, source=f"'{Path(path).name}'", scaled=True)
