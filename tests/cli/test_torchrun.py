"""`infer -p FOLDER` under torchrun: 2 CPU processes (gloo) split the shipped scenes plus a bad file, write what one
process writes, and merge one manifest; a run that loses a rank partway is finished by a rerun."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli import environment
from spatialvlm_cli.cli.app import app
from spatialvlm_cli.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
FAST = ["-m", "tiny-qwen", "--greedy", "--max_new_tokens", "4", "--device", "cpu"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _scenes(tmp_path: Path) -> Path:
    """The shipped rooms and a file that is not a point cloud (it sorts first: rank 0 gets it)."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for ply in sorted((REPO / "scenes").glob("*.ply")):
        shutil.copy(ply, scenes / ply.name)
    (scenes / "broken.ply").write_text("not a point cloud\n")
    return scenes


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, env=env, timeout=600)


def _manifest(out: Path) -> dict[str, dict]:
    return {entry["scene"]: entry for entry in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, None), ({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}, None),
     ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}, (3, 4, 1))],
)
def test_the_launch_is_read_from_torchruns_variables(monkeypatch, env: dict[str, str], expected):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment.torchrun_launch() == expected


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"},
                                 {"WORLD_SIZE": "2", "RANK": "x", "LOCAL_RANK": "0"}])
def test_a_launch_that_is_no_launch_is_refused(monkeypatch, env: dict[str, str]):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="RANK"):
        environment.torchrun_launch()


def test_a_rank_takes_the_gpu_of_its_local_rank_and_refuses_one_gpu_for_all():
    from spatialvlm_cli.distributed import rank_device

    assert rank_device("cpu", 3) == "cpu"
    with pytest.raises(ConfigError, match="--device cuda:1 would put every rank on one GPU"):
        rank_device("cuda:1", 0)


def test_two_ranks_write_what_one_process_writes_and_merge_one_manifest(tmp_path: Path):
    scenes = _scenes(tmp_path)
    one = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(tmp_path / "one"), *FAST])
    assert one.exit_code == 1, one.output  # the broken file
    two = _torchrun("-m", "spatialvlm_cli", "infer", "-p", str(scenes), "-o", str(tmp_path / "two"), *FAST)
    assert two.returncode != 0  # rank 0 exits 1: a scene failed
    assert "3 scene(s) written to" in two.stderr and "by 2 processes, 1 failed" in two.stderr
    assert two.stderr.count("scene(s) written to") == 1  # rank 0 alone sums up
    assert "Traceback" not in two.stderr.split("scene(s) written to")[0]  # ours: one line per scene, no traceback
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    for ply in sorted((REPO / "scenes").glob("*.ply")):
        mine, theirs = (json.loads((tmp_path / run / f"{ply.stem}.json").read_text()) for run in ("one", "two"))
        assert theirs["raw_text"] == mine["raw_text"] and theirs["stats"]["num_point_tokens"] == \
            mine["stats"]["num_point_tokens"]
        assert (tmp_path / "two" / f"{ply.stem}.txt").read_text() == (tmp_path / "one" / f"{ply.stem}.txt").read_text()
    manifest = _manifest(tmp_path / "two")
    assert sorted(manifest) == ["broken.ply", "room_000.ply", "room_001.ply", "room_002.ply"]
    # the sorted scenes dealt out in turn: rank 0 gets the 1st and 3rd, rank 1 the 2nd and 4th
    assert {name: entry["rank"] for name, entry in manifest.items()} == \
        {"broken.ply": 0, "room_000.ply": 1, "room_001.ply": 0, "room_002.ply": 1}
    assert manifest["broken.ply"]["status"] == "failed" and "not a PLY file" in manifest["broken.ply"]["error"]
    assert all(entry["status"] == "ok" and entry["new_tokens"] > 0 and entry["seconds"] > 0
               for name, entry in manifest.items() if name != "broken.ply")
    assert (tmp_path / "two" / "failed.log").read_text().startswith("broken\t")
    assert _manifest(tmp_path / "one").keys() == manifest.keys()


def test_a_run_that_lost_a_rank_is_finished_by_a_rerun(tmp_path: Path):
    scenes = _scenes(tmp_path)
    out = tmp_path / "out"
    args = ["infer", "-p", str(scenes), "-o", str(out), *FAST]
    killed = _torchrun(str(REPO / "tests" / "cli" / "dying_worker.py"), *args)
    assert killed.returncode != 0 and "scene(s) written to" not in killed.stderr
    # torchrun stopped rank 0 with SIGTERM unless it was done: it ended like Ctrl-C, saying how to go on
    assert "error: interrupted; rank 0: " in killed.stderr or "rank 0: 2/2 done" in killed.stderr, killed.stderr
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporary file left
    # rank 1 finished room_000 before it died at room_002: its part holds it, nothing was merged
    assert not (out / "manifest.jsonl").exists() and not (out / "room_002.txt").exists()
    part = [json.loads(line) for line in (out / "manifest.rank1.jsonl").read_text().splitlines()]
    assert [(entry["scene"], entry["status"]) for entry in part] == [("room_000.ply", "ok")]
    # the same command again (here with --skip_existing): room_000 is kept, the rest run, one manifest results
    (scenes / "broken.ply").unlink()
    shutil.copy(REPO / "scenes" / "room_000.ply", scenes / "broken.ply")
    rerun = _torchrun("-m", "spatialvlm_cli", *args, "--skip_existing")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "by 2 processes" in rerun.stderr and ", 0 failed" in rerun.stderr
    manifest = _manifest(out)
    assert sorted(manifest) == ["broken.ply", "room_000.ply", "room_001.ply", "room_002.ply"]
    assert all(entry["status"] == "ok" for entry in manifest.values())
    assert manifest["room_000.ply"] == part[0]  # not run again
    assert sorted(p.name for p in out.iterdir()) == [
        "broken.json", "broken.txt", "manifest.jsonl", "room_000.json", "room_000.txt", "room_001.json",
        "room_001.txt", "room_002.json", "room_002.txt"]


def test_the_slurm_script_runs_torchrun_with_its_rendezvous_flags(tmp_path: Path):
    """Outside SLURM (SRUN empty, MASTER_ADDR set) the script's one command is the multi-node one on one node: c10d
    rendezvous at MASTER_ADDR:MASTER_PORT, NPROC_PER_NODE processes."""
    script = str(REPO / "scripts" / "slurm_infer.sh")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLURM_", "MASTER_"))}
    usage = subprocess.run([script], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and usage.stderr.startswith("Run `spatialvlm infer` over a folder")
    outside = subprocess.run([script, "scenes", str(tmp_path / "x")], capture_output=True, text=True, env=env)
    assert outside.returncode == 2 and outside.stderr == (
        "error: not in a SLURM job: submit with sbatch, or set MASTER_ADDR (and SRUN= to run here)\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update(SRUN="", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NPROC_PER_NODE="2", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    out = tmp_path / "out"
    run = subprocess.run([script, str(REPO / "scenes"), str(out), *FAST], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "3 scene(s) written to" in run.stderr and "by 2 processes, 0 failed" in run.stderr
    assert sorted(entry["rank"] for entry in _manifest(out).values()) == [0, 0, 1]
