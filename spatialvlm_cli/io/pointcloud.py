"""Reading point clouds (.ply through open3d; the other scan formats through `formats.py`) into plain numpy arrays,
with the checks a user needs.

open3d is imported inside the functions so the CLI starts instantly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.io.formats import SCAN_SUFFIXES, read_other_format

log = logging.getLogger(__name__)


@dataclass
class PointCloud:
    """points: (N, 3) float64 metres, z-up, the file's frame.
    colors: (N, 3) float64 as open3d stores them (normally [0, 1]), or None when the file has no colours."""

    points: np.ndarray
    colors: np.ndarray | None

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subsampled(self, max_points: int, seed: int = 0) -> PointCloud:
        """At most `max_points` of the points (0: all), a seeded random choice kept in file order: what a picture
        or a viewer needs of a large scan."""
        if not 0 < max_points < len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=max_points, replace=False))
        return PointCloud(self.points[keep], self.colors[keep] if self.colors is not None else None)


def find_point_clouds(path: Path) -> list[Path]:
    """A scan file (.ply or another of SCAN_SUFFIXES) -> [it]; a folder -> its scan files (not recursive, sorted).
    InputError when there are none, or when two scans of a folder share a name (their layouts would too)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"'{path}' does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SCAN_SUFFIXES)
        if not files:
            others = ", ".join(SCAN_SUFFIXES[1:])
            raise InputError(f"folder '{path}' contains no .ply files (nor other scans: {others})")
        stems: dict[str, Path] = {}
        for file in files:
            if (twin := stems.setdefault(file.stem, file)) is not file:
                raise InputError(f"folder '{path}' holds both '{twin.name}' and '{file.name}': their layouts would "
                                 "share a name; move one of them")
        return files
    if path.suffix.lower() not in SCAN_SUFFIXES:
        raise InputError(f"'{path}' is not a .ply file (nor another scan this tool reads: "
                         f"{', '.join(SCAN_SUFFIXES[1:])})")
    return [path]


