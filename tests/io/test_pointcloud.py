import os
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from spatialvlm_cli.errors import InputError, OutputError
from spatialvlm_cli.io import (
    PointCloud,
    check_overwrite,
    find_point_clouds,
    read_point_cloud,
    write_bytes_atomic,
    write_text_atomic,
)

POINTS = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])


def test_ascii_uchar_colours_become_unit_range(make_ply):
    path = make_ply("a.ply", POINTS, np.array([[255, 0, 0], [0, 255, 0], [51, 102, 204]]))
    cloud = read_point_cloud(path)
    np.testing.assert_allclose(cloud.points, POINTS, atol=1e-6)
    np.testing.assert_allclose(cloud.colors[2], [0.2, 0.4, 0.8], atol=1e-6)


def test_float_colours_and_no_colours(make_ply):
    cloud = read_point_cloud(make_ply("f.ply", POINTS, np.full((3, 3), 0.25), color_type="float"))
    np.testing.assert_allclose(cloud.colors, 0.25, atol=1e-6)
    assert read_point_cloud(make_ply("n.ply", POINTS)).colors is None


def test_binary_ply_written_by_open3d(tmp_path: Path):
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(POINTS))
    cloud.colors = o3d.utility.Vector3dVector(np.full((3, 3), 0.5))
    o3d.io.write_point_cloud(str(tmp_path / "b.ply"), cloud, write_ascii=False)
    loaded = read_point_cloud(tmp_path / "b.ply")
    np.testing.assert_allclose(loaded.points, POINTS)
    np.testing.assert_allclose(loaded.colors, 0.5, atol=1 / 255)


def test_mesh_ply_reads_its_vertices(make_ply):
    path = make_ply("mesh.ply", POINTS, faces=np.array([[0, 1, 2]]))
    np.testing.assert_allclose(read_point_cloud(path).points, POINTS, atol=1e-6)


def test_float_colours_in_0_255_range(make_ply):
    cloud = read_point_cloud(make_ply("f255.ply", POINTS, np.full((3, 3), 127.5), color_type="float"))
    np.testing.assert_allclose(cloud.colors, 0.5, atol=1e-6)


def test_non_finite_rows_are_dropped(tmp_path: Path, caplog):
    points = np.vstack([POINTS, [[np.nan, 0, 0], [np.inf, 1, 1]]]).astype("<f4")
    header = "ply\nformat binary_little_endian 1.0\nelement vertex 5\n"
    header += "property float x\nproperty float y\nproperty float z\nend_header\n"
    path = tmp_path / "nan.ply"
    path.write_bytes(header.encode() + points.tobytes())
    cloud = read_point_cloud(path)
    assert len(cloud) == 3
    assert "dropped 2 of 5" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just some text\n", "not a PLY file"),
        (b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\nend_header\n",
         "has no points"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_point_cloud(path)


def test_all_nan_cloud(make_ply):
    with pytest.raises(InputError, match="no finite points"):
        read_point_cloud(make_ply("allnan.ply", np.full((4, 3), np.nan)))


def test_header_without_end(tmp_path: Path):
    (tmp_path / "h.ply").write_bytes(b"ply\nformat ascii 1.0\n")
    with pytest.raises(InputError, match="malformed PLY header"):
        read_point_cloud(tmp_path / "h.ply")


def test_find_point_clouds(tmp_path: Path, make_ply):
    with pytest.raises(InputError, match="does not exist"):
        find_point_clouds(tmp_path / "missing.ply")
    with pytest.raises(InputError, match=r"contains no \.ply"):
        find_point_clouds(tmp_path)
    make_ply("b.ply", POINTS)
    make_ply("a.PLY", POINTS)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_point_clouds(tmp_path)] == ["a.PLY", "b.ply"]
    with pytest.raises(InputError, match=r"not a \.ply"):
        find_point_clouds(tmp_path / "notes.txt")


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path):
    target = tmp_path / "out" / "x.txt"
    write_text_atomic(target, "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["x.txt"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_take_the_mode_the_umask_allows(tmp_path: Path, umask: int, mode: int):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o644)
    previous = os.umask(umask)
    try:
        write_text_atomic(target, "new")
        write_bytes_atomic(tmp_path / "new.bin", b"\x00")
    finally:
        os.umask(previous)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == mode and (tmp_path / "new.bin").stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin", "out.txt"]  # no temporary file left


def test_overwrite_rule(tmp_path: Path):
    scan, mine, theirs = tmp_path / "scan.ply", tmp_path / "mine.txt", tmp_path / "theirs.txt"
    for path in (scan, mine, theirs):
        path.write_text("x")
    with pytest.raises(OutputError, match="is one of the inputs"):
        check_overwrite([scan], [scan], True, lambda path: True)
    with pytest.raises(OutputError, match="pass --overwrite"):
        check_overwrite([mine, theirs], [scan], False, lambda path: path == mine)
    assert check_overwrite([mine, tmp_path / "new.txt"], [scan], False, lambda path: path == mine) == [mine]
    assert check_overwrite([theirs], [scan], True, lambda path: False) == [theirs]


def test_ascii_mesh_is_checked_up_to_its_vertices(make_ply):
    path = make_ply("mesh.ply", POINTS, faces=np.array([[0, 1, 2]]))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")  # one vertex and the face gone
    with pytest.raises(InputError, match="declares 3 vertices but the file holds 2 data line"):
        read_point_cloud(path)


def test_subsampled_keeps_a_seeded_subset_in_file_order():
    points = np.arange(30, dtype=np.float64).reshape(10, 3)
    cloud = PointCloud(points, points / 30)
    kept = cloud.subsampled(4, seed=3)
    assert len(kept) == 4 and np.all(np.diff(kept.points[:, 0]) > 0)  # rows of the file, in its order
    np.testing.assert_array_equal(kept.colors, kept.points / 30)  # colours stay with their points
    np.testing.assert_array_equal(cloud.subsampled(4, seed=3).points, kept.points)
    assert cloud.subsampled(0) is cloud and cloud.subsampled(10) is cloud
