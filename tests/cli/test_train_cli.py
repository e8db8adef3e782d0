"""`spatialvlm train`: a fine-tune from the command line loads with --model, keeps or swaps the PE, refuses bad
flags in one line before training, never writes into a used run folder without --resume, and runs under torchrun."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.model import load_spatiallm

REPO = Path(__file__).resolve().parents[2]
SCENES = REPO / "scenes"
QUICK = ["--steps", "2", "--batch_size", "2", "--warmup_steps", "1", "--workers", "1", "--threads", "1"]


def run(args: list[str]):
    return CliRunner().invoke(app, ["train", *args])


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """tiny-qwen fine-tuned for 2 steps on the shipped scenes with 3D_RoPE swapped in."""
    out = tmp_path_factory.mktemp("runs") / "tuned"
    result = run(["-m", "tiny-qwen", "-d", str(SCENES), "-o", str(out), "--VLM_PE", "3D_RoPE",
                  "--PCD_PE_Merge_Rule", "3D_only", *QUICK])
    assert result.exit_code == 0, result.output
    assert f"load it with --model {out}" in result.stdout
    return out


def test_fine_tune_loads_with_model_and_records_its_settings(tuned):
    loaded = load_spatiallm(str(tuned), device="cpu")
    assert (loaded.model.config.vlm_pe, loaded.model.config.pcd_pe_merge_rule) == ("3D_RoPE", "3D_only")
    report = json.loads((tuned / "training.json").read_text())
    assert report["settings"]["model"] == "tiny-qwen" and report["report"]["steps"] == 2
    assert report["examples"] == 3  # the three shipped scenes
    assert (tuned / "examples.pt").is_file()


def test_without_vlm_pe_the_checkpoints_pe_is_kept(tuned, tmp_path):
    result = run(["-m", str(tuned), "-d", str(SCENES), "-o", str(tmp_path / "again"), *QUICK])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "again" / "training.json").read_text())["settings"]
    assert (settings["vlm_pe"], settings["merge_rule"]) == ("3D_RoPE", "3D_only")


def test_a_warm_start_from_a_run_folder(tuned, tmp_path):
    """--init_from starts a new schedule from a run's last checkpoint: at lr 0 its weights come out unchanged."""
    out = tmp_path / "warm"
    result = run(["-m", "tiny-qwen", "--VLM_PE", "3D_RoPE", "--PCD_PE_Merge_Rule", "3D_only", "-d", str(SCENES),
                  "-o", str(out), "--init_from", str(tuned), "--lr", "0", *QUICK])
    assert result.exit_code == 0, result.output
    before, after = (load_file(path / "model.safetensors") for path in (tuned, out))
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert json.loads((out / "training.json").read_text())["settings"]["init_from"] == str(tuned)


def test_a_used_run_folder_needs_resume(tuned):
    before = {path: path.stat().st_mtime_ns for path in tuned.iterdir()}
    assert_one_line_error(run(["-m", "tiny-qwen", "-d", str(SCENES), "-o", str(tuned), *QUICK]), "--resume")
    assert {path: path.stat().st_mtime_ns for path in tuned.iterdir()} == before


