"""SpatialLM's point-cloud preprocessing, step for step (inference.py + spatiallm/pcd/*).

cleanup (open3d voxel down-sample + statistical outlier removal) -> colours to [0, 255] -> shift by the min
corner -> colours to [-1, 1] -> grid sampling at 32/num_bins m keeping one point per voxel (test mode) ->
rows (N, 9) = [grid_coord (cells), xyz (metres, shifted), rgb ([-1, 1])].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.io.pointcloud import PointCloud

log = logging.getLogger(__name__)

WORLD_EXTENT_M = 32.0  # SpatialLM's NORMALIZATION_PRESET["world"] = (0, 32) metres
CLEANUP_NEIGHBOURS = 15
CLEANUP_STD_RATIO = 2.0

_FNV64_OFFSET = np.uint64(14695981039346656037)
_FNV64_PRIME = np.uint64(1099511628211)


def grid_size_m(num_bins: int) -> float:
    """Side of one input voxel in metres: 0.025 for num_bins 1280 (SpatialLM 1.1), 0.05 for 640 (1.0)."""
    return WORLD_EXTENT_M / num_bins


@dataclass
class PreparedCloud:
    """rows: (V, 9) float32 = [grid_coord (V,3) input-grid cells in [0, num_bins-1], xyz (V,3) metres relative to
    min_extent, rgb (V,3) in [-1, 1]], one row per occupied voxel.
    min_extent: (3,) float64 metres, the cleaned cloud's min corner: add it to map model output back to the file's
    frame."""

    rows: np.ndarray
    min_extent: np.ndarray
    num_bins: int
    num_input_points: int
    num_cleaned_points: int

    @property
    def num_voxels(self) -> int:
        return int(self.rows.shape[0])


def cleanup(cloud: PointCloud, voxel_size_m: float) -> PointCloud:
    """SpatialLM's `cleanup_pcd`: open3d voxel down-sample (averages points and colours per voxel), then statistical
    outlier removal with 15 neighbours and std ratio 2."""
    # Here, not at the top: open3d takes ~1 s to import, and `infer` imports this module (through pipeline.py)
    # to check its flags before anything heavy loads (tests/test_layering.py).
    import open3d as o3d

    o3d_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.points))
    if cloud.colors is not None:
        o3d_cloud.colors = o3d.utility.Vector3dVector(cloud.colors)
    o3d_cloud = o3d_cloud.voxel_down_sample(voxel_size_m)
    o3d_cloud, _ = o3d_cloud.remove_statistical_outlier(CLEANUP_NEIGHBOURS, std_ratio=CLEANUP_STD_RATIO)
    points = np.asarray(o3d_cloud.points, dtype=np.float64)
    colors = np.asarray(o3d_cloud.colors, dtype=np.float64) if cloud.colors is not None else None
    return PointCloud(points=points, colors=colors)


def colors_to_255(cloud: PointCloud) -> np.ndarray:
    """(N, 3) colours on SpatialLM's 0..255 scale: unit-range colours become uint8 (truncated) as upstream does;
    a cloud without colours gets zeros (which normalise to -1)."""
    if cloud.colors is None:
        return np.zeros_like(cloud.points, dtype=np.uint8)
    if cloud.colors.max(initial=0.0) < 1.1:
        return (cloud.colors * 255).astype(np.uint8)
    return cloud.colors


def fnv64_hash(grid_coord: np.ndarray) -> np.ndarray:
    """FNV-1a 64-bit hash of each row of non-negative integer coordinates (V, 3) -> (V,) uint64, as Pointcept."""
    keys = grid_coord.astype(np.uint64, copy=False)
    hashed = np.full(keys.shape[0], _FNV64_OFFSET, dtype=np.uint64)
    for column in range(keys.shape[1]):
        hashed *= _FNV64_PRIME
        hashed ^= keys[:, column]
    return hashed


def grid_sample(coord_m: np.ndarray, voxel_size_m: float, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep one point per occupied voxel, deterministically (Pointcept GridSample, test mode).

    coord_m: (N, 3) float64 metres, already shifted to a non-negative min corner.
    Returns grid_coord (V, 3) int64 cells clipped to [0, num_bins-1], and index (V,) int64 of the kept points:
    within each voxel's run in hash order, the point at (max_count // 2) % count.
    """
    grid_coord = np.floor(coord_m / voxel_size_m).astype(np.int64)
    grid_coord -= grid_coord.min(axis=0)
    if (grid_coord >= num_bins).any():
        log.warning("the cloud extends beyond %.0f m: coordinates were clipped to the grid", WORLD_EXTENT_M)
    grid_coord = np.clip(grid_coord, 0, num_bins - 1)
    key = fnv64_hash(grid_coord)
    order = np.argsort(key)  # numpy's default sort, as upstream: it decides which point of a voxel is kept
    _, count = np.unique(key[order], return_counts=True)
    run_start = np.cumsum(np.insert(count, 0, 0)[:-1])
    index = order[run_start + (count.max() // 2) % count]
    return grid_coord[index], index


def prepare_point_cloud(cloud: PointCloud, num_bins: int, *, clean: bool = True) -> PreparedCloud:
    """The whole of SpatialLM's preprocessing for one cloud. Raises InputError if nothing survives cleanup."""
    voxel_size = grid_size_m(num_bins)
    cleaned = cleanup(cloud, voxel_size) if clean else cloud
    if len(cleaned) == 0:
        raise InputError("no points left after cleanup (try --no_cleanup for very sparse clouds)")
    min_extent = cleaned.points.min(axis=0)
    coord = cleaned.points - min_extent
    rgb = colors_to_255(cleaned) / 127.5 - 1.0
    grid_coord, index = grid_sample(coord, voxel_size, num_bins)
    rows = np.concatenate([grid_coord, coord[index], rgb[index]], axis=1).astype(np.float32)
    return PreparedCloud(
        rows=rows,
        min_extent=min_extent,
        num_bins=num_bins,
        num_input_points=len(cloud),
        num_cleaned_points=len(cleaned),
    )
