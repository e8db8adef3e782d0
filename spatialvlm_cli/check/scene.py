"""The point cloud `spatialvlm check` feeds the model: a given .ply, the shipped `scenes/room_000.ply`, or (for an
installed package without the repository's scenes) a small synthetic room generated in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spatialvlm_cli
from spatialvlm_cli.io import PointCloud, read_point_cloud

SHIPPED_SCENE = Path("scenes") / "room_000.ply"


@dataclass(frozen=True)
class CheckScene:
    """cloud: points (N, 3) metres, colours (N, 3) in [0, 1]; source: a path or a description of the synthetic room."""

    cloud: PointCloud
    source: str


def synthetic_room(size_m: tuple[float, float, float] = (4.0, 3.0, 2.5), spacing_m: float = 0.05,
                   seed: int = 0) -> PointCloud:
    """Floor, ceiling and four walls of a box room sampled on a jittered grid of `spacing_m` (about 25k points for
    the default 4 x 3 x 2.5 m room), with random colours. Deterministic for a given seed."""
    generator = np.random.default_rng(seed)
    sx, sy, sz = size_m
    xs, ys, zs = (np.arange(0.0, extent + 1e-9, spacing_m) for extent in size_m)
    planes = []
    for z in (0.0, sz):
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        planes.append(np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], axis=1))
    for x in (0.0, sx):
        gy, gz = np.meshgrid(ys, zs, indexing="ij")
        planes.append(np.stack([np.full(gy.size, x), gy.ravel(), gz.ravel()], axis=1))
    for y in (0.0, sy):
        gx, gz = np.meshgrid(xs, zs, indexing="ij")
        planes.append(np.stack([gx.ravel(), np.full(gx.size, y), gz.ravel()], axis=1))
    points = np.concatenate(planes) + generator.normal(0.0, spacing_m / 10, size=(sum(map(len, planes)), 3))
    colors = generator.uniform(0.0, 1.0, size=points.shape)
    return PointCloud(points=points, colors=colors)


def default_scene_path() -> Path | None:
    """`scenes/room_000.ply` in the working directory or next to the package's source tree, if either exists."""
    for candidate in (Path.cwd() / SHIPPED_SCENE, Path(spatialvlm_cli.__file__).resolve().parents[1] / SHIPPED_SCENE):
        if candidate.is_file():
            return candidate
    return None


def load_check_scene(point_cloud: Path | None = None) -> CheckScene:
    """The given .ply (InputError if unreadable), else the shipped scene, else the synthetic room."""
    if point_cloud is not None:
        return CheckScene(read_point_cloud(point_cloud), str(point_cloud))
    path = default_scene_path()
    if path is not None:
        return CheckScene(read_point_cloud(path), str(path))
    return CheckScene(synthetic_room(), "synthetic 4 x 3 x 2.5 m room (scenes/room_000.ply not found)")