def same_weights(a: Path, b: Path) -> bool:
    first, second = (load_file(path / "model.safetensors") for path in (a, b))
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_then_equals_the_legs_run_by_hand(tmp_path):
    """One command with --then trains what two commands train (the second warm-started from the first), leg 1 in
    OUTPUT/leg-1 and the last leg in OUTPUT; stopped inside leg 2 and resumed, it still ends with the same weights."""
    leg = ["-m", "tiny-qwen", "-d", str(SCENES), *QUICK, "--checkpoint_every", "1"]
    then = ["--then", "steps=3 lr=0.0005 warmup_steps=1"]
    assert run([*leg, "-o", str(tmp_path / "one"), *then]).exit_code == 0
    assert run([*leg, "-o", str(tmp_path / "first")]).exit_code == 0
    second = run([*leg, "-o", str(tmp_path / "second"), "--init_from", str(tmp_path / "first"), "--steps", "3",
                  "--lr", "0.0005"])
    assert second.exit_code == 0, second.output
    assert same_weights(tmp_path / "one" / "leg-1", tmp_path / "first")
    assert same_weights(tmp_path / "one", tmp_path / "second")
    assert not same_weights(tmp_path / "first", tmp_path / "second")
    settings = json.loads((tmp_path / "one" / "training.json").read_text())["settings"]
    assert (settings["steps"], settings["lr"], settings["init_from"]) == (3, 0.0005, str(tmp_path / "one" / "leg-1"))

    stopped = run([*leg, "-o", str(tmp_path / "stopped"), *then, "--stop_after", "3"])  # 2 steps + 1 of leg 2
    assert stopped.exit_code == 0, stopped.output
    resumed = run([*leg, "-o", str(tmp_path / "stopped"), *then, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "5 steps" in resumed.stdout  # leg 1 counted, not run again
    assert same_weights(tmp_path / "stopped", tmp_path / "one")
    again = run([*leg, "-o", str(tmp_path / "stopped"), *then, "--resume"])
    assert again.exit_code == 0 and "already trained (5 steps)" in again.stdout, again.output


def test_the_shipped_recipe_config_trains_the_shipped_models_legs(tmp_path):
    """configs/train-shipped.yaml, as `spatialvlm train --config` reads it, has every leg's settings that the
    shipped model's training.json records (the folders the legs trained in aside)."""
    from typer.main import get_command

    from spatialvlm_cli.cli.train import build_job
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.training import TrainSettings

    config = REPO / "configs" / "train-shipped.yaml"
    command = get_command(app).commands["train"]
    values = merge_config(command.make_context("train", ["--config", str(config), "-o", str(tmp_path / "x")]), config)
    legs = build_job(values).legs()
    record = json.loads((REPO / "spatialvlm_cli" / "assets" / "models" / "spatialvlm-rooms" / "training.json")
                        .read_text())
    assert record["command"].startswith("spatialvlm train --config configs/train-shipped.yaml -o ")
    assert len(legs) == len(record["legs"]) == 2
    for (settings, _), stored in zip(legs, record["legs"], strict=True):
        assert dataclasses.replace(settings, init_from=None) == dataclasses.replace(
            TrainSettings.from_saved(stored["settings"]), init_from=None)
    assert legs[1][0].init_from == str(tmp_path / "x" / "leg-1")


@pytest.mark.parametrize(("then", "fragment"), [
    ("nosuch=1", "'nosuch' is not a setting"),
    ("vlm_pe=3D_RoPE", "'vlm_pe' is not a setting"),
    ("steps=many", "steps='many' should be a whole number"),
    ("mix_prompts=1", "should be true or false"),
    ("all_share=1.5", "between 0 and 1"),
    ("steps", "expects KEY=VALUE"),
])
def test_a_bad_leg_fails_in_one_line_before_training(tmp_path, then, fragment):
    out = tmp_path / "run"
    assert_one_line_error(run(["-m", "tiny-qwen", "--rooms", "2", "-o", str(out), *QUICK, "--then", then]), fragment)
    assert not out.exists()


@pytest.mark.parametrize(("args", "fragment"), [
    (["-m", "tiny-qwen"], "give training data"),
    (["-m", "tiny-qwen", "-d", "no/such/folder"], "neither a data folder"),
    (["-m", "tiny-qwen", "--rooms", "2", "--freeze", "encoder"], "cannot freeze encoder"),
    (["-m", "tiny-qwen", "--rooms", "2", "--VLM_PE", "4D_RoPE"], "4D_RoPE"),
    (["-m", "tiny-qwen", "--rooms", "2", "--augment_rotation", "sideways"], "rotation"),
    (["-m", "tiny-qwen", "--rooms", "2", "--precision", "fp8"], "precision"),
    (["-m", "./no/such/checkpoint", "--rooms", "2"], "does not exist"),
    (["-m", "tiny-qwen", "--rooms", "2", "--init_from", "no/such/run"], "has no resume.pt"),
])
def test_bad_flags_fail_in_one_line_before_training(tmp_path, args, fragment):
    out = tmp_path / "run"
    assert_one_line_error(run([*args, "-o", str(out), *QUICK]), fragment)
    assert not out.exists()


def test_two_processes_under_torchrun(tmp_path):
    out = tmp_path / "ddp"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "spatialvlm_cli", "train", "-m", "tiny-qwen", "-d", str(SCENES), "-o", str(out),
                           *QUICK], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "training.json").read_text())["processes"] == 2
    assert load_spatiallm(str(out), device="cpu").source == "local"
