"""Scan formats other than .ply: what open3d reads itself (.pcd, .xyz, .xyzrgb, .pts) and, through optional extras,
LAS/LAZ (laspy) and E57 (pye57). Each reader checks the file against what it declares (a truncated file is an
error, not fewer points) and returns plain arrays; `pointcloud.read_point_cloud` dispatches on the suffix and runs
the checks every format shares (no points, NaN rows, extent).

Colours come back as open3d stores them: (N, 3) float64 in [0, 1], or None.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from spatialvlm_cli.errors import InputError

OPEN3D_SUFFIXES = (".pcd", ".xyz", ".xyzrgb", ".pts")
EXTRA_SUFFIXES = {".las": "las", ".laz": "las", ".e57": "e57"}  # suffix -> the extra that reads it
SCAN_SUFFIXES = (".ply", *OPEN3D_SUFFIXES, *EXTRA_SUFFIXES)

_MAX_HEADER_BYTES = 1 << 16

Arrays = tuple[np.ndarray, np.ndarray | None]  # points (N, 3) float64, colours (N, 3) float64 in [0, 1] or None


def read_other_format(path: Path) -> Arrays:
    """Points and colours of a scan that is not a .ply (see SCAN_SUFFIXES). Raises InputError for a malformed or
    truncated file, or when the extra a format needs is not installed."""
    suffix = path.suffix.lower()
    if suffix == ".pcd":
        _check_pcd(path)
    elif suffix in (".xyz", ".xyzrgb", ".pts"):
        _check_text_rows(path, counted=suffix == ".pts")
    if suffix in OPEN3D_SUFFIXES:
        return _read_open3d(path, suffix[1:])
    if suffix in (".las", ".laz"):
        return _read_las(path)
    if suffix == ".e57":
        return _read_e57(path)
    raise InputError(f"'{path}' is not a scan this tool reads ({', '.join(SCAN_SUFFIXES)})")


def _read_open3d(path: Path, fmt: str) -> Arrays:
    # Here, not at the top: open3d takes ~1 s to import, and `eval` and `plot` import io/ without reading scans.
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    cloud = o3d.io.read_point_cloud(str(path), format=fmt)
    points = np.asarray(cloud.points, dtype=np.float64)
    colors = np.asarray(cloud.colors, dtype=np.float64)[:, :3] if cloud.has_colors() else None
    return points, colors


def _header_lines(path: Path, stop: re.Pattern[bytes]) -> tuple[list[str], int]:
    """The text lines of a header ending with the line `stop` matches, and the byte offset after it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_MAX_HEADER_BYTES)
    except OSError as error:
        raise InputError(f"cannot read '{path}': {error.strerror or error}") from None
    match = stop.search(head)
    if match is None:
        return [], -1
    return head[: match.end()].decode("ascii", errors="replace").splitlines(), match.end()


def _check_pcd(path: Path) -> None:
    """InputError when a .pcd's body is shorter than its header declares (open3d would read what is there, or
    nothing, without saying why)."""
    lines, offset = _header_lines(path, re.compile(rb"^DATA[ \t]+\S+[ \t]*(\r\n|\n|\r)", re.MULTILINE))
    if offset < 0:
        raise InputError(f"'{path}' is not a PCD file (no DATA line in its header)")
    fields = {words[0].upper(): words[1:] for line in lines if (words := line.split())}
    try:
        count = int(fields["POINTS"][0]) if "POINTS" in fields else int(fields["WIDTH"][0]) * int(
            fields["HEIGHT"][0])
        sizes = [int(size) for size in fields["SIZE"]]
        counts = [int(c) for c in fields.get("COUNT", ["1"] * len(sizes))]
    except (KeyError, IndexError, ValueError):
        raise InputError(f"'{path}' has a malformed PCD header (POINTS, SIZE or COUNT)") from None
    data = fields["DATA"][0].lower()
    body = path.stat().st_size - offset
    if data == "ascii":
        found = _count_text_rows(path, offset)
        if found < count:
            raise InputError(f"'{path}' is truncated: its header declares {count} points but the file holds "
                             f"{found} data line(s)")
    elif data == "binary":
        needed = count * sum(size * c for size, c in zip(sizes, counts, strict=False))
        if body < needed:
            raise InputError(f"'{path}' is truncated: its header declares {count} points ({needed} bytes) but the "
                             f"file holds {body} bytes after the header")
    elif data == "binary_compressed":
        with path.open("rb") as handle:
            handle.seek(offset)
            sizes_word = handle.read(8)
        compressed = int.from_bytes(sizes_word[:4], "little") if len(sizes_word) == 8 else None
        if compressed is None or body < 8 + compressed:
            raise InputError(f"'{path}' is truncated: its compressed body is shorter than its header declares")
    else:
        raise InputError(f"'{path}' has an unknown PCD DATA type '{data}'")


