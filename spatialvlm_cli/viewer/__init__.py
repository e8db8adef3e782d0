"""A 3-D view of a scan and its layout as a Rerun recording (rerun-sdk, the optional `view` extra).

Entities, all static, in metres, z up (`/` carries RIGHT_HAND_Z_UP view coordinates):
  scan                     Points3D, the scan's colours (grey without), at most `max_points` of them (a seeded
                           random subset), 1 cm radius;
  layout/walls, layout/doors, layout/windows
                           Boxes3D, one box per entity (`layout.solids`: walls with their thickness, openings as
                           deep as their wall), turned about +z, labelled wall_0, door_0, ...;
  layout/objects           Boxes3D, one oriented box per bbox, labelled with its class name;
  ground_truth/...         the same for a ground-truth layout, when given, in blue.

    data = recording_bytes(points, colors, layout)          # an .rrd file's bytes
    spawn_viewer(points, colors, layout)                    # the Rerun viewer, started by the SDK
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.io.pointcloud import PointCloud
from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.solids import Solid, layout_solids

APPLICATION_ID = "spatialvlm"
POINT_RADIUS_M = 0.01
GROUPS = {"wall": "walls", "door": "doors", "window": "windows", "bbox": "objects"}
PREDICTION_COLOURS = {"wall": (214, 84, 0), "door": (255, 170, 90), "window": (240, 120, 40), "bbox": (200, 60, 20)}
GROUND_TRUTH_COLOURS = {"wall": (20, 70, 180), "door": (120, 170, 240), "window": (60, 120, 220),
                        "bbox": (30, 110, 200)}
SCAN_GREY = (150, 150, 150)


def _rerun() -> Any:
    try:
        import rerun  # here, not at the top: an optional extra (`view`), loaded only for `spatialvlm view`
    except ImportError:
        raise InputError("the 3-D view needs rerun-sdk: pip install 'spatialvlm[view]'") from None
    return rerun


def log_scene(recording: Any, points: np.ndarray | None, colors: np.ndarray | None, layout: Layout,
              gt: Layout | None = None, max_points: int = 1_000_000, seed: int = 0) -> None:
    """Log the scan and layout(s) into a Rerun `RecordingStream`. points: (N, 3) metres or None; colors: (N, 3)
    in [0, 1] or None; layout, gt: metres, the points' frame."""
    rr = _rerun()
    recording.log("/", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    if points is not None and len(points):
        shown = PointCloud(points, colors).subsampled(max_points, seed)
        points, colors = shown.points, shown.colors
        rgb = (np.clip(colors, 0.0, 1.0) * 255).round().astype(np.uint8) if colors is not None else np.tile(
            np.array(SCAN_GREY, dtype=np.uint8), (len(points), 1))
        recording.log("scan", rr.Points3D(points.astype(np.float32), colors=rgb, radii=POINT_RADIUS_M), static=True)
    _log_layout(rr, recording, "layout", layout, PREDICTION_COLOURS)
    if gt is not None:
        _log_layout(rr, recording, "ground_truth", gt, GROUND_TRUTH_COLOURS)


def _log_layout(rr: Any, recording: Any, root: str, layout: Layout,
                colours: dict[str, tuple[int, int, int]]) -> None:
    solids = layout_solids(layout)
    for kind, group in GROUPS.items():
        chosen: list[Solid] = [solid for solid in solids if solid.kind == kind]
        if not chosen:
            continue
        labels = [solid.name if kind == "bbox" else f"{kind}_{solid.id}" for solid in chosen]
        recording.log(f"{root}/{group}", rr.Boxes3D(
            centers=[solid.centre for solid in chosen],
            half_sizes=[[value / 2 for value in solid.size] for solid in chosen],
            rotation_axis_angles=[rr.RotationAxisAngle(axis=[0.0, 0.0, 1.0], angle=solid.yaw) for solid in chosen],
            colors=[colours[kind]] * len(chosen), labels=labels, show_labels=kind == "bbox"), static=True)


def recording_bytes(points: np.ndarray | None, colors: np.ndarray | None, layout: Layout, gt: Layout | None = None,
                    max_points: int = 1_000_000, seed: int = 0, name: str = "scene") -> bytes:
    """The bytes of an .rrd file holding `log_scene`'s entities (name: the recording's name)."""
    rr = _rerun()
    recording = rr.RecordingStream(APPLICATION_ID, recording_id=name)
    stream = recording.binary_stream()
    log_scene(recording, points, colors, layout, gt, max_points, seed)
    return stream.read(flush=True)


def spawn_viewer(points: np.ndarray | None, colors: np.ndarray | None, layout: Layout, gt: Layout | None = None,
                 max_points: int = 1_000_000, seed: int = 0, name: str = "scene") -> None:
    """Start the Rerun viewer (the SDK's own binary) and send it `log_scene`'s entities."""
    rr = _rerun()
    recording = rr.RecordingStream(APPLICATION_ID, recording_id=name)
    recording.spawn()
    log_scene(recording, points, colors, layout, gt, max_points, seed)
    recording.flush()
