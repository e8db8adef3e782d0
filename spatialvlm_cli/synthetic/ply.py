"""Write point clouds as binary PLY files (the format `spatialvlm infer` and SpatialLM read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz and uchar rgb.

    points: (N, 3) metres (stored as float32); colours: (N, 3) in 0..255 (stored as uint8)."""
    points = np.asarray(points)
    colours = np.asarray(colours)
    if points.ndim != 2 or points.shape[1] != 3 or colours.shape != points.shape:
        raise ValueError(f"points and colours must both be (N, 3), got {points.shape} and {colours.shape}")
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rows = np.zeros(len(points), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    rows["xyz"], rows["rgb"] = points, colours
    Path(path).write_bytes(header.encode("ascii") + rows.tobytes())
