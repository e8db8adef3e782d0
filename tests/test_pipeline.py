"""The point-cloud path end to end on a tiny preset (random weights): files, counts, batches, resumption."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.io import read_point_cloud
from spatialvlm_cli.layout import parse_layout
from spatialvlm_cli.pipeline import decode_layout
from spatialvlm_cli.preprocess import prepare_point_cloud

REPO = Path(__file__).resolve().parents[1]
ROOM = REPO / "scenes" / "room_002.ply"
FAST = ["-m", "tiny-qwen", "--greedy", "--max_new_tokens", "3", "--device", "cpu"]


def test_decode_layout_bins_to_metres_and_back_to_the_file_frame():
    text = "wall_0=Wall(40,80,0,120,80,0,128,10)\nbbox_0=Bbox(bed,40,40,20,640,64,128,32)\nnot a line\n"
    layout, issues = decode_layout(text, 1280, np.array([1.0, -2.0, 0.5]))
    wall = layout.walls[0]
    # world bins are 32/1280 = 0.025 m, height bins 25.6/1280 = 0.02 m, scale bins 20/1280 = 0.015625 m
    assert (wall.ax, wall.ay, wall.az, wall.bx) == pytest.approx((2.0, 0.0, 0.5, 4.0))
    assert (wall.height, wall.thickness) == pytest.approx((2.56, 0.2))
    box = layout.bboxes[0]
    assert (box.position_x, box.position_z, box.angle_z) == pytest.approx((2.0, 1.0, 640 / 1280 * 12.5664 - 6.2832))
    assert (box.scale_x, box.scale_y, box.scale_z) == pytest.approx((1.0, 2.0, 0.5))
    assert [issue.line_no for issue in issues] == [3]


def test_infer_one_scene_writes_txt_and_json(tmp_path: Path):
    result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path / "one.txt"), *FAST])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "one.json").read_text())
    prepared = prepare_point_cloud(read_point_cloud(ROOM), num_bins=1280)
    grid = prepared.rows[:, :3].astype(np.int64)
    # Sonata pools 4 times by floor(c / 2): one token per occupied 16-cell (0.4 m) voxel.
    num_tokens = len(np.unique(grid // 16, axis=0))
    assert payload["stats"]["num_voxels"] == prepared.num_voxels
    assert payload["stats"]["num_point_tokens"] == num_tokens  # one placeholder per encoder token
    assert payload["stats"]["num_new_tokens"] <= 3
    assert parse_layout((tmp_path / "one.txt").read_text())[1] == []


def test_folder_run_survives_a_bad_scene_and_resumes(tmp_path: Path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(ROOM, scenes / "good.ply")
    (scenes / "bad.ply").write_text("this is not a point cloud\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert "1 scene(s) written" in result.stderr and "1 failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["failed.log", "good.json", "good.txt", "manifest.jsonl"]
    assert (out / "failed.log").read_text().startswith("bad\t'")
    first = {entry["scene"]: entry for entry in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert [(name, entry["status"]) for name, entry in first.items()] == [("bad.ply", "failed"), ("good.ply", "ok")]
    assert "not a PLY file" in first["bad.ply"]["error"] and first["bad.ply"]["new_tokens"] is None
    assert (first["good.ply"]["model"], first["good.ply"]["pe"], first["good.ply"]["rank"]) == ("tiny-qwen", "None", 0)
    # the failed scene is retried, the done one is not; failed.log goes once nothing has failed
    shutil.copy(ROOM, scenes / "bad.ply")
    again = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "--skip_existing", *FAST])
    assert again.exit_code == 0, again.output
    assert "1 scene(s) written" in again.stderr and "1 skipped (done before with the same model, PE and settings)" \
        in again.stderr
    second = {entry["scene"]: entry for entry in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert second["good.ply"] == first["good.ply"] and second["bad.ply"]["status"] == "ok"
    assert sorted(p.name for p in out.iterdir()) == ["bad.json", "bad.txt", "good.json", "good.txt", "manifest.jsonl"]
    done = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "--skip_existing", *FAST])
    assert done.exit_code == 0 and "nothing to do: all 2 scene(s) were done" in done.stderr


def test_skip_existing_reruns_scenes_done_with_another_encoding_or_settings(tmp_path: Path):
    """The README's chunked example after the interleaved one: outputs of another encoding are not kept."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        shutil.copy(ROOM, scenes / f"{name}.ply")
    out = tmp_path / "out"
    interleaved = ["-p", str(scenes), "-o", str(out), "--skip_existing", "--VLM_PE", "3D_RoPE", *FAST]
    assert CliRunner().invoke(app, ["infer", *interleaved]).exit_code == 0
    chunked = CliRunner().invoke(app, ["infer", *interleaved, "--pe_option", "layout=chunked"])
    assert chunked.exit_code == 0, chunked.output
    assert "2 scene(s) were done with another model, PE or settings: running them again" in chunked.stderr
    assert "2 scene(s) written" in chunked.stderr
    assert json.loads((out / "a.json").read_text())["pe"]["layout"] == "chunked"
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [entry["pe"].split(" ")[0] for entry in entries] == ["3D_RoPE/3D_only"] * 2
    assert all('"layout": "chunked"' in entry["pe"] for entry in entries)
    # the same flags spelled otherwise are the same run; another seed is not
    same = CliRunner().invoke(app, ["infer", *interleaved[:-len(FAST)], "--VLM_PE", "3d_rope", "--pe_option",
                                    "layout=chunked", *FAST])
    assert same.exit_code == 0 and "nothing to do" in same.stderr
    seeded = CliRunner().invoke(app, ["infer", *interleaved, "--pe_option", "layout=chunked", "--seed", "1"])
    assert seeded.exit_code == 0 and "2 scene(s) written" in seeded.stderr


