import numpy as np
import pytest

from spatialvlm_cli.io import PointCloud
from spatialvlm_cli.preprocess import colors_to_255, fnv64_hash, grid_sample, grid_size_m, prepare_point_cloud


def fnv64_reference(row: tuple[int, ...]) -> int:
    value = 14695981039346656037
    for c in row:
        value = (value * 1099511628211) % 2**64
        value ^= c
    return value


def test_grid_size():
    assert grid_size_m(1280) == 0.025
    assert grid_size_m(640) == 0.05


def test_fnv64_matches_integer_arithmetic():
    rows = np.array([[0, 0, 0], [1, 2, 3], [1279, 5, 77]])
    assert fnv64_hash(rows).tolist() == [fnv64_reference(tuple(r)) for r in rows.tolist()]


def test_grid_sample_keeps_one_point_per_voxel_hand_case():
    # Voxel (0,0,0) holds points 0, 2, 3; voxel (2,0,0) holds point 1. max count 3 -> keep run index 3//2 % n:
    # index 1 of the 3-point voxel (its second point, 2) and index 0 of the single point.
    coord = np.array([[0.01, 0.01, 0.01], [0.06, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 0.02, 0.0]])
    grid, index = grid_sample(coord, 0.025, 1280)
    kept = {tuple(g): int(i) for g, i in zip(grid.tolist(), index.tolist(), strict=True)}
    assert kept == {(0, 0, 0): 2, (2, 0, 0): 1}


def test_grid_sample_clips_to_num_bins(caplog):
    coord = np.array([[0.0, 0.0, 0.0], [40.0, 0.0, 0.0]])  # 40 m is beyond the 32 m world
    grid, _ = grid_sample(coord, 0.025, 1280)
    assert grid[:, 0].max() == 1279
    assert "clipped" in caplog.text


def test_colours_follow_spatiallm_scaling():
    cloud = PointCloud(points=np.zeros((2, 3)), colors=np.array([[0.5, 1.0, 0.0], [0.2, 0.4, 0.999]]))
    assert colors_to_255(cloud).tolist() == [[127, 255, 0], [51, 102, 254]]
    assert colors_to_255(PointCloud(points=np.zeros((1, 3)), colors=None)).tolist() == [[0, 0, 0]]


def test_prepare_without_cleanup_hand_values():
    points = np.array([[1.0, 2.0, 3.0], [1.05, 2.0, 3.0], [1.0, 2.1, 3.2]])
    colors = np.array([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    prepared = prepare_point_cloud(PointCloud(points, colors), num_bins=640, clean=False)  # 5 cm voxels
    np.testing.assert_allclose(prepared.min_extent, [1.0, 2.0, 3.0])
    rows = {tuple(r[:3]): r for r in prepared.rows.tolist()}
    assert set(rows) == {(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 2.0, 4.0)}
    np.testing.assert_allclose(rows[(0.0, 2.0, 4.0)][3:6], [0.0, 0.1, 0.2], atol=1e-6)
    np.testing.assert_allclose(rows[(0.0, 0.0, 0.0)][6:], [1.0, -1.0, 127 / 127.5 - 1], atol=1e-6)
    assert prepared.rows.dtype == np.float32 and prepared.num_voxels == 3


def test_cleanup_removes_an_outlier_and_voxelises():
    rng = np.random.default_rng(0)
    wall = np.column_stack([rng.uniform(0, 2, 4000), np.zeros(4000), rng.uniform(0, 2, 4000)])
    cloud = PointCloud(np.vstack([wall, [[1.0, 5.0, 1.0]]]), None)
    prepared = prepare_point_cloud(cloud, num_bins=1280)
    assert prepared.num_cleaned_points < prepared.num_input_points
    assert prepared.rows[:, 4].max() < 0.1  # the point 5 m off the wall was removed as an outlier
    np.testing.assert_allclose(prepared.rows[:, 6:], -1.0)  # no colours -> zeros -> -1


def test_prepare_rejects_everything_removed():
    from spatialvlm_cli.errors import InputError

    with pytest.raises(InputError, match="no points left"):
        prepare_point_cloud(PointCloud(np.zeros((0, 3)), None), num_bins=1280, clean=False)
