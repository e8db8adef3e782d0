"""A user's scan made ready: units detected and converted, crop, extent warnings, and the way back from the model's
frame to the written layout and to the input file's frame."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.io import PointCloud
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window
from spatialvlm_cli.layout.solids import layout_solids
from spatialvlm_cli.preprocess import (
    ScanOptions,
    ScanTransform,
    condition_scan,
    detect_units,
    parse_crop,
    read_scan,
    read_scan_under_layout,
)
from spatialvlm_cli.preprocess.align import Alignment, rotation_between, rotation_z
from spatialvlm_cli.synthetic import make_room, split_seed, write_ply

ROOM = make_room(split_seed("heldout", 0))
ROOM_POINTS = ROOM.points.astype(np.float64)


@pytest.mark.parametrize(("factor", "unit"), [(1.0, None), (1000.0, "mm"), (100.0, "cm"), (1 / 0.0254, "in")])
def test_units_are_detected_from_the_room_height(factor: float, unit: str | None):
    assert detect_units(ROOM_POINTS * factor) == unit


def test_a_scan_clearly_not_in_metres_is_refused_until_its_unit_is_named():
    cloud = PointCloud(ROOM_POINTS * 1000.0, None)
    with pytest.raises(InputError, match=r"^'room.ply' looks like it is in millimetres, not metres: pass --units mm "
                                         r"\(or --units m to run it as it is\)$"):
        condition_scan(cloud, ScanOptions(), source="'room.ply'")
    metres, transform = condition_scan(cloud, ScanOptions(units="mm"))
    np.testing.assert_allclose(metres.points, ROOM_POINTS)
    assert (transform.scale, transform.units) == (0.001, "mm")
    kept, _ = condition_scan(cloud, ScanOptions(units="m"))
    np.testing.assert_array_equal(kept.points, cloud.points)
    scaled, by_scale = condition_scan(PointCloud(ROOM_POINTS / 0.0254, None), ScanOptions(scale=0.0254))
    np.testing.assert_allclose(scaled.points, ROOM_POINTS)
    assert by_scale.to_json()["scale"] == 0.0254


def test_read_scan_converts_before_the_extent_check(tmp_path: Path):
    big = np.array([[0.0, 0.0, 0.0], [20000.0, 5000.0, 2800.0], [1.0, 2.0, 3.0]])  # 20 m in millimetres
    (tmp_path / "mm.xyz").write_text("\n".join(" ".join(map(str, row)) for row in big) + "\n")
    cloud, transform = read_scan(tmp_path / "mm.xyz", ScanOptions(units="mm"))
    np.testing.assert_allclose(cloud.points, big / 1000.0)
    np.testing.assert_allclose(transform.matrix, np.diag([0.001, 0.001, 0.001, 1.0]))


def test_crop_keeps_the_box_in_metres():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [5.0, 1.0, 0.5]])
    colours = np.arange(12, dtype=np.float64).reshape(4, 3) / 12
    cropped, transform = condition_scan(PointCloud(points, colours), ScanOptions(crop=(0.5, 0.5, 0.5, 2.5, 2.5, 2.5)))
    np.testing.assert_array_equal(cropped.points, points[1:3])
    np.testing.assert_array_equal(cropped.colors, colours[1:3])
    assert transform.to_json()["crop"] == [0.5, 0.5, 0.5, 2.5, 2.5, 2.5]
    flat, _ = condition_scan(PointCloud(points, None), ScanOptions(crop=parse_crop("0.5, 0, 6, 1.5")))
    np.testing.assert_array_equal(flat.points, points[[1, 3]])  # 4 numbers: any height
    with pytest.raises(InputError, match=r"--crop keeps no point of the scan, which spans x 0.00..5.00"):
        condition_scan(PointCloud(points, None), ScanOptions(crop=(10, 10, 11, 11)))


@pytest.mark.parametrize(("text", "message"), [("1,2,3", "6 numbers"), ("a,b,c,d", "takes x0,y0"),
                                               ("0,0,0,1,-1,1", "low corner must lie below")])
def test_malformed_crops_are_config_errors(text: str, message: str):
    with pytest.raises(ConfigError, match=message):
        parse_crop(text)


@pytest.mark.parametrize(("options", "message"), [
    ({"units": "ft"}, "--units must be one of m, cm, mm, in"),
    ({"units": "mm", "scale": 0.001}, "not both"),
    ({"scale": -1.0}, "positive number"),
    ({"up": "y"}, "add --align"),
    ({"align": True, "up": "north"}, "--up must be one of"),
])
def test_contradictory_options_are_config_errors(options: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        ScanOptions(**options)


def test_scenes_larger_than_a_room_or_the_grid_are_warned_about(caplog):
    def spans(x: float) -> PointCloud:
        return PointCloud(np.array([[0.0, 0.0, 0.0], [x, 4.0, 2.7]]), None)

    with caplog.at_level(logging.WARNING):
        condition_scan(spans(6.0), ScanOptions())
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING):
        condition_scan(spans(15.0), ScanOptions(), source="'flat.ply'")
    assert "'flat.ply' spans 15.0 x 4.0 x 2.7 m: likely more than one room" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        condition_scan(spans(40.0), ScanOptions())
    assert "spans 40.0 x 4.0 x 2.7 m: more than the model's 32 m grid" in caplog.text


def _layout() -> Layout:
    return Layout(walls=[Wall(0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 2.8, 0.2),
                         Wall(1, 4.0, 0.0, 0.0, 4.0, 3.0, 0.0, 2.8, 0.2)],
                  doors=[Door(0, 0, 1.0, 0.0, 1.0, 0.9, 2.0)],
                  windows=[Window(0, 1, 4.0, 1.5, 1.5, 1.2, 1.0)],
                  bboxes=[Bbox(0, "bed", 2.0, 1.5, 0.25, 0.3, 2.0, 1.6, 0.5)])


def test_the_layout_goes_back_to_the_levelled_frame_and_its_corners_to_the_input_frame():
    gravity = rotation_between(np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))  # a y-up scan
    yaw, translation, scale = math.radians(25.0), np.array([1.5, -2.0, 0.3]), 0.001
    transform = ScanTransform(scale=scale, units="mm",
                              alignment=Alignment(gravity, yaw, translation, np.array([0.0, 1.0, 0.0])))
    aligned = _layout()
    written = transform.to_written_frame(aligned)
    for model, back in zip(layout_solids(aligned), layout_solids(written), strict=True):
        # written = Rz(-yaw) (aligned - t), corner for corner
        np.testing.assert_allclose(back.corners(), (model.corners() - translation) @ rotation_z(-yaw).T, atol=1e-9)
    corners = transform.input_corners(written)
    assert [len(corners[key]) for key in ("walls", "doors", "windows", "bboxes")] == [2, 1, 1, 1]
    assert corners["bboxes"][0]["class_name"] == "bed"
    solids = layout_solids(aligned)
    flat = [item for key in ("walls", "doors", "windows", "bboxes") for item in corners[key]]
    for solid, item in zip(solids, flat, strict=True):
        in_file = np.array(item["corners"])
        # the input file's points p map to the model's frame by the stored 4 x 4 matrix
        homogeneous = np.column_stack([in_file, np.ones(8)]) @ transform.matrix.T
        np.testing.assert_allclose(homogeneous[:, :3], solid.corners(), atol=1e-5)
    # a y-up scan in millimetres: the wall's height runs along the file's +y, 2800 units
    wall = np.array(corners["walls"][0]["corners"])
    assert wall[4:, 1] - wall[:4, 1] == pytest.approx([2800.0] * 4)
    record = transform.to_json()
    assert record["aligned"] and record["layout_frame"] == "levelled"
    np.testing.assert_allclose(record["input_to_model"], transform.matrix, atol=1e-9)


def test_an_unaligned_transform_changes_nothing():
    transform = ScanTransform()
    assert transform.is_identity and not ScanTransform(scale=0.001).is_identity
    assert transform.to_written_frame(_layout()) == _layout()
    box = transform.input_corners(_layout())["bboxes"][0]["corners"]
    np.testing.assert_allclose(box[0], [2.0 - 1.0 * math.cos(0.3) + 0.8 * math.sin(0.3),
                                        1.5 - 1.0 * math.sin(0.3) - 0.8 * math.cos(0.3), 0.0], atol=1e-6)
    assert transform.to_json()["layout_frame"] == "input"


def test_read_scan_aligns_a_y_up_scan_in_millimetres(tmp_path: Path):
    quarter = rotation_between(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))  # z-up room -> y-up scan
    turned = ROOM_POINTS @ quarter.T * 1000.0
    write_ply(tmp_path / "scan.ply", turned, ROOM.colours)
    cloud, transform = read_scan(tmp_path / "scan.ply", ScanOptions(units="mm", align=True))
    np.testing.assert_allclose(transform.alignment.up, [0.0, 1.0, 0.0], atol=0.02)
    assert float(np.percentile(cloud.points[:, 2], 2.0)) == pytest.approx(0.0, abs=0.05)
    assert float(np.percentile(cloud.points[:, 2], 99.0)) == pytest.approx(ROOM.layout.walls[0].height, abs=0.15)
    # The ground truth in the model's frame is the room turned by the yaw the alignment left it at and moved by its
    # translation; mapped back, its corners land on the file's walls (in millimetres, within the alignment's error).
    upright = transform.rotation @ quarter
    psi = math.atan2(upright[1, 0], upright[0, 0])
    in_model = ROOM.layout.turned(psi, 1.0, (0.0, 0.0, 0.0)).translate(tuple(transform.translation))
    corners = transform.input_corners(transform.to_written_frame(in_model))
    for solid, item in zip(layout_solids(ROOM.layout), corners["walls"], strict=False):
        np.testing.assert_allclose(item["corners"], solid.corners() @ quarter.T * 1000.0, atol=40.0)


def test_the_scan_under_a_layout_is_read_in_the_layouts_levelled_frame(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture):
    """A y-up scan in millimetres under infer's record comes back upright and in metres, where its layout lies; with
    no transform recorded the file's frame is kept, with a warning that millimetres will not line up with a layout in
    metres; a malformed transform is one InputError."""
    caplog.set_level(logging.WARNING)
    room = make_room(split_seed("heldout", 1))
    to_y_up = rotation_between(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    scan = room.points.astype(np.float64) @ to_y_up.T * 1000.0
    write_ply(tmp_path / "scan.ply", scan, room.colours)
    transform = ScanTransform(scale=0.001, units="mm", alignment=Alignment(
        to_y_up.T, 0.2, np.array([1.0, 2.0, 0.0]), np.array([0.0, 1.0, 0.0])))
    levelled = read_scan_under_layout(tmp_path / "scan.ply", {"scan_transform": transform.to_json()})
    np.testing.assert_allclose(levelled.points, room.points, atol=1e-3)
    np.testing.assert_allclose(levelled.colors * 255.0, room.colours, atol=0.5)
    assert caplog.text == ""
    as_written = read_scan_under_layout(tmp_path / "scan.ply", {})
    np.testing.assert_allclose(as_written.points, scan, atol=1e-2)
    assert ("'scan.ply' looks like it is in millimetres while the layout is in metres and records no scan transform"
            in caplog.text)
    with pytest.raises(InputError, match="scan_transform is malformed"):
        read_scan_under_layout(tmp_path / "scan.ply", {"scan_transform": {"scale": 0.001}})


@pytest.mark.parametrize("aligned", [False, True])
def test_a_transform_read_back_from_infers_json_maps_points_as_the_original(aligned: bool):
    alignment = Alignment(rotation_z(0.3), 0.2, np.array([1.0, 2.0, 0.5]), np.array([0.0, 0.0, 1.0])) if aligned \
        else None
    transform = ScanTransform(scale=0.001, units="mm", crop=(0.0, 0.0, 4.0, 5.0), alignment=alignment)
    again = ScanTransform.from_json(transform.to_json())
    assert (again.scale, again.units, again.crop) == (0.001, "mm", (0.0, 0.0, 4.0, 5.0))
    np.testing.assert_allclose(again.matrix, transform.matrix, atol=1e-8)
    np.testing.assert_allclose(again.written_to_input(ROOM_POINTS[:100]), transform.written_to_input(ROOM_POINTS[:100]),
                               atol=1e-5)
