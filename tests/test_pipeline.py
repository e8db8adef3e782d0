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
    assert sorted(p.name for p in out.iterdir()) == ["failed.log", "good.json", "good.txt"]
    assert (out / "failed.log").read_text().startswith("bad\t'")
    (scenes / "bad.ply").unlink()
    again = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "--skip_existing", *FAST])
    assert again.exit_code == 0 and "nothing to do: all 1 scene(s)" in again.stderr


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
    assert "done: 1, skipped: 0, failed: 1" in first.stderr
    assert "not a PLY file" in (out / "failed.log").read_text()
    (scenes / "b.ply").unlink()
    second = subprocess.run([script, str(scenes), str(out), *FAST], capture_output=True, text=True, env=env)
    assert second.returncode == 0 and "done: 0, skipped: 1, failed: 0" in second.stderr


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