def test_a_rerun_that_fails_removes_the_outputs_of_another_encoding(tmp_path: Path, monkeypatch):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        shutil.copy(ROOM, scenes / f"{name}.ply")
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), *FAST]).exit_code == 0
    import spatialvlm_cli.pipeline as pipeline

    real_prepare = pipeline.prepare_point_cloud
    calls = []

    def failing_on_b(cloud, num_bins, clean=True):
        calls.append(1)
        if len(calls) == 2:  # the second scene, b
            raise RuntimeError("numerical trouble")
        return real_prepare(cloud, num_bins, clean=clean)

    monkeypatch.setattr(pipeline, "prepare_point_cloud", failing_on_b)
    rerun = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "--skip_existing", "--VLM_PE",
                                     "3D_RoPE", *FAST])
    assert rerun.exit_code == 1
    assert "failed b.ply: unexpected failure: numerical trouble; removed its outputs of another model, PE or " \
        "settings" in rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.txt", "failed.log", "manifest.jsonl"]
    assert json.loads((out / "a.json").read_text())["vlm_pe"] == "3D_RoPE"


def test_skip_existing_needs_a_folder_run(tmp_path: Path):
    result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path / "out"), "--skip_existing", *FAST])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --skip_existing resumes a folder run from its manifest; '{ROOM}' is one file (run it again without "
        "--skip_existing) (set SPATIALVLM_DEBUG=1 for a traceback)"]
    assert not (tmp_path / "out").exists()


def test_yaml_config_drives_infer(tmp_path: Path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: tiny-llama\nVLM_PE: 3D_RoPE\nPCD_PE_Merge_Rule: 3D_with_1D\ngreedy: true\n"
                   "max_new_tokens: 2\ndevice: cpu\n")
    result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "room_002.json").read_text())
    assert (payload["model"], payload["vlm_pe"], payload["pcd_pe_merge_rule"]) == ("tiny-llama", "3D_RoPE",
                                                                                  "3D_with_1D")