_FLOAT_TYPES = {"float", "float32", "double", "float64"}
_TYPE_BYTES = {
    "char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
    "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}
_MAX_HEADER_BYTES = 1 << 16
# A scan in metres spans metres to a few hundred; open3d's voxel indices overflow long before 1e30.
MAX_EXTENT_M = 10_000.0


@dataclass(frozen=True)
class _PlyElement:
    """One `element NAME COUNT` of a PLY header; row_bytes is None when a property is a list (variable size)."""

    name: str
    count: int
    row_bytes: int | None


@dataclass(frozen=True)
class _PlyHeader:
    lines: list[str]
    format: str  # ascii | binary_little_endian | binary_big_endian
    elements: list[_PlyElement]
    body_offset: int  # bytes before the first data byte


def _read_ply_header(path: Path) -> _PlyHeader:
    """The header up to `end_header`. InputError if the file is not a PLY."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_MAX_HEADER_BYTES)
    except OSError as error:
        raise InputError(f"cannot read '{path}': {error.strerror or error}") from None
    if not head.startswith((b"ply\n", b"ply\r")):
        raise InputError(f"'{path}' is not a PLY file (it does not start with a 'ply' header)")
    match = re.search(rb"end_header[ \t]*(\r\n|\n|\r)", head)
    if match is None:
        raise InputError(f"'{path}' has a malformed PLY header (no 'end_header')")
    lines = head[: match.start()].decode("ascii", errors="replace").splitlines()
    fmt = ""
    elements: list[_PlyElement] = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "format":
            fmt = words[1]
        elif len(words) == 3 and words[0] == "element":
            if not words[2].isdigit():
                raise InputError(f"'{path}' has a malformed PLY header (element count '{words[2]}')")
            elements.append(_PlyElement(words[1], int(words[2]), 0))
        elif words[:1] == ["property"] and elements:
            last = elements[-1]
            size = _TYPE_BYTES.get(words[1]) if len(words) == 3 else None
            row = None if size is None or last.row_bytes is None else last.row_bytes + size
            elements[-1] = _PlyElement(last.name, last.count, row)
    return _PlyHeader(lines, fmt, elements, match.end())


def _check_body_size(path: Path, header: _PlyHeader) -> None:
    """InputError when the file is shorter than its header says up to the vertices: open3d would read a truncated
    body as zero-filled points and say nothing useful."""
    before_and_vertices: list[_PlyElement] = []
    for element in header.elements:
        before_and_vertices.append(element)
        if element.name == "vertex":
            break
    else:
        return  # no vertex element: open3d reports "no points"
    vertices = before_and_vertices[-1].count
    if header.format == "ascii":
        needed = sum(element.count for element in before_and_vertices)
        found = _count_lines(path, header.body_offset)
        if found < needed:
            raise InputError(f"'{path}' is truncated: its header declares {vertices} vertices but the file holds "
                             f"{found} data line(s)")
        return
    if any(element.row_bytes is None for element in before_and_vertices):
        return  # a list property before the vertices: sizes are known only by parsing
    needed = sum(element.count * (element.row_bytes or 0) for element in before_and_vertices)
    found = path.stat().st_size - header.body_offset
    if found < needed:
        row = before_and_vertices[-1].row_bytes or 1
        raise InputError(f"'{path}' is truncated: its header declares {vertices} vertices ({needed} bytes) but the "
                         f"file holds {found} bytes after the header (about {max(found, 0) // row} vertices)")


def _count_lines(path: Path, offset: int) -> int:
    """Non-empty lines after `offset` (a last line without a newline counts)."""
    count = 0
    last = b"\n"
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(1 << 22):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _has_float_colors(header: list[str]) -> bool:
    for line in header:
        words = line.split()
        if len(words) == 3 and words[0] == "property" and words[2] == "red":
            return words[1] in _FLOAT_TYPES
    return False


def read_point_cloud(path: Path, scale: float = 1.0) -> PointCloud:
    """Read a scan: the vertices of a .ply (point cloud or mesh; binary or ascii; uchar colours, or float colours in
    [0, 1] or [0, 255]), or any other of SCAN_SUFFIXES (`formats.py`). scale: metres per file unit (0.001 for a
    scan in millimetres), applied before the checks.

    Rows with a non-finite coordinate or colour are dropped with a warning. Raises InputError for a missing,
    malformed or truncated file (body shorter than the header declares), one with no finite point, or one that spans
    more than MAX_EXTENT_M.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"'{path}' does not exist or is not a file")
    if path.suffix.lower() == ".ply":
        points, colors = _read_ply(path)
    else:
        points, colors = read_other_format(path)
    if points.shape[0] == 0:
        raise InputError(f"'{path}' has no points (empty or unreadable {path.suffix.lstrip('.').upper()})")

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
    points = points * scale if scale != 1.0 else points
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    if extent > MAX_EXTENT_M:
        raise InputError(f"'{path}' spans {extent:.3g} m: coordinates must be metres and a scan at most "
                         f"{MAX_EXTENT_M:.0f} m across (a scan in other units: --units or --scale)")
    return PointCloud(points=points, colors=colors)


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (N, 3) and colours (N, 3) in [0, 1] or None of a .ply, checked against its header first."""
    import open3d as o3d  # here, not at the top: ~1 s to import, and `eval` and `plot` import io/ without reading

    header = _read_ply_header(path)
    _check_body_size(path, header)
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    cloud = o3d.io.read_point_cloud(str(path), format="ply")
    points = np.asarray(cloud.points, dtype=np.float64)
    colors = np.asarray(cloud.colors, dtype=np.float64)[:, :3] if cloud.has_colors() else None
    # open3d divides float colours by 255 whatever their range; unit-range float colours would turn black.
    if colors is not None and _has_float_colors(header.lines) and colors.max(initial=0.0) <= 1.0 / 255 + 1e-9:
        colors = colors * 255.0
    return points, colors
