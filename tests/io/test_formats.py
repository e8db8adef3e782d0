"""Scan formats beyond .ply: each read back point for point, and each refused in one line when truncated, empty or
all NaN, or when its optional extra is missing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.io import find_point_clouds, read_point_cloud

POINTS = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.5, -1.0, 2.25], [4.0, 0.125, -1.5]])
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [51, 102, 204], [0, 0, 255]], dtype=np.uint8)


def _open3d_cloud() -> o3d.geometry.PointCloud:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(POINTS))
    cloud.colors = o3d.utility.Vector3dVector(COLOURS / 255.0)
    return cloud


@pytest.mark.parametrize("ascii_body", [True, False])
def test_pcd_reads_back(tmp_path: Path, ascii_body: bool):
    path = tmp_path / "scan.pcd"
    o3d.io.write_point_cloud(str(path), _open3d_cloud(), write_ascii=ascii_body)
    cloud = read_point_cloud(path)
    np.testing.assert_allclose(cloud.points, POINTS, atol=1e-6)
    np.testing.assert_allclose(cloud.colors, COLOURS / 255.0, atol=1 / 255)


def test_truncated_binary_pcd_is_refused(tmp_path: Path):
    path = tmp_path / "scan.pcd"
    o3d.io.write_point_cloud(str(path), _open3d_cloud(), write_ascii=False)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(InputError, match=r"truncated: its header declares 4 points \(64 bytes\)"):
        read_point_cloud(path)


def test_truncated_ascii_pcd_is_refused(tmp_path: Path):
    path = tmp_path / "scan.pcd"
    o3d.io.write_point_cloud(str(path), _open3d_cloud(), write_ascii=True)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(InputError, match="declares 4 points but the file holds 2 data line"):
        read_point_cloud(path)


def test_xyz_and_xyzrgb_read_back(tmp_path: Path):
    (tmp_path / "a.xyz").write_text("\n".join(" ".join(f"{v}" for v in p) for p in POINTS) + "\n")
    np.testing.assert_allclose(read_point_cloud(tmp_path / "a.xyz").points, POINTS)
    rows = np.concatenate([POINTS, COLOURS / 255.0], axis=1)
    (tmp_path / "b.xyzrgb").write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in rows) + "\n")
    cloud = read_point_cloud(tmp_path / "b.xyzrgb")
    np.testing.assert_allclose(cloud.points, POINTS, atol=1e-6)
    np.testing.assert_allclose(cloud.colors, COLOURS / 255.0, atol=1e-6)


def test_xyz_cut_mid_row_is_refused(tmp_path: Path):
    (tmp_path / "a.xyz").write_text("0 0 0\n1 2 3\n4 5")
    with pytest.raises(InputError, match="truncated: its last row has 2 value"):
        read_point_cloud(tmp_path / "a.xyz")


def test_pts_with_fewer_rows_than_declared_is_refused(tmp_path: Path):
    rows = [f"{x} {y} {z} 0 {r} {g} {b}" for (x, y, z), (r, g, b) in zip(POINTS, COLOURS, strict=True)]
    (tmp_path / "ok.pts").write_text("4\n" + "\n".join(rows) + "\n")
    cloud = read_point_cloud(tmp_path / "ok.pts")
    np.testing.assert_allclose(cloud.points, POINTS)
    np.testing.assert_allclose(cloud.colors, COLOURS / 255.0, atol=1e-6)
    (tmp_path / "cut.pts").write_text("6\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="declares 6 points but holds 4 row"):
        read_point_cloud(tmp_path / "cut.pts")


def test_nan_rows_are_dropped_and_empty_or_all_nan_scans_refused(tmp_path: Path, caplog):
    (tmp_path / "n.xyz").write_text("0 0 0\nnan 1 1\n1 1 1\n")
    with caplog.at_level(logging.WARNING):
        cloud = read_point_cloud(tmp_path / "n.xyz")
    np.testing.assert_allclose(cloud.points, [[0, 0, 0], [1, 1, 1]])
    assert "dropped 1 of 3 rows" in caplog.text
    (tmp_path / "all.xyz").write_text("nan 0 0\n1 nan 1\n")
    with pytest.raises(InputError, match="no finite points"):
        read_point_cloud(tmp_path / "all.xyz")
    (tmp_path / "empty.pcd").write_bytes(b"")
    with pytest.raises(InputError, match="not a PCD file"):
        read_point_cloud(tmp_path / "empty.pcd")
    (tmp_path / "empty.xyz").write_text("")
    with pytest.raises(InputError, match=r"has no points \(empty or unreadable XYZ\)"):
        read_point_cloud(tmp_path / "empty.xyz")


def test_scale_turns_file_units_into_metres(tmp_path: Path):
    (tmp_path / "mm.xyz").write_text("0 0 0\n20000 3000 2500\n")
    with pytest.raises(InputError, match=r"coordinates must be metres.*--units or --scale"):
        read_point_cloud(tmp_path / "mm.xyz")
    np.testing.assert_allclose(read_point_cloud(tmp_path / "mm.xyz", scale=0.001).points, [[0, 0, 0], [20, 3, 2.5]])


def test_folders_list_every_scan_format_and_refuse_two_scans_with_one_name(tmp_path: Path, make_ply):
    make_ply("a.ply", POINTS)
    (tmp_path / "b.xyz").write_text("0 0 0\n")
    (tmp_path / "notes.txt").write_text("not a scan")
    assert [p.name for p in find_point_clouds(tmp_path)] == ["a.ply", "b.xyz"]
    (tmp_path / "a.pcd").write_text("")
    with pytest.raises(InputError, match=r"holds both 'a\.pcd' and 'a\.ply'"):
        find_point_clouds(tmp_path)
    with pytest.raises(InputError, match=r"is not a \.ply file \(nor another scan"):
        find_point_clouds(tmp_path / "notes.txt")


def _write_las(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    laspy = pytest.importorskip("laspy")
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = np.array([0.001, 0.001, 0.001])
    header.offsets = np.zeros(3)
    las = laspy.LasData(header)
    las.x, las.y, las.z = points[:, 0], points[:, 1], points[:, 2]
    las.red, las.green, las.blue = (colours[:, i].astype(np.uint16) * 257 for i in range(3))
    las.write(str(path))


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz_read_back(tmp_path: Path, suffix: str):
    pytest.importorskip("lazrs" if suffix == ".laz" else "laspy")
    path = tmp_path / f"scan{suffix}"
    _write_las(path, POINTS, COLOURS)
    cloud = read_point_cloud(path)
    np.testing.assert_allclose(cloud.points, POINTS, atol=1e-3)  # stored at millimetre resolution
    np.testing.assert_allclose(cloud.colors, COLOURS / 255.0, atol=1e-6)  # 16-bit colour, 257 * 8-bit


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_truncated_las_and_laz_are_refused(tmp_path: Path, suffix: str):
    pytest.importorskip("lazrs" if suffix == ".laz" else "laspy")
    path = tmp_path / f"scan{suffix}"
    many = np.random.default_rng(0).uniform(0, 5, (2000, 3))
    _write_las(path, many, np.zeros((2000, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(InputError, match="truncated"):
        read_point_cloud(path)


def _write_e57(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    pye57 = pytest.importorskip("pye57")
    e57 = pye57.E57(str(path), mode="w")
    e57.write_scan_raw({"cartesianX": points[:, 0], "cartesianY": points[:, 1], "cartesianZ": points[:, 2],
                        "colorRed": colours[:, 0], "colorGreen": colours[:, 1], "colorBlue": colours[:, 2]})
    e57.close()


def test_e57_reads_back_and_a_truncated_one_is_refused(tmp_path: Path):
    path = tmp_path / "scan.e57"
    _write_e57(path, POINTS, COLOURS)
    cloud = read_point_cloud(path)
    np.testing.assert_allclose(cloud.points, POINTS)
    np.testing.assert_allclose(cloud.colors, COLOURS / 255.0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"truncated or not a valid E57 file: [^\n]*$"):
        read_point_cloud(path)


@pytest.mark.parametrize(("suffix", "module", "extra"), [(".las", "laspy", "las"), (".laz", "laspy", "las"),
                                                          (".e57", "pye57", "e57")])
def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path, monkeypatch, suffix: str, module: str, extra: str):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    path = tmp_path / f"scan{suffix}"
    path.write_bytes(b"anything")
    line = rf"^reading \{suffix} files needs {module}: pip install 'spatialvlm\[{extra}\]'$"
    with pytest.raises(InputError, match=line):
        read_point_cloud(path)