@pytest.mark.skipif(shutil.which("spatialvlm") is None, reason="console script not installed")
def test_batch_script_reports_a_failure_and_skips_done_scenes(tmp_path: Path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(ROOM, scenes / "a.ply")
    (scenes / "b.ply").write_text("not a ply\n")
    out = tmp_path / "out"
    script = str(REPO / "scripts" / "batch_infer.sh")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.run([script, str(scenes), str(out), *FAST], capture_output=True, text=True, env=env)
    assert first.returncode == 1, first.stderr
    assert first.stderr.count("loaded tiny-qwen") == 1  # one process for the folder: the model loads once
    assert "1 scene(s) written" in first.stderr and "1 failed" in first.stderr
    log = (out / "failed.log").read_text()
    assert log.startswith("b\t") and "not a PLY file" in log and "\x1b" not in log
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.txt", "failed.log", "manifest.jsonl"]
    (scenes / "b.ply").unlink()
    second = subprocess.run([script, str(scenes), str(out), *FAST], capture_output=True, text=True, env=env)
    assert second.returncode == 0 and "nothing to do: all 1 scene(s) were done" in second.stderr


def test_verbose_switch_prints_the_nine_checkpoints_during_infer(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SPATIALVLM_VERBOSE", "1")
    args = ["infer", "-p", str(ROOM), "-o", str(tmp_path), "--VLM_PE", "3D_RoPE", *FAST]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for number in range(1, 10):
        assert f"[CHECKPOINT {number}]" in result.stderr
    assert "FAIL" not in result.stderr
    assert "[CHECKPOINT" not in result.stdout  # stdout carries only the generated text


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--VLM_PE", "4D_RoPE"], "'4D_RoPE'"),
        (["--VLM_PE", "3D_RoPE", "--PCD_PE_Merge_Rule", "2D_only"], "'2D_only'"),
        (["--VLM_PE", "3D_RoPE", "--pe_option", "theta_3d=hot"], "theta_3d"),
        (["-m", "no-such-preset"], "no-such-preset"),
    ],
)
def test_bad_pe_or_model_flags_are_one_line_errors(tmp_path: Path, flags: list[str], fragment: str):
    result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path / "out"), *FAST, *flags])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_model_output_with_extra_values_is_malformed():
    text = "wall_0=Wall(40,80,0,120,80,0,128,10,99)\nwall_1=Wall(40,80,0,40,200,0,128,10)\n"
    layout, issues = decode_layout(text, 1280, np.zeros(3))
    assert [wall.id for wall in layout.walls] == [1]
    assert [(issue.line_no, issue.reason) for issue in issues] == [(1, "Wall takes 8 values, got 9")]


def test_default_run_is_seeded_and_records_every_setting(tmp_path: Path):
    args = ["infer", "-p", str(ROOM), "-m", "tiny-qwen", "--max_new_tokens", "12", "--device", "cpu"]
    first = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "a")])
    second = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "b")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    one, two = (json.loads((tmp_path / name / "room_002.json").read_text()) for name in "ab")
    assert one["raw_text"] == two["raw_text"]  # sampling, but the default seed is fixed
    assert one["settings"] == {"detect_type": "all", "categories": [], "cleanup": True, "max_new_tokens": 12,
                               "greedy": False, "temperature": 0.6, "top_p": 0.95, "top_k": 10, "num_beams": 1,
                               "seed": 0, "max_line_repeats": 3}
    assert (one["device"], one["dtype"], one["model"]) == ("cpu", "torch.float32", "tiny-qwen")


def test_token_limit_and_entity_summary_are_said(tmp_path: Path):
    result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path), *FAST])
    assert result.exit_code == 0, result.output
    assert "stopped at --max_new_tokens 3" in result.stderr
    assert "integer bins (2.5 cm positions" in result.stderr and "gets metres" in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("wrote ") and "0 walls, 0 doors, 0 windows, 0 boxes" in summary
    assert "cut off at --max_new_tokens" in summary
    assert json.loads((tmp_path / "room_002.json").read_text())["stats"]["hit_token_limit"] is True


