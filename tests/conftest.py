"""Shared fixtures: small .ply files written the ways real scanners and tools write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_ascii_ply(path: Path, points: np.ndarray, colors: np.ndarray | None = None, color_type: str = "uchar",
                    faces: np.ndarray | None = None) -> Path:
    """Write an ascii PLY by hand (so tests also cover float colours and mesh files open3d would not write)."""
    lines = ["ply", "format ascii 1.0", f"element vertex {len(points)}",
             "property float x", "property float y", "property float z"]
    if colors is not None:
        lines += [f"property {color_type} red", f"property {color_type} green", f"property {color_type} blue"]
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    lines.append("end_header")
    for i, point in enumerate(points):
        row = [f"{v:.6f}" for v in point]
        if colors is not None:
            row += [str(int(c)) if color_type == "uchar" else f"{c:.6f}" for c in colors[i]]
        lines.append(" ".join(row))
    for face in faces if faces is not None else []:
        lines.append(" ".join(["3", *map(str, face)]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_ply(tmp_path: Path):
    def make(name: str, points: np.ndarray, colors: np.ndarray | None = None, **kwargs) -> Path:
        return write_ascii_ply(tmp_path / name, np.asarray(points, dtype=float), colors, **kwargs)

    return make
