"""`infer --batch_size N`: scenes of different sizes left-padded into one generate() call, each row stopping on its
own, give the files one-by-one greedy runs give (shipped model and tiny presets, CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.synthetic import make_room, split_seed, write_ply

REPO = Path(__file__).resolve().parents[1]


def _folder(tmp_path: Path, extra_rooms: tuple[int, ...] = ()) -> Path:
    """The shipped rooms, held-out rooms `extra_rooms` (as scripts/make_scenes.py writes them) and a broken file."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for ply in sorted((REPO / "scenes").glob("*.ply")):
        shutil.copy(ply, scenes / ply.name)
    for index in extra_rooms:
        room = make_room(split_seed("heldout", index))
        write_ply(scenes / f"room_{index:03d}.ply", room.points, room.colours)
    (scenes / "room_001b.ply").write_text("not a point cloud\n")
    return scenes


def _run(scenes: Path, out: Path, *flags: str) -> dict[str, dict]:
    result = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "--greedy", "--device", "cpu",
                                      *flags])
    assert result.exit_code == 1, result.output  # the broken file, and only it
    assert "1 failed" in result.stderr
    return {path.stem: json.loads(path.read_text()) for path in sorted(out.glob("room_*.json"))}


def _assert_same_files(one: dict[str, dict], batched: dict[str, dict], out_one: Path, out_batched: Path) -> None:
    assert one.keys() == batched.keys() and "room_001b" not in one
    for name in one:
        assert batched[name]["raw_text"] == one[name]["raw_text"], name
        for stat in ("num_new_tokens", "num_point_tokens", "stopped_by_repeat", "hit_token_limit"):
            assert batched[name]["stats"][stat] == one[name]["stats"][stat], (name, stat)
        assert (out_batched / f"{name}.txt").read_text() == (out_one / f"{name}.txt").read_text()


def test_the_shipped_model_batched_writes_what_it_writes_one_by_one(tmp_path: Path):
    scenes = _folder(tmp_path, extra_rooms=(3, 4))
    one = _run(scenes, tmp_path / "one")
    batched = _run(scenes, tmp_path / "three", "--batch_size", "3")
    _assert_same_files(one, batched, tmp_path / "one", tmp_path / "three")
    # rows of different sizes that end at different lengths: padding and per-row stopping are exercised
    assert len({entry["stats"]["num_point_tokens"] for entry in one.values()}) == len(one)
    assert len({entry["stats"]["num_new_tokens"] for entry in one.values()}) > 1, \
        "every room now ends at the same length: add rooms that do not"
    assert not any(entry["stats"]["hit_token_limit"] for entry in one.values())
    assert batched["room_000"]["batch_size"] == 3 and one["room_000"]["batch_size"] == 1
    manifest = [json.loads(line) for line in (tmp_path / "three" / "manifest.jsonl").read_text().splitlines()]
    assert [(entry["scene"], entry["status"]) for entry in manifest][1:3] == [("room_001.ply", "ok"),
                                                                          ("room_001b.ply", "failed")]


@pytest.mark.parametrize("flags", [["-m", "tiny-qwen", "--VLM_PE", "3D_RoPE", "--PCD_PE_Merge_Rule", "3D_with_1D"],
                                   ["-m", "tiny-llama", "--VLM_PE", "MixedRoPE3D"]])
def test_tiny_presets_batched_write_what_they_write_one_by_one(tmp_path: Path, flags: list[str]):
    scenes = _folder(tmp_path)
    common = [*flags, "--max_new_tokens", "24"]
    one = _run(scenes, tmp_path / "one", *common)
    batched = _run(scenes, tmp_path / "two", *common, "--batch_size", "2")  # batches of 2 and 2 (one broken)
    _assert_same_files(one, batched, tmp_path / "one", tmp_path / "two")


def test_a_batch_whose_generation_fails_runs_scene_by_scene(tmp_path: Path, monkeypatch):
    import spatialvlm_cli.pipeline as pipeline

    def failing_batch(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore")

    monkeypatch.setattr(pipeline, "generate_batch", failing_batch)
    scenes = _folder(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", "-p", str(scenes), "-o", str(out), "-m", "tiny-qwen", "--greedy",
                                      "--max_new_tokens", "3", "--device", "cpu", "--batch_size", "4"])
    assert result.exit_code == 1 and "3 scene(s) written" in result.stderr and "1 failed" in result.stderr
    assert "a batch of 4 scene(s) failed (unexpected failure: CUDA out of memory" in result.stderr
    assert "running them one by one" in result.stderr
    assert sorted(path.name for path in out.glob("*.txt")) == ["room_000.txt", "room_001.txt", "room_002.txt"]


def test_batch_size_is_checked_and_counts_in_the_run_key_only_when_sampling(tmp_path: Path):
    from spatialvlm_cli.generation import GenerationSettings
    from spatialvlm_cli.pipeline import PointCloudRun, SceneSettings

    bad = CliRunner().invoke(app, ["infer", "-p", str(REPO / "scenes"), "-o", str(tmp_path), "--batch_size", "0"])
    assert bad.exit_code == 1 and "--batch_size must be at least 1, got 0" in bad.stderr

    def key(greedy: bool, batch_size: int):
        scene = SceneSettings(generation=GenerationSettings(greedy=greedy))
        return PointCloudRun(point_cloud=tmp_path, output=tmp_path, scene=scene, model="tiny-qwen",
                             batch_size=batch_size).key

    assert key(True, 1) == key(True, 8)
    assert key(False, 1) != key(False, 8) != key(False, 4)