def test_existing_files_are_not_overwritten_behind_the_users_back(tmp_path: Path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(ROOM, scenes / "room.ply")
    truth = scenes / "room.txt"
    truth.write_text("wall_0=Wall(0,0,0,1,0,0,2.5,0.2)\n")
    refused = CliRunner().invoke(app, ["infer", "-p", str(scenes / "room.ply"), "-o", str(truth), *FAST])
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: '{truth}' exists and was not written by spatialvlm for this input; pass --overwrite to replace "
        "it, or choose another --output (set SPATIALVLM_DEBUG=1 for a traceback)"]
    assert truth.read_text() == "wall_0=Wall(0,0,0,1,0,0,2.5,0.2)\n" and not (scenes / "room.json").exists()
    # the same scene again into the same folder: this tool's own files are replaced, and it says so
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), *FAST]).exit_code == 0
    again = CliRunner().invoke(app, ["infer", "-p", str(scenes / "room.ply"), "-o", str(out), *FAST])
    assert again.exit_code == 0 and "replacing an earlier run's files" in again.stderr
    # a file written for another scene is not ours to replace; --overwrite allows it
    shutil.copy(ROOM, scenes / "other.ply")
    assert CliRunner().invoke(app, ["infer", "-p", str(scenes / "other.ply"), "-o", str(out), *FAST]).exit_code == 0
    other = CliRunner().invoke(app, ["infer", "-p", str(scenes / "room.ply"), "-o", str(out / "other.txt"), *FAST])
    assert other.exit_code == 1 and "was not written by spatialvlm for this input" in other.stderr
    forced = CliRunner().invoke(app, ["infer", "-p", str(scenes / "room.ply"), "-o", str(out / "other.txt"),
                                      "--overwrite", *FAST])
    assert forced.exit_code == 0 and "replacing" in forced.stderr


def test_outputs_respect_the_umask(tmp_path: Path):
    previous = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path), *FAST])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    for name in ("room_002.txt", "room_002.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_folder_run_survives_any_scene_failure(tmp_path: Path, monkeypatch, make_ply):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "c", "d"):
        shutil.copy(ROOM, scenes / f"{name}.ply")
    points = np.random.default_rng(0).random((500, 3))
    points[0], points[1] = 1e30, -1e30
    make_ply("scenes/b.ply", points)
    import spatialvlm_cli.pipeline as pipeline

    real_prepare = pipeline.prepare_point_cloud
    calls = []

    def flaky_prepare(cloud, num_bins, clean=True):
        calls.append(1)
        if len(calls) == 2:  # the third scene (c): a library error that is not ours
            raise RuntimeError("[Open3D Error] VoxelDownSample: voxel_size is too small.\nmore detail")
        return real_prepare(cloud, num_bins, clean=clean)

    monkeypatch.setattr(pipeline, "prepare_point_cloud", flaky_prepare)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert sorted(p.name for p in out.glob("*.txt")) == ["a.txt", "d.txt"]
    log = (out / "failed.log").read_text().splitlines()
    assert [line.split("\t")[0] for line in log] == ["b", "c"]
    assert "coordinates must be metres" in log[0]
    assert log[1] == "c\tunexpected failure: [Open3D Error] VoxelDownSample: voxel_size is too small."
    assert "Traceback" not in result.output
    assert "2 scene(s) written" in result.stderr and "2 failed" in result.stderr


def test_ctrl_c_in_a_folder_run_says_how_to_resume(tmp_path: Path, monkeypatch):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(ROOM, scenes / f"{name}.ply")
    import spatialvlm_cli.pipeline as pipeline

    real_infer = pipeline.infer_scene

    def interrupted_on_b(loaded, path, *args, **kwargs):
        if path.stem == "b":
            raise KeyboardInterrupt
        return real_infer(loaded, path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "infer_scene", interrupted_on_b)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), *FAST])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == (
        "error: interrupted; 1 of 3 scene(s) done; run the same command with --skip_existing to go on where it stopped")
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.txt", "manifest.jsonl"]  # merged on the way out
    assert [json.loads(line)["scene"] for line in (out / "manifest.jsonl").read_text().splitlines()] == ["a.ply"]
    monkeypatch.setattr(pipeline, "infer_scene", real_infer)
    resumed = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "--skip_existing", *FAST])
    assert resumed.exit_code == 0
    assert "2 scene(s) written to" in resumed.stderr
    assert "1 skipped (done before with the same model, PE and settings), 0 failed" in resumed.stderr


