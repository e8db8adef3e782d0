"""`spatialvlm eval` and `spatialvlm plot` through typer: results on stdout, notes on stderr, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import SpatialVLMGroup
from spatialvlm_cli.cli.eval import eval_command

GT = """wall_0=Wall(0.0,0.0,0.0,4.0,0.0,0.0,3.0,0.2)
wall_1=Wall(4.0,0.0,0.0,4.0,3.0,0.0,3.0,0.2)
door_0=Door(wall_0,2.0,0.0,1.0,1.0,2.0)
bbox_0=Bbox(bed,2.0,1.5,0.3,0.0,2.0,1.6,0.6)
bbox_1=Bbox(dining_chair,0.8,0.8,0.45,0.0,0.5,0.5,0.9)"""


def make_app() -> typer.Typer:
    app = typer.Typer(cls=SpatialVLMGroup, pretty_exceptions_enable=False)
    app.command(name="eval")(eval_command)

    @app.command(name="version")
    def version() -> None:  # a second command keeps `eval` a subcommand, as in the real app
        typer.echo("0")

    return app


def run(args: list[str]):
    return CliRunner().invoke(make_app(), ["eval", *args])


def folders(tmp_path: Path, scenes: dict[str, tuple[str | None, str | None]]) -> tuple[Path, Path]:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for name, (pred_text, gt_text) in scenes.items():
        if pred_text is not None:
            (pred / f"{name}.txt").write_text(pred_text)
        if gt_text is not None:
            (gt / f"{name}.txt").write_text(gt_text)
    return pred, gt


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert result.stdout == ""


def table_row(stdout: str, name: str) -> list[str]:
    return next(line.split() for line in stdout.splitlines() if line.split()[:1] == [name])


def test_ground_truth_against_itself(tmp_path: Path):
    pred, gt = folders(tmp_path, {"a": (GT, GT), "b": (GT, GT)})
    out = tmp_path / "scores.json"
    result = run(["--pred", str(pred), "--gt", str(gt), "--json", str(out)])
    assert result.exit_code == 0, result.output
    # class, scenes, pred, gt, then P R F1 at .25 and at .5
    assert table_row(result.stdout, "wall") == ["wall", "2", "4", "4", *["100.0"] * 6]
    assert table_row(result.stdout, "chair")[:4] == ["chair", "2", "2", "2"]
    assert table_row(result.stdout, "sofa") == ["sofa", "0", "0", "0", *["–"] * 6]
    assert "scored 2 scene(s)" in result.stderr and "scored" not in result.stdout
    data = json.loads(out.read_text())
    assert data["summary"]["layouts"]["classes"]["door"]["0.5"]["f1"] == 1.0
    assert data["summary"]["objects"]["mean"]["0.25"]["f1"] == 1.0
    assert [s["scene"] for s in data["scenes"]] == ["a", "b"]


def test_perturbed_prediction_and_kebab_flags(tmp_path: Path):
    # wall_1 predicted over [2, 4] m of the ground truth's [0, 3]: IoU 1 / 4, exactly the .25 threshold, which
    # counts (TP when IoU >= t); the chair is missed.
    pred_text = GT.replace("Wall(4.0,0.0,0.0,4.0,3.0,", "Wall(4.0,2.0,0.0,4.0,4.0,")
    pred_text = "\n".join(line for line in pred_text.splitlines() if "chair" not in line)
    pred, gt = folders(tmp_path, {"a": (pred_text, GT)})
    result = run(["--pred-dir", str(pred), "--gt-dir", str(gt), "--iou", "0.25,0.5"])
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "wall")[4:] == ["100.0", "100.0", "100.0", "50.0", "50.0", "50.0"]
    assert table_row(result.stdout, "chair")[1:] == ["1", "0", "1", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"]


def test_missing_prediction_and_missing_ground_truth_are_reported(tmp_path: Path):
    pred, gt = folders(tmp_path, {"both": (GT, GT), "no_pred": (None, GT), "no_gt": (GT, None)})
    out = tmp_path / "s.json"
    result = run(["--pred", str(pred), "--gt", str(gt), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 scene(s) with no prediction file (scored as an empty prediction): no_pred" in result.stderr
    assert "1 scene(s) with no ground-truth file (predictions count as false positives): no_gt" in result.stderr
    data = json.loads(out.read_text())
    assert data["scenes_without_prediction"] == ["no_pred"] and data["scenes_without_ground_truth"] == ["no_gt"]
    # wall F1 per scene: 1 (both), 0 (no_pred), 0 (no_gt) -> mean 1/3
    assert data["summary"]["layouts"]["classes"]["wall"]["0.25"]["f1"] == pytest.approx(1 / 3)


def test_unreadable_file_skips_its_scene_and_malformed_lines_are_counted(tmp_path: Path):
    pred, gt = folders(tmp_path, {"good": (GT + "\nwall_9=Wall(1,2)\nnot a layout line", GT), "bad": (None, GT)})
    (pred / "bad.txt").write_bytes(b"\xff\xfe\x00garbage")
    result = run(["--pred", str(pred), "--gt", str(gt)])
    assert result.exit_code == 0, result.output
    assert "skipped scene bad:" in result.stderr and "is not UTF-8 text" in result.stderr
    assert "skipped malformed lines: 2 in predictions, 0 in ground truth" in result.stderr
    assert "scored 1 scene(s)" in result.stderr


def test_nothing_scorable_exits_1(tmp_path: Path):
    pred, gt = folders(tmp_path, {})
    (pred / "x.txt").write_bytes(b"\xff\xfe")
    assert_one_line_error(run(["--pred", str(pred), "--gt", str(gt)]), "no scene could be scored")
    empty_pred, empty_gt = tmp_path / "e1", tmp_path / "e2"
    empty_pred.mkdir()
    empty_gt.mkdir()
    assert_one_line_error(run(["--pred", str(empty_pred), "--gt", str(empty_gt)]), "no .txt layouts")


def test_metadata_selects_and_orders_scenes(tmp_path: Path):
    pred, gt = folders(tmp_path, {"0002": (GT, GT), "0001": ("", GT), "extra": ("", GT)})
    csv = tmp_path / "test.csv"
    csv.write_text("id,pcd,layout\n0002,pcd/0002.ply,layout/0002.txt\n0001,pcd/0001.ply,layout/0001.txt\n")
    out = tmp_path / "s.json"
    result = run(["--pred", str(pred), "--gt", str(gt), "--metadata", str(csv), "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [s["scene"] for s in data["scenes"]] == ["0002", "0001"]  # ids stay text: 0002 is not 2
    assert data["summary"]["layouts"]["classes"]["wall"]["0.5"]["f1"] == 0.5


def test_label_mapping_tsv_replaces_the_built_in_table(tmp_path: Path):
    pred, gt = folders(tmp_path, {"a": (GT, GT)})
    tsv = tmp_path / "map.tsv"
    tsv.write_text("spatiallm59\tspatiallm20\tmine\nbed\tbed\tsleeping\ndining chair\tchair\t\n")
    result = run(["--pred", str(pred), "--gt", str(gt), "--label_mapping", str(tsv), "--label_to", "mine"])
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "sleeping")[:4] == ["sleeping", "1", "1", "1"]
    assert not any(line.split()[:1] == ["chair"] for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--iou", "0.25,abc"], "--iou must be comma-separated numbers"),
        (["--iou", "0.5,1.5"], "IoU thresholds must be in (0, 1]"),
        (["--iou", "0.5,0.5"], "must be distinct"),
        (["--metadata", "{tmp}/missing.csv"], "cannot read metadata"),
        (["--label_mapping", "{tmp}/map.tsv", "--label_to", "nope"], "has no column 'nope'"),
    ],
)
def test_bad_options_give_one_line(tmp_path: Path, extra: list[str], fragment: str):
    pred, gt = folders(tmp_path, {"a": (GT, GT)})
    (tmp_path / "map.tsv").write_text("spatiallm59\tspatiallm20\nbed\tbed\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert_one_line_error(run(["--pred", str(pred), "--gt", str(gt), *args]), fragment)


def test_missing_folders(tmp_path: Path):
    pred, gt = folders(tmp_path, {"a": (GT, GT)})
    assert_one_line_error(run(["--pred", str(tmp_path / "nope"), "--gt", str(gt)]), "--pred folder")
    assert_one_line_error(run(["--pred", str(pred), "--gt", str(pred / "a.txt")]), "is not a folder")
    assert_one_line_error(run(["--pred", str(pred)]), "give both --pred")


def test_flags_from_a_yaml_config(tmp_path: Path):
    pred, gt = folders(tmp_path, {"a": (GT, GT)})
    config = tmp_path / "eval.yaml"
    config.write_text(f"pred: {pred}\ngt: {tmp_path / 'nope'}\niou: '0.5'\njson: {tmp_path / 's.json'}\n")
    result = run(["--config", str(config), "--gt", str(gt)])  # the command line wins over the file
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["thresholds"] == [0.5]
    config.write_text("pred_folder: x\n")
    assert_one_line_error(run(["--config", str(config)]), "unknown key 'pred_folder'")


def test_help_has_examples():
    result = CliRunner().invoke(make_app(), ["eval", "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.stdout and "--label_mapping" in result.stdout and "--exact" in result.stdout


def plot_app() -> typer.Typer:
    from spatialvlm_cli.cli.plot import plot_command

    app = make_app()
    app.command(name="plot")(plot_command)
    return app


def test_plot_prediction_ground_truth_and_scan(tmp_path: Path, make_ply):
    from PIL import Image

    (tmp_path / "pred.txt").write_text(GT.replace("2.0,1.5,0.3", "2.2,1.5,0.3") + "\nnot a layout line")
    (tmp_path / "gt.txt").write_text(GT)
    ply = make_ply("scan.ply", [[0.0, 0.0, 0.0], [4.0, 3.0, 0.0], [2.0, 1.0, 1.0]], colors=[[255, 0, 0]] * 3)
    out = tmp_path / "plots" / "plan.png"
    result = CliRunner().invoke(plot_app(), ["plot", "-l", str(tmp_path / "pred.txt"), "--gt", str(tmp_path / "gt.txt"),
                                             "-p", str(ply), "-o", str(out), "--size", "400"])
    assert result.exit_code == 0, result.output
    assert "pred.txt:6: skipped" in result.stderr and f"wrote {out}" in result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and max(image.size) >= 400 - 1


def test_plot_reads_infer_json_and_reports_bad_input(tmp_path: Path):
    from spatialvlm_cli.layout import layout_to_json, parse_layout

    infer_json = tmp_path / "room.json"
    infer_json.write_text(json.dumps({"source": "room.ply", "layout": layout_to_json(parse_layout(GT)[0])}))
    out = tmp_path / "room.png"
    result = CliRunner().invoke(plot_app(), ["plot", "-l", str(infer_json), "-o", str(out), "--no-labels"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0

    def error(args: list[str], fragment: str) -> None:
        assert_one_line_error(CliRunner().invoke(plot_app(), ["plot", *args]), fragment)

    error(["-l", str(tmp_path / "missing.txt")], "does not exist")
    error(["-l", str(infer_json), "-o", str(tmp_path / "plan.jpg")], "must be a .png file")
    (tmp_path / "bad.json").write_text("{")
    error(["-l", str(tmp_path / "bad.json")], "is not valid JSON")


def test_through_the_spatialvlm_app(tmp_path: Path):
    from spatialvlm_cli.cli.app import app

    pred, gt = folders(tmp_path, {"a": (GT, GT)})
    result = CliRunner().invoke(app, ["eval", "--pred", str(pred), "--gt", str(gt)])
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "door")[-1] == "100.0"
    assert_one_line_error(CliRunner().invoke(app, ["eval", "--pred", str(tmp_path / "x"), "--gt", str(gt)]),
                          "does not exist")
    result = CliRunner().invoke(app, ["plot", "-l", str(pred / "a.txt"), "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 0 and (tmp_path / "a.png").exists()


def geometry_row(stdout: str, title: str) -> list[str]:
    return next(line.split()[len(title.split()):] for line in stdout.splitlines() if line.strip().startswith(title))


def test_geometry_errors_in_metres(tmp_path: Path):
    # scene a: wall_1 predicted 0.3 m out (x = 4.3): walls (0 + 0.3) / 2 = 0.15, extent 0.3, door exact;
    # scene b: no prediction, every error is the 2 m cutoff. Medians and means over the two rooms.
    pred_text = GT.replace("Wall(4.0,0.0,0.0,4.0,3.0,", "Wall(4.3,0.0,0.0,4.3,3.0,")
    pred, gt = folders(tmp_path, {"a": (pred_text, GT), "b": (None, GT)})
    out = tmp_path / "scores.json"
    result = run(["--pred", str(pred), "--gt", str(gt), "--exact", "--geometry", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Geometry: errors in metres" in result.stdout
    assert geometry_row(result.stdout, "room extent") == ["2", "1.150", "1.150", "–"]
    # rooms, pred, gt, paired, median, mean, paired mean (wall_1: 0.3, wall_0: 0)
    assert geometry_row(result.stdout, "wall centre lines") == ["2", "2", "4", "2", "1.075", "1.075", "0.150"]
    assert geometry_row(result.stdout, "door centres") == ["2", "1", "2", "1", "1.000", "1.000", "0.000"]
    assert geometry_row(result.stdout, "window centres") == ["0", "0", "0", "0", "–", "–", "–"]
    data = json.loads(out.read_text())["geometry"]
    assert data["summary"]["extent"] == {"median": 1.15, "mean": 1.15, "rooms": 2}
    assert data["rooms"][0]["extent_sides"] == [0.0, 0.0, 0.3, 0.0]
    plain = run(["--pred", str(pred), "--gt", str(gt)])
    assert "Geometry" not in plain.stdout
    assert_one_line_error(run(["--pred", str(pred), "--gt", str(gt), "--geometry", "--geometry_cutoff", "0"]),
                          "cutoff")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def qa_files(tmp_path: Path) -> tuple[Path, Path]:
    """Three questions; answers for two of them (one matched by image + question, as `infer --image` writes),
    plus one answer to no question."""
    gt = write_jsonl(tmp_path / "questions.jsonl", [
        {"id": "r0/doors", "image": "qa/r0.png", "question": "How many doors?", "answers": ["2", "two"]},
        {"image": "qa/r0.png", "question": "Is the door left or right of the window?", "answer": "left"},
        {"id": "r1/doors", "image": "qa/r1.png", "question": "How many doors?", "answer": "1"},
    ])
    pred = write_jsonl(tmp_path / "answers.jsonl", [
        {"id": "r0/doors", "text": "Two."},
        {"image": "/elsewhere/r0.png", "prompt": "Is the door left or right of the window?", "text": "Left"},
        {"id": "r9/doors", "text": "3"},
    ])
    return pred, gt


def test_vqa_per_item_and_corpus(tmp_path: Path):
    """exact: 'Two.' ≠ '2'/'two', 'Left' ≠ 'left', r1 missing (empty) -> 0/3; normalised: 2/3 -> 66.7."""
    pred, gt = qa_files(tmp_path)
    out = tmp_path / "vqa.json"
    result = run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "corpus") == ["corpus", "0.0", "66.7"]
    assert table_row(result.stdout, "r0/doors") == ["r0/doors", "Two.", "0.0", "100.0"]
    assert "1 reference(s) with no prediction (scored as empty answers): r1/doors" in result.stderr
    assert "1 prediction(s) with no reference (not scored): r9/doors" in result.stderr
    data = json.loads(out.read_text())
    assert data["corpus"] == {"exact": 0.0, "normalised": pytest.approx(2 / 3)}
    assert [item["key"] for item in data["items"]] == ["r0/doors", "r0|Is the door left or right of the window?",
                                                      "r1/doors"]
    assert data["items"][2]["missing_prediction"] and data["items"][2]["prediction"] == ""
    again = run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt), "--json", str(out)])
    assert again.exit_code == 0 and "replacing an earlier report" in again.stderr


def test_caption_task_from_a_folder_of_infer_outputs(tmp_path: Path):
    """Predictions as `infer --image` writes them (one JSON per panorama, with its prompt); references without a
    question take the one prediction for their image."""
    answers = tmp_path / "answers"
    answers.mkdir()
    for name, text in (("r0", "a red door and a window"), ("r1", "blue wall")):
        (answers / f"{name}.json").write_text(json.dumps({"image": f"/x/{name}.png", "prompt": "Describe it.",
                                                          "text": text, "positions": {}}), encoding="utf-8")
    gt = write_jsonl(tmp_path / "refs.jsonl", [{"image": "r0.png", "references": ["a red door and a window"]},
                                               {"image": "r1.png", "references": ["a green floor"]}])
    out = tmp_path / "captions.json"
    result = run(["--task", "caption", "--pred", str(answers), "--gt", str(gt), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "METEOR exact-match only" in result.stderr
    data = json.loads(out.read_text())
    assert data["metrics"] == ["BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"]
    first, second = (item["scores"] for item in data["items"])
    assert first["BLEU-4"] == pytest.approx(1.0) and first["ROUGE-L"] == pytest.approx(1.0)
    assert second["ROUGE-L"] == 0.0 and second["CIDEr-D"] == 0.0
    assert data["corpus"]["ROUGE-L"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("make", "extra", "fragment"),
    [
        (lambda p: p.write_text('{"id": 1\n'), [], "answers.jsonl:1: not valid JSON"),
        (lambda p: p.write_text('{"id": "r0/doors"}\n'), [], "a prediction needs a string in one of text"),
        (lambda p: p.write_text('["a"]\n'), [], "a record must be a JSON object"),
        (lambda p: p.write_text('{"id": "r0/doors", "text": "2"}\n{"id": "r0/doors", "text": "3"}\n'), [],
         "a second prediction for 'r0/doors'"),
        (lambda p: p.write_text('{"id": "zz", "text": "2"}\n'), [], "no prediction in"),
        (lambda p: None, ["--exact"], "--exact applies to --task layout only"),
        (lambda p: None, ["--iou", "0.5"], "--iou applies to --task layout only"),
        (lambda p: None, ["--task", "captions"], "--task must be one of layout, caption, vqa"),
    ],
)
def test_answers_bad_input_gives_one_line(tmp_path: Path, make, extra: list[str], fragment: str):
    pred, gt = qa_files(tmp_path)
    make(pred)
    args = ["--pred", str(pred), "--gt", str(gt), *extra]
    result = run(args if "--task" in extra else ["--task", "vqa", *args])
    assert_one_line_error(result, fragment)


def test_answers_missing_inputs_and_foreign_json(tmp_path: Path):
    pred, gt = qa_files(tmp_path)
    assert_one_line_error(run(["--task", "vqa", "--pred", str(pred)]), "give both --pred (answers) and --gt")
    assert_one_line_error(run(["--task", "vqa", "--pred", str(tmp_path / "no.jsonl"), "--gt", str(gt)]),
                          "do not exist")
    (tmp_path / "q.csv").write_text("id,answer\n")
    assert_one_line_error(run(["--task", "vqa", "--pred", str(tmp_path), "--gt", str(tmp_path / "q.csv")]),
                          "must be a .jsonl or .json file or a folder")
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    result = run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt), "--json", str(foreign)])
    assert_one_line_error(result, "pass --overwrite")
    assert foreign.read_text() == '{"mine": true}'
    assert run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt), "--json", str(foreign),
                "--overwrite"]).exit_code == 0


def test_answer_options_give_the_chance_level(tmp_path: Path):
    """Options ['1', '2'] and ['left', 'right', 'ahead']: chance (1/2 + 1/3) / 2 = 41.7; bad options: one line."""
    gt = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "answer": "1", "options": ["1", "2"]},
                                             {"id": "b", "answer": "left", "options": ["left", "right", "ahead"]}])
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "text": "1"}, {"id": "b", "text": "ahead"}])
    result = run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt)])
    assert result.exit_code == 0, result.output
    assert "chance level (a uniform guess among each question's options): 41.7" in result.stderr
    assert table_row(result.stdout, "corpus") == ["corpus", "50.0", "50.0"]
    write_jsonl(gt, [{"id": "a", "answer": "1", "options": "1 or 2"}])
    assert_one_line_error(run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt)]),
                          "'options' must be a non-empty list of strings")


def test_matching_by_id_or_by_image_and_question(tmp_path: Path):
    """A reference with an id takes the prediction with that id, else the one with its image stem and question;
    two predictions for one image leave a question-less reference unmatched (ambiguous)."""
    gt = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "a", "image": "r0.png", "question": "How many doors?", "answer": "1"},
        {"id": "b", "image": "r1.png", "question": "How many doors?", "answer": "2"},
        {"image": "r2.png", "answer": "left"},
    ])
    pred = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "text": "1"},
        {"image": "/runs/r1.png", "question": "How many doors?", "text": "2"},
        {"image": "/runs/r2.png", "question": "Which side?", "text": "left"},
        {"image": "/runs/r2.png", "question": "Which wall?", "text": "right"},
    ])
    out = tmp_path / "s.json"
    result = run(["--task", "vqa", "--pred", str(pred), "--gt", str(gt), "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [item["prediction"] for item in data["items"]] == ["1", "2", ""]
    assert data["missing_predictions"] == ["r2"]
    assert data["unmatched_predictions"] == ["r2|Which side?", "r2|Which wall?"]
