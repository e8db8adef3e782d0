"""`spatialvlm view` and `spatialvlm export`: files written atomically, their own files replaced but no other, bad
input one line (the scan turned into an aligned layout's frame: tests/viewer/test_viewer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app

REPO = Path(__file__).resolve().parents[2]
LAYOUT = REPO / "scenes" / "room_000.txt"


def run(args: list[str]):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_export_svg_replaces_its_own_file_but_not_another(tmp_path: Path):
    out = tmp_path / "plan.svg"
    first = run(["export", "-l", LAYOUT, "-o", out])
    assert first.exit_code == 0, first.output
    assert "wrote" in first.stderr and "(SVG: 4 walls" in first.stderr
    again = run(["export", "-l", LAYOUT, "-o", out])
    assert again.exit_code == 0 and "replacing an earlier export" in again.stderr
    drawing = tmp_path / "drawing.svg"
    drawing.write_text("<svg>mine</svg>")
    assert "pass --overwrite" in one_error_line(run(["export", "-l", LAYOUT, "-o", drawing]))
    assert drawing.read_text() == "<svg>mine</svg>"
    assert run(["export", "-l", LAYOUT, "-o", drawing, "--overwrite"]).exit_code == 0
    assert "spatialvlm export" in drawing.read_text()


def test_export_defaults_to_the_layouts_name_and_checks_its_format(tmp_path: Path):
    pytest.importorskip("ifcopenshell")
    layout = tmp_path / "room.txt"
    layout.write_text(LAYOUT.read_text())
    assert run(["export", "-l", layout, "-f", "ifc"]).exit_code == 0
    assert (tmp_path / "room.ifc").read_text().startswith("ISO-10303-21;")
    assert "must end in .ifc" in one_error_line(run(["export", "-l", layout, "-f", "ifc", "-o", tmp_path / "a.dxf"]))
    assert "--format must be one of svg, dxf, ifc" in one_error_line(run(["export", "-l", layout]))
    assert "does not exist" in one_error_line(run(["export", "-l", tmp_path / "none.txt", "-f", "svg"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["room.ifc", "room.txt"]  # nothing half-written


def test_view_writes_a_recording_and_keeps_other_files(tmp_path: Path):
    pytest.importorskip("rerun")
    out = tmp_path / "room.rrd"
    first = run(["view", "-l", LAYOUT, "-p", REPO / "scenes" / "room_000.ply", "-o", out])
    assert first.exit_code == 0, first.output
    assert out.read_bytes()[:3] == b"RRF"
    again = run(["view", "-l", LAYOUT, "-o", out])
    assert again.exit_code == 0 and "replacing an earlier recording" in again.stderr
    other = tmp_path / "other.rrd"
    other.write_bytes(b"RRF2 not ours")
    assert "pass --overwrite" in one_error_line(run(["view", "-l", LAYOUT, "-o", other]))
    assert other.read_bytes() == b"RRF2 not ours"
    assert "must be an .rrd file" in one_error_line(run(["view", "-l", LAYOUT, "-o", tmp_path / "a.png"]))