def test_own_outputs_are_recognised_from_another_working_folder(tmp_path: Path, monkeypatch):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(ROOM, scenes / "room.ply")
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["infer", "-p", "scenes/room.ply", "-o", "out", *FAST]).exit_code == 0
    monkeypatch.chdir(scenes)
    again = CliRunner().invoke(app, ["infer", "-p", "room.ply", "-o", "../out", *FAST])
    assert again.exit_code == 0 and "replacing an earlier run's files" in again.stderr


def test_a_first_scene_failing_into_a_new_folder_is_recorded(tmp_path: Path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "a.ply").write_text("not a ply\n")
    shutil.copy(ROOM, scenes / "b.ply")
    out = tmp_path / "new" / "out"
    result = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), *FAST])
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["b.json", "b.txt", "failed.log", "manifest.jsonl"]


def test_one_scene_goes_through_run_scenes_reading_the_file_once_and_failing_as_the_command(tmp_path: Path,
                                                                                           monkeypatch):
    import spatialvlm_cli.pipeline as pipeline

    reads = []
    real_read = pipeline.read_scan
    monkeypatch.setattr(pipeline, "read_scan", lambda path, options: reads.append(path) or real_read(path, options))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert reads == []  # the command read the scene before loading the model; run_scenes used that cloud
    assert sorted(p.name for p in out.iterdir()) == ["room_002.json", "room_002.txt"]

    def broken_prepare(cloud, num_bins, clean=True):
        raise RuntimeError("[Open3D Error] VoxelDownSample: voxel_size is too small.\nmore detail")

    monkeypatch.setattr(pipeline, "prepare_point_cloud", broken_prepare)
    failed = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(tmp_path / "new"), *FAST])
    assert failed.exit_code == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        "error: unexpected failure: [Open3D Error] VoxelDownSample: voxel_size is too small. "
        "(set SPATIALVLM_DEBUG=1 for a traceback)")
    assert not (tmp_path / "new").exists()  # no failed.log, no summary line: the scene's failure is the command's
    assert "scene(s) written" not in failed.stderr


def test_what_the_request_did_not_ask_for_is_left_out_and_counted(tmp_path: Path, monkeypatch):
    # A model that writes a wall, a bed and a chair whatever it is asked: -c bed keeps the wall and the bed (renumbered
    # 0), -d arch keeps the wall; the raw text and the count stay in the JSON, and the warning says it.
    import spatialvlm_cli.pipeline as pipeline
    from spatialvlm_cli.generation.stream import GenerationResult

    text = ("wall_0=Wall(40,80,0,120,80,0,128,10)\nbbox_0=Bbox(chair,40,40,20,640,64,128,32)\n"
            "bbox_1=Bbox(bed,60,40,20,640,64,128,32)")
    monkeypatch.setattr(pipeline, "stream_generate",
                        lambda *args, **kwargs: GenerationResult(text, 60, stopped_by_repeat=False, repeated_line=None))
    for flags, classes, left_out in ((["-c", "bed"], ["bed"], 1), (["-d", "arch"], [], 2), ([], ["chair", "bed"], 0)):
        out = tmp_path / f"run{len(flags)}{left_out}.txt"
        result = CliRunner().invoke(app, ["infer", "-p", str(ROOM), "-o", str(out), *FAST, *flags])
        assert result.exit_code == 0, result.output
        layout, _ = parse_layout(out.read_text())
        assert len(layout.walls) == 1
        assert [(box.id, box.class_name) for box in layout.bboxes] == list(enumerate(classes))
        payload = json.loads(out.with_suffix(".json").read_text())
        assert payload["stats"]["outside_request"] == left_out and payload["raw_text"] == text
        assert (f"left out {left_out} entity line(s)" in result.stderr) == (left_out > 0)
