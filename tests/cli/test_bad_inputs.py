"""Bad or odd inputs through the `spatialvlm` command (issue 13): each ends with exit code 1, one `error:` line on
stderr, no traceback and no output file."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import torch
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.model.loading import shipped_model_dir

REPO = Path(__file__).resolve().parents[2]
ROOM = REPO / "scenes" / "room_000.ply"
FAST = ["-m", "tiny-qwen", "--greedy", "--max_new_tokens", "3", "--device", "cpu"]


def run(args: list[str]):
    return CliRunner().invoke(app, args)


def assert_one_line_error(result, fragment: str, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def assert_nothing_written(folder: Path) -> None:
    assert not folder.exists(), list(folder.iterdir())  # not even an empty output folder


def binary_ply(path: Path, count: int = 2000) -> Path:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.default_rng(0).random((count, 3)) * 4))
    o3d.io.write_point_cloud(str(path), cloud, write_ascii=False)
    return path


@pytest.mark.parametrize("ascii_format", [False, True])
def test_truncated_ply_is_refused_against_its_header(tmp_path: Path, ascii_format: bool):
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.default_rng(0).random((2000, 3))))
    whole = tmp_path / "whole.ply"
    o3d.io.write_point_cloud(str(whole), cloud, write_ascii=ascii_format)
    cut = tmp_path / "cut.ply"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 4])
    out = tmp_path / "out"
    line = assert_one_line_error(run(["infer", "-p", str(cut), "-o", str(out), *FAST]), "is truncated")
    assert "declares 2000 vertices" in line
    assert_nothing_written(out)


def test_points_at_1e30_are_refused(tmp_path: Path):
    points = np.random.default_rng(0).random((500, 3))
    points[0], points[1] = 1e30, -1e30
    path = tmp_path / "huge.ply"
    o3d.io.write_point_cloud(str(path), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)))
    out = tmp_path / "out"
    assert_one_line_error(run(["infer", "-p", str(path), "-o", str(out), *FAST]), "coordinates must be metres")
    assert_nothing_written(out)


def test_yaml_config_with_invalid_utf8(tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_bytes(b"greedy: true\nmodel: \xff\xfe\n")
    out = tmp_path / "out"
    assert_one_line_error(run(["infer", "-p", str(ROOM), "-o", str(out), "--config", str(config)]), "is not UTF-8 text")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--temperature", "nan"], "--temperature must be a number > 0"),
        (["--temperature", "inf"], "--temperature must be a number > 0"),
        (["--seed", "-1"], "--seed must be in 0 .. 4294967295"),
        (["--seed", str(2**70)], "--seed must be in 0 .. 4294967295"),
        (["--top_p", "nan"], "--top_p"),
    ],
)
def test_bad_sampling_values(tmp_path: Path, flags: list[str], fragment: str):
    out = tmp_path / "out"
    assert_one_line_error(run(["infer", "-p", str(ROOM), "-o", str(out), *flags]), fragment)
    assert_nothing_written(out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_fails_before_the_model_loads(tmp_path: Path, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr("spatialvlm_cli.model.load_spatiallm", no_load)
    assert_one_line_error(run(["infer", "-p", str(ROOM), "-o", str(tmp_path / "o"), "--device", "cuda"]),
                          "CUDA is not available")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--VLM_PE", "4D_RoPE"], "unknown positional encoding '4D_RoPE'"),
        (["--vlm_pe", "3D_RoPE", "--pcd_pe_merge_rule", "2D_only"], "unknown merge rule '2D_only'"),
        (["--VLM_PE", "None", "--pe_option", "theta_3d=10"], "theta_3d for --VLM_PE None"),
        (["--VLM_PE", "3D_RoPE", "--pe_option", "thet=10"], "thet for --VLM_PE 3D_RoPE"),
        (["-m", "./SpatialLM1.1-Qwen-0.5B"], "model './SpatialLM1.1-Qwen-0.5B' does not exist"),
    ],
)
def test_flags_are_checked_before_the_model_loads(tmp_path: Path, monkeypatch, flags: list[str], fragment: str):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr("spatialvlm_cli.model.load_spatiallm", no_load)
    line = assert_one_line_error(run(["infer", "-p", str(ROOM), "-o", str(tmp_path / "o"), *flags]), fragment)
    assert "Options" not in line  # no internal class names


def test_offline_hub_id_fails_in_a_second(tmp_path: Path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    result = run(["infer", "-p", str(ROOM), "-o", str(tmp_path / "o"), "-m", "spatialvlm-tests/not-a-model-0000"])
    assert time.perf_counter() - start < 3  # before torch or transformers is imported
    assert_one_line_error(result, "offline (HF_HUB_OFFLINE is set) and not in the local Hugging Face cache")


def broken_checkpoint(tmp_path: Path, name: str, damage) -> Path:
    """The shipped model's files linked into a folder, with one file replaced by `damage(folder)`."""
    folder = tmp_path / name
    folder.mkdir()
    for file in shipped_model_dir("spatialvlm-rooms").iterdir():
        (folder / file.name).symlink_to(file)
    damage(folder)
    return folder


def _replace(folder: Path, name: str, data: bytes) -> None:
    (folder / name).unlink()
    (folder / name).write_bytes(data)


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    _replace(folder, "config.json", json.dumps({**config, **changes}).encode())


def _corrupt_tokenizer(folder: Path) -> None:
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    del tokenizer["model"]["vocab"]
    _replace(folder, "tokenizer.json", json.dumps(tokenizer).encode())


WEIGHTS = shipped_model_dir("spatialvlm-rooms") / "model.safetensors"


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda d: _replace(d, "model.safetensors", WEIGHTS.read_bytes()[:100_000]), "unusable weights"),
        (lambda d: _replace(d, "model.safetensors", b"\xff" * 8 + b"garbage" * 20), "unusable weights"),
        (_corrupt_tokenizer, "unusable tokenizer.json"),
        (lambda d: _edit_config(d, num_hidden_layers="four"), "expected int, got str"),
        (lambda d: _edit_config(d, model_type="no_such_model"), "is a 'no_such_model' model"),
    ],
    ids=["truncated-safetensors", "garbage-safetensors", "tokenizer", "config-type", "model-type"],
)
def test_broken_checkpoints_are_one_line(tmp_path: Path, damage, fragment: str):
    folder = broken_checkpoint(tmp_path, "ckpt", damage)
    out = tmp_path / "out"
    assert_one_line_error(run(["infer", "-p", str(ROOM), "-o", str(out), "-m", str(folder)]), fragment)
    assert_nothing_written(out)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with almost no pixel data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(30000, 15000), (16384, 9000)])
def test_decompression_bomb_png_names_the_size_limit(tmp_path: Path, width: int, height: int):
    image = tmp_path / "bomb.png"
    image.write_bytes(png_header_only(width, height))
    out = tmp_path / "out"
    assert_one_line_error(run(["infer", "--image", str(image), "-o", str(out), "-m", "tiny-internvl"]),
                          "larger than the 16384×8192 pixels")
    assert_nothing_written(out)


def test_usage_errors_are_one_line_with_exit_2():
    for args, fragment in [(["infer", "--no-such-flag"], "No such option: --no-such-flag"),
                           (["infer", "--seed", "x"], "Invalid value for '--seed'"),
                           (["no-such-command"], "No such command")]:
        line = assert_one_line_error(run(args), fragment, code=2)
        assert "usage error" in line and "--help" in line
