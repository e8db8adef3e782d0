"""`plot` and `eval --json` never write over a file they did not write; plot: a key to the shapes, visible points,
the scan in the layout's frame."""

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.layout import Layout, floorplan, layout_to_json
from spatialvlm_cli.layout.floorplan import BACKGROUND, KEY_GREY, POINT_GREY, render_floor_plan
from spatialvlm_cli.preprocess import ScanTransform
from spatialvlm_cli.preprocess.align import Alignment, rotation_between
from spatialvlm_cli.synthetic import make_room, split_seed, write_ply

REPO = Path(__file__).resolve().parents[2]
LAYOUT = REPO / "scenes" / "room_000.txt"


def test_plot_replaces_its_own_png_but_not_another(tmp_path: Path):
    out = tmp_path / "plan.png"
    first = CliRunner().invoke(app, ["plot", "-l", str(LAYOUT), "-o", str(out), "--size", "200"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, ["plot", "-l", str(LAYOUT), "-o", str(out), "--size", "200"])
    assert again.exit_code == 0 and "replacing an earlier plot" in again.stderr
    photo = tmp_path / "photo.png"
    Image.new("RGB", (4, 4)).save(photo)
    refused = CliRunner().invoke(app, ["plot", "-l", str(LAYOUT), "-o", str(photo)])
    assert refused.exit_code == 1 and "pass --overwrite" in refused.stderr
    assert Image.open(photo).size == (4, 4)
    forced = CliRunner().invoke(app, ["plot", "-l", str(LAYOUT), "-o", str(photo), "--overwrite", "--size", "200"])
    assert forced.exit_code == 0 and Image.open(photo).size != (4, 4)


def test_key_row_and_points_drawn_as_squares():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    image = render_floor_plan(Layout(), points=points, size_px=400, labels=False)
    # the key row (wall sample at the left margin, 20 px above the bottom) is drawn in KEY_GREY
    margin = max(24, 400 // 25)
    assert image.getpixel((margin + 15, image.height - 20)) == KEY_GREY
    # a point is a 2 cm square: at (400 - 48) px per metre, 3 pixels either side of its centre
    assert image.getpixel((margin + 3, margin + (400 - 2 * margin) - 3)) == POINT_GREY


def test_labels_at_one_spot_do_not_overlap():
    from PIL import ImageDraw

    from spatialvlm_cli.layout.floorplan import _draw_label, _font

    draw = ImageDraw.Draw(Image.new("RGB", (300, 300), BACKGROUND))
    placed: list[tuple[float, float, float, float]] = []
    for name in ("nightstand", "bed", "wardrobe"):
        _draw_label(draw, (150, 150), name, (0, 0, 0), _font(12), placed)
    for k, a in enumerate(placed):
        for b in placed[k + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_eval_json_replaces_its_own_report_but_not_another_file(tmp_path: Path):
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "room_000.txt").write_text(LAYOUT.read_text())
    scores = tmp_path / "scores.json"
    args = ["eval", "--pred", str(pred), "--gt", str(REPO / "scenes"), "--json", str(scores)]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "replacing an earlier report" in again.stderr
    scores.write_text('{"mine": 1}')
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "pass --overwrite" in refused.stderr and scores.read_text() == '{"mine": 1}'


def test_plot_draws_the_scan_in_the_frame_infer_wrote_the_layout_in(tmp_path: Path, monkeypatch):
    """A y-up scan in millimetres under infer's JSON (scan_transform recorded) is drawn upright and in metres, under
    its layout, as `view` shows it; before, plot drew the file's raw coordinates a thousand times too far out."""
    room = make_room(split_seed("heldout", 1))
    to_y_up = rotation_between(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    write_ply(tmp_path / "scan.ply", room.points.astype(np.float64) @ to_y_up.T * 1000.0, room.colours)
    transform = ScanTransform(scale=0.001, units="mm", alignment=Alignment(
        to_y_up.T, 0.2, np.array([1.0, 2.0, 0.0]), np.array([0.0, 1.0, 0.0])))
    (tmp_path / "scan.json").write_text(json.dumps({"layout": layout_to_json(room.layout),
                                                    "scan_transform": transform.to_json()}))
    drawn: dict[str, np.ndarray] = {}

    def capture(layout, gt, points, colors, **settings):
        drawn["points"] = points
        return Image.new("RGB", (64, 64))

    monkeypatch.setattr(floorplan, "render_floor_plan", capture)
    result = CliRunner().invoke(app, ["plot", "-l", str(tmp_path / "scan.json"), "-p", str(tmp_path / "scan.ply"),
                                      "--max_points", "0", "-o", str(tmp_path / "plan.png")])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.sort(drawn["points"], axis=0), np.sort(room.points, axis=0), atol=1e-3)