def _count_text_rows(path: Path, offset: int) -> int:
    """Non-empty lines after byte `offset`."""
    with path.open("rb") as handle:
        handle.seek(offset)
        return sum(1 for line in handle if line.strip())


def _check_text_rows(path: Path, counted: bool) -> None:
    """InputError for a text scan (.xyz, .xyzrgb, .pts) whose last row has fewer values than its first (a file cut
    off mid-row), or, for a .pts (counted: its first line is the number of points), fewer rows than it declares.
    Streams the file: a scan of millions of rows is never held as text."""
    declared: int | None = None
    first = last = 0  # values in the first and the last data row
    rows = 0
    try:
        with path.open("rb") as handle:
            for line in handle:
                values = len(line.split())
                if values == 0:
                    continue
                if counted and declared is None:
                    if values != 1 or not line.strip().isdigit():
                        raise InputError(f"'{path}' is not a PTS file (its first line must be the number of points)")
                    declared = int(line)
                    continue
                rows += 1
                first, last = first or values, values
    except OSError as error:
        raise InputError(f"cannot read '{path}': {error.strerror or error}") from None
    if declared is not None and rows < declared:
        raise InputError(f"'{path}' is truncated: it declares {declared} points but holds {rows} row(s)")
    if last < first:
        raise InputError(f"'{path}' is truncated: its last row has {last} value(s), its first {first}")


def missing_extra(extra: str, package: str, suffix: str) -> InputError:
    """The one-line error for a format whose optional extra is not installed."""
    return InputError(f"reading {suffix} files needs {package}: pip install 'spatialvlm[{extra}]'")


def _read_las(path: Path) -> Arrays:
    """LAS/LAZ points (scaled, offset coordinates) and their RGB when the point format has it."""
    try:
        import laspy  # here, not at the top: an optional extra (`las`), loaded only for .las/.laz files
    except ImportError:
        raise missing_extra("las", "laspy", path.suffix.lower()) from None
    try:
        with laspy.open(str(path)) as reader:
            header = reader.header
        declared = int(header.point_count)
        if path.suffix.lower() == ".las":  # LAZ bodies are compressed: the decoder finds their truncation
            needed = int(header.offset_to_point_data) + declared * int(header.point_format.size)
            found = path.stat().st_size
            if found < needed:
                raise InputError(f"'{path}' is truncated: its header declares {declared} points ({needed} bytes) "
                                 f"but the file holds {found} bytes")
        data = laspy.read(str(path))
    except InputError:
        raise
    except Exception as error:  # laspy and its LAZ backends raise their own classes for truncated or bad files
        raise InputError(f"'{path}' is truncated or not a valid LAS/LAZ file: {_first_line(error)}") from None
    points = np.stack([np.asarray(data.x), np.asarray(data.y), np.asarray(data.z)], axis=1).astype(np.float64)
    names = set(data.point_format.dimension_names)
    colors = None
    if {"red", "green", "blue"} <= names and len(points):
        rgb = np.stack([np.asarray(data.red), np.asarray(data.green), np.asarray(data.blue)], axis=1)
        # LAS stores 16-bit colour; some writers put 8-bit values in it.
        colors = rgb.astype(np.float64) / (255.0 if rgb.max() <= 255 else 65535.0)
    return points, colors


def _read_e57(path: Path) -> Arrays:
    """Every scan of an E57 file in the file's common frame (each scan's pose applied), with colours when all
    scans have them."""
    try:
        import pye57  # here, not at the top: an optional extra (`e57`), loaded only for .e57 files
    except ImportError:
        raise missing_extra("e57", "pye57", ".e57") from None
    parts, colours = [], []
    try:
        e57 = pye57.E57(str(path))
        for index in range(e57.scan_count):
            scan = e57.read_scan(index, colors=True, ignore_missing_fields=True, transform=True)
            parts.append(np.stack([scan["cartesianX"], scan["cartesianY"], scan["cartesianZ"]], axis=1))
            if all(f"color{c}" in scan for c in ("Red", "Green", "Blue")):
                colours.append(np.stack([scan["colorRed"], scan["colorGreen"], scan["colorBlue"]], axis=1))
    except Exception as error:  # libE57 raises its own exception class, with a multi-line report
        raise InputError(f"'{path}' is truncated or not a valid E57 file: {_first_line(error)}") from None
    if not parts:
        return np.zeros((0, 3)), None
    points = np.concatenate(parts).astype(np.float64)
    colors = None
    if len(colours) == len(parts):
        rgb = np.concatenate(colours).astype(np.float64)
        colors = rgb / (255.0 if rgb.max(initial=0.0) <= 255 else 65535.0)
    return points, colors


def _first_line(error: Exception) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
