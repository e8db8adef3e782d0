"""Exports read back: the SVG's polygons, the DXF's polylines (ezdxf) and the IFC's walls, openings and boxes
(ifcopenshell, its own geometry kernel) give back every entity's box in metres."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.export import export_layout, written_by_export
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window
from spatialvlm_cli.layout.solids import layout_solids
from spatialvlm_cli.synthetic import make_room, split_seed

SVG = "{http://www.w3.org/2000/svg}"


def _layout() -> Layout:
    """Two walls meeting at a corner (one turned 30 degrees off the axes), a door and a window in them, two boxes."""
    return Layout(
        walls=[Wall(0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 2.7, 0.2),
               Wall(1, 4.0, 0.0, 0.0, 4.0 + 3.0 * np.cos(np.pi / 3), 3.0 * np.sin(np.pi / 3), 0.0, 2.7, 0.15)],
        doors=[Door(0, 0, 1.0, 0.0, 1.0, 0.9, 2.0)],
        windows=[Window(0, 1, 4.0 + 1.5 * np.cos(np.pi / 3), 1.5 * np.sin(np.pi / 3), 1.5, 1.0, 1.0)],
        bboxes=[Bbox(0, "bed", 2.0, 1.5, 0.25, 0.3, 2.0, 1.6, 0.5),
                Bbox(1, "dining_table", 1.0, 2.5, 0.375, 0.0, 1.4, 0.8, 0.75)])


LAYOUTS = {"hand": _layout(), "synthetic": make_room(split_seed("heldout", 3)).layout}


@pytest.mark.parametrize("which", LAYOUTS)
def test_svg_polygons_are_the_footprints(which: str):
    layout = LAYOUTS[which]
    root = ET.fromstring(export_layout(layout, "svg", "room"))
    x0, y1 = (float(v) for v in root.get("data-origin-m").split(","))
    polygons = root.iter(f"{SVG}polygon")
    found = {(p.get("data-kind"), int(p.get("data-id"))): np.array(
        [[float(v) for v in pair.split(",")] for pair in p.get("points").split()]) for p in polygons}
    solids = layout_solids(layout)
    assert len(found) == len(solids)
    for solid in solids:
        svg = found[(solid.kind, solid.id)]
        metres = np.column_stack([x0 + svg[:, 0] / 100, y1 - svg[:, 1] / 100])  # centimetres, y down
        np.testing.assert_allclose(metres, solid.corners()[:4, :2], atol=1e-4)
    labels = sorted(t.text for t in root.iter(f"{SVG}text") if t.text != "1 m" and "1:50" not in t.text)
    assert labels == sorted(b.class_name.replace("_", " ") for b in layout.bboxes)


@pytest.mark.parametrize("which", LAYOUTS)
def test_dxf_polylines_are_the_boxes(which: str, tmp_path: Path):
    ezdxf = pytest.importorskip("ezdxf")
    layout = LAYOUTS[which]
    path = tmp_path / "room.dxf"
    path.write_bytes(export_layout(layout, "dxf", "room"))
    doc = ezdxf.readfile(str(path))
    assert doc.units == ezdxf.units.M
    assert doc.header.custom_vars.get("Software") == "spatialvlm export"
    space = doc.modelspace()
    for kind, layer in (("wall", "WALLS"), ("door", "DOORS"), ("window", "WINDOWS"), ("bbox", "FURNITURE")):
        polylines = list(space.query(f'LWPOLYLINE[layer=="{layer}"]'))
        solids = [s for s in layout_solids(layout) if s.kind == kind]
        assert len(polylines) == len(solids)
        for polyline, solid in zip(polylines, solids, strict=True):
            assert polyline.closed
            np.testing.assert_allclose([v[:2] for v in polyline.get_points("xy")], solid.corners()[:4, :2],
                                       atol=1e-9)
            assert polyline.dxf.elevation == pytest.approx(solid.corners()[0, 2])
            assert polyline.dxf.thickness == pytest.approx(solid.size[2])
    labels = sorted(t.dxf.text for t in space.query('TEXT[layer=="LABELS"]'))
    assert labels == sorted(b.class_name.replace("_", " ") for b in layout.bboxes)


def _world_vertices(ifcopenshell, element) -> np.ndarray:
    import ifcopenshell.geom

    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    shape = ifcopenshell.geom.create_shape(settings, element)  # kept alive: its vertices live in its memory
    return np.array(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)


def _assert_box(vertices: np.ndarray, corners: np.ndarray, inflate: tuple[float, float] = (0.0, 0.0)) -> None:
    """Every corner of the box is a vertex of the shape, and every vertex lies in the box (its footprint grown by
    `inflate` metres along its local x and y)."""
    distance = np.linalg.norm(vertices[None, :, :] - corners[:, None, :], axis=2).min(axis=1)
    assert distance.max() < 1e-5
    origin, x_axis, y_axis = corners[0], corners[1] - corners[0], corners[3] - corners[0]
    length, depth = np.linalg.norm(x_axis), np.linalg.norm(y_axis)
    local = vertices - origin
    u, v = local @ (x_axis / length), local @ (y_axis / depth)
    assert (u > -1e-6 - inflate[0]).all() and (u < length + inflate[0] + 1e-6).all()
    assert (v > -1e-6 - inflate[1]).all() and (v < depth + inflate[1] + 1e-6).all()
    assert (vertices[:, 2] > corners[0, 2] - 1e-6).all() and (vertices[:, 2] < corners[4, 2] + 1e-6).all()


@pytest.mark.parametrize("which", LAYOUTS)
def test_ifc_walls_openings_and_furniture_read_back(which: str, tmp_path: Path):
    ifcopenshell = pytest.importorskip("ifcopenshell")
    layout = LAYOUTS[which]
    path = tmp_path / "room.ifc"
    path.write_bytes(export_layout(layout, "ifc", "room"))
    model = ifcopenshell.open(str(path))
    assert model.schema == "IFC4"
    solids = {(s.kind, s.id): s for s in layout_solids(layout)}
    walls = model.by_type("IfcWall")
    assert [w.Name for w in walls] == [f"wall_{w.id}" for w in layout.walls]
    for wall in walls:
        solid = solids[("wall", int(wall.Name.split("_")[1]))]
        _assert_box(_world_vertices(ifcopenshell, wall), solid.corners())
        usage = wall.HasAssociations[0].RelatingMaterial
        assert usage.ForLayerSet.MaterialLayers[0].LayerThickness == pytest.approx(solid.size[1])
    for ifc_class, kind, group in (("IfcDoor", "door", layout.doors), ("IfcWindow", "window", layout.windows)):
        openings = model.by_type(ifc_class)
        assert len(openings) == len(group)
        for element, entity in zip(openings, group, strict=True):
            solid = solids[(kind, entity.id)]
            assert (element.OverallWidth, element.OverallHeight) == pytest.approx((entity.width, entity.height))
            _assert_box(_world_vertices(ifcopenshell, element), solid.corners())
            void = element.FillsVoids[0].RelatingOpeningElement
            assert void.VoidsElements[0].RelatingBuildingElement.Name == f"wall_{entity.wall_id}"
    boxes = model.by_type("IfcFurnishingElement")
    assert [(b.Name, b.ObjectType) for b in boxes] == [(f"bbox_{b.id}", b.class_name) for b in layout.bboxes]
    for element, box in zip(boxes, layout.bboxes, strict=True):
        _assert_box(_world_vertices(ifcopenshell, element), solids[("bbox", box.id)].corners())
    storey = model.by_type("IfcBuildingStorey")[0]
    contained = {e.Name for rel in storey.ContainsElements for e in rel.RelatedElements}
    assert contained == {f"{kind}_{index}" for kind, index in solids}


def test_every_export_carries_the_mark_and_bad_formats_are_one_line():
    for fmt in ("svg", "dxf", "ifc"):
        if fmt != "svg":
            pytest.importorskip({"dxf": "ezdxf", "ifc": "ifcopenshell"}[fmt])
        assert written_by_export(export_layout(_layout(), fmt, "room"))
    assert not written_by_export(b"<svg>someone else's plan</svg>")
    with pytest.raises(ConfigError, match="--format must be one of svg, dxf, ifc, got 'pdf'"):
        export_layout(_layout(), "pdf")


@pytest.mark.parametrize(("fmt", "module", "extra"), [("dxf", "ezdxf", "dxf"), ("ifc", "ifcopenshell", "ifc")])
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, fmt: str, module: str, extra: str):
    monkeypatch.setitem(sys.modules, module, None)
    line = rf"^writing {fmt.upper()} needs {module}: pip install 'spatialvlm\[{extra}\]'$"
    with pytest.raises(InputError, match=line):
        export_layout(_layout(), fmt)
