"""The Rerun recording read back through the SDK: the scan's points and colours, and one box per wall, door, window
and object with the layout's centres, sizes, yaws and labels; `spatialvlm view` turns a scan into the levelled frame
its aligned layout was written in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window, layout_to_json
from spatialvlm_cli.preprocess import ScanTransform
from spatialvlm_cli.preprocess.align import Alignment, rotation_between
from spatialvlm_cli.synthetic import make_room, split_seed, write_ply
from spatialvlm_cli.viewer import recording_bytes

rr = pytest.importorskip("rerun")


def _layout() -> Layout:
    return Layout(walls=[Wall(0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 2.7, 0.2),
                         Wall(1, 4.0, 0.0, 0.0, 4.0, 3.0, 0.0, 2.7, 0.1)],
                  doors=[Door(0, 0, 1.0, 0.0, 1.0, 0.9, 2.0)],
                  windows=[Window(0, 1, 4.0, 1.5, 1.5, 1.2, 1.0)],
                  bboxes=[Bbox(0, "bed", 2.0, 1.5, 0.25, 0.3, 2.0, 1.6, 0.5)])


def read_recording(path: Path) -> dict[str, dict[str, list]]:
    """{entity path: {component: its values}} of an .rrd's static entities, through the SDK's reader."""
    from rerun.chunk import RrdReader

    entities: dict[str, dict[str, list]] = {}
    for chunk in RrdReader(path).stream().collect().stream():
        columns = chunk.to_record_batch().to_pydict()
        entities.setdefault(chunk.entity_path, {}).update(
            {name.split(":")[-1]: values[-1] for name, values in columns.items() if ":" in name})
    return entities


def test_the_recording_holds_the_scan_and_one_box_per_entity(tmp_path: Path):
    points = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.5], [3.0, 1.0, 2.0]])
    colours = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.4, 0.6]])
    path = tmp_path / "scene.rrd"
    path.write_bytes(recording_bytes(points, colours, _layout()))
    entities = read_recording(path)
    assert {"/scan", "/layout/walls", "/layout/doors", "/layout/windows", "/layout/objects"} <= set(entities)
    np.testing.assert_allclose(entities["/scan"]["positions"], points, atol=1e-6)
    packed = np.array(entities["/scan"]["colors"], dtype=np.uint32)  # 0xRRGGBBAA
    np.testing.assert_array_equal(packed >> 24, [255, 0, 51])
    np.testing.assert_array_equal((packed >> 8) & 0xFF, [0, 0, 153])
    walls = entities["/layout/walls"]
    assert walls["labels"] == ["wall_0", "wall_1"]
    np.testing.assert_allclose(walls["centers"], [[2.0, 0.0, 1.35], [4.0, 1.5, 1.35]], atol=1e-6)
    np.testing.assert_allclose(walls["half_sizes"], [[2.0, 0.1, 1.35], [1.5, 0.05, 1.35]], atol=1e-6)
    assert [r["angle"] for r in walls["rotation_axis_angles"]] == pytest.approx([0.0, np.pi / 2])
    door = entities["/layout/doors"]
    np.testing.assert_allclose(door["half_sizes"], [[0.45, 0.1, 1.0]], atol=1e-6)  # as deep as its wall
    window = entities["/layout/windows"]
    assert window["rotation_axis_angles"][0]["angle"] == pytest.approx(np.pi / 2)
    objects = entities["/layout/objects"]
    assert objects["labels"] == ["bed"]
    np.testing.assert_allclose(objects["centers"], [[2.0, 1.5, 0.25]], atol=1e-6)
    np.testing.assert_allclose(objects["half_sizes"], [[1.0, 0.8, 0.25]], atol=1e-6)
    assert objects["rotation_axis_angles"][0]["angle"] == pytest.approx(0.3)
    assert all(axis["axis"] == [0.0, 0.0, 1.0] for axis in objects["rotation_axis_angles"])


def test_ground_truth_and_the_point_subsample(tmp_path: Path):
    points = np.random.default_rng(0).uniform(0, 4, (500, 3))
    path = tmp_path / "scene.rrd"
    path.write_bytes(recording_bytes(points, None, _layout(), gt=Layout(bboxes=_layout().bboxes), max_points=100))
    entities = read_recording(path)
    assert len(entities["/scan"]["positions"]) == 100
    assert "/ground_truth/objects" in entities and "/ground_truth/walls" not in entities


def test_a_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "rerun", None)
    with pytest.raises(InputError, match=r"^the 3-D view needs rerun-sdk: pip install 'spatialvlm\[view\]'$"):
        recording_bytes(None, None, _layout())


def test_view_turns_the_scan_into_the_frame_of_an_aligned_layout(tmp_path: Path):
    room = make_room(split_seed("heldout", 1))
    to_y_up = rotation_between(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    scan = room.points.astype(np.float64) @ to_y_up.T * 1000.0  # a y-up scan in millimetres
    write_ply(tmp_path / "scan.ply", scan, room.colours)
    transform = ScanTransform(scale=0.001, units="mm", alignment=Alignment(
        to_y_up.T, 0.2, np.array([1.0, 2.0, 0.0]), np.array([0.0, 1.0, 0.0])))
    record = {"layout": layout_to_json(room.layout), "scan_transform": transform.to_json()}
    (tmp_path / "scan.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["view", "-l", str(tmp_path / "scan.json"), "-p", str(tmp_path / "scan.ply"),
                                      "-o", str(tmp_path / "scan.rrd")])
    assert result.exit_code == 0, result.output
    shown = np.array(read_recording(tmp_path / "scan.rrd")["/scan"]["positions"])
    np.testing.assert_allclose(shown, room.points, atol=1e-3)  # upright again, in metres, under the layout
