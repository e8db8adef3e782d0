"""Reading point clouds (.ply through open3d) into plain numpy arrays, with the checks a user needs.

open3d is imported inside the functions so the CLI starts instantly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatialvlm_cli.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class PointCloud:
    """points: (N, 3) float64 metres, z-up, the file's frame.
    colors: (N, 3) float64 as open3d stores them (normally [0, 1]), or None when the file has no colours."""

    points: np.ndarray
    colors: np.ndarray | None

    def __len__(self) -> int:
        return int(self.points.shape[0])


def find_point_clouds(path: Path) -> list[Path]:
    """A .ply file -> [it]; a folder -> its *.ply files (not recursive, sorted). InputError when there are none."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"'{path}' does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".ply")
        if not files:
            raise InputError(f"folder '{path}' contains no .ply files")
        return files
    if path.suffix.lower() != ".ply":
        raise InputError(f"'{path}' is not a .ply file")
    return [path]


_FLOAT_TYPES = {"float", "float32", "double", "float64"}
_MAX_HEADER_BYTES = 1 << 16


def _read_ply_header(path: Path) -> list[str]:
    """The header lines up to `end_header`. InputError if the file is not a PLY."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_MAX_HEADER_BYTES)
    except OSError as error:
        raise InputError(f"cannot read '{path}': {error.strerror or error}") from None
    if not head.startswith((b"ply\n", b"ply\r")):
        raise InputError(f"'{path}' is not a PLY file (it does not start with a 'ply' header)")
    header, found, _ = head.partition(b"end_header")
    if not found:
        raise InputError(f"'{path}' has a malformed PLY header (no 'end_header')")
    return header.decode("ascii", errors="replace").splitlines()


def _has_float_colors(header: list[str]) -> bool:
    for line in header:
        words = line.split()
        if len(words) == 3 and words[0] == "property" and words[2] == "red":
            return words[1] in _FLOAT_TYPES
    return False


def read_point_cloud(path: Path) -> PointCloud:
    """Read the vertices of a .ply (point cloud or mesh; binary or ascii; uchar colours, or float colours in
    [0, 1] or [0, 255]).

    Rows with a non-finite coordinate or colour are dropped with a warning. Raises InputError for a missing or
    malformed file, or one with no finite point.
    """
    import open3d as o3d

    path = Path(path)
    if not path.is_file():
        raise InputError(f"'{path}' does not exist or is not a file")
    header = _read_ply_header(path)
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    cloud = o3d.io.read_point_cloud(str(path), format="ply")
    points = np.asarray(cloud.points, dtype=np.float64)
    if points.shape[0] == 0:
        raise InputError(f"'{path}' has no points (empty or unreadable PLY)")
    colors = np.asarray(cloud.colors, dtype=np.float64)[:, :3] if cloud.has_colors() else None
    # open3d divides float colours by 255 whatever their range; unit-range float colours would turn black.
    if colors is not None and _has_float_colors(header) and colors.max(initial=0.0) <= 1.0 / 255 + 1e-9:
        colors = colors * 255.0

    finite = np.isfinite(points).all(axis=1)
    if colors is not None:
        finite &= np.isfinite(colors).all(axis=1)
    if not finite.all():
        kept = int(finite.sum())
        if kept == 0:
            raise InputError(f"'{path}' has no finite points (all {len(points)} rows contain NaN or inf)")
        log.warning("'%s': dropped %d of %d rows with NaN or inf values", path, len(points) - kept, len(points))
        points = points[finite]
        colors = colors[finite] if colors is not None else None
    return PointCloud(points=points, colors=colors)
