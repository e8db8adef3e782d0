"""The run manifest: what counts as the same run, latest try wins, a killed run's parts are merged, a file that is
not ours is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spatialvlm_cli.errors import OutputError
from spatialvlm_cli.runs import (
    FAILED_LOG,
    MANIFEST_NAME,
    ManifestPart,
    RunKey,
    merge_manifest,
    part_path,
    pe_description,
    pe_request,
    read_manifest,
    settings_hash,
)

SETTINGS = {"detect_type": "all", "seed": 0, "greedy": True}


def test_the_key_normalises_spellings_but_not_meaning(tmp_path: Path):
    assert pe_request(None, None, {}) == "checkpoint"
    assert pe_request("3D_RoPE", "3D_with_1D", {"layout": "chunked"}) == \
        pe_request(" 3d_rope", "3d_WITH_1d", {"layout": "chunked"})
    assert pe_request("None", None, {}) == pe_request("1D_RoPE", None, {}) != pe_request(None, None, {})
    assert pe_request("3D_RoPE", None, {"layout": "chunked"}) != pe_request("3D_RoPE", None, {})
    assert settings_hash({"b": 1, "a": [1, 2]}) == settings_hash({"a": [1, 2], "b": 1})
    assert settings_hash({**SETTINGS, "seed": 1}) != settings_hash(SETTINGS)
    # a local checkpoint is the same model under any spelling of its path
    (tmp_path / "ckpt").mkdir()
    assert RunKey.build(str(tmp_path / "ckpt"), None, None, {}, SETTINGS) == \
        RunKey.build(f"{tmp_path}/./ckpt/", None, None, {}, SETTINGS)
    assert RunKey.build("tiny-qwen", None, None, {}, SETTINGS).model == "tiny-qwen"
    assert pe_description(None, None, {}) == "None"
    assert pe_description("3D_RoPE", "3D_only", {"theta_3d": 100}) == '3D_RoPE/3D_only {"theta_3d": 100}'


def test_parts_merge_into_one_manifest_latest_try_winning(tmp_path: Path):
    key = RunKey.build("tiny-qwen", None, None, {}, SETTINGS)
    zero, one = ManifestPart(tmp_path, 0, key, "None", "cpu"), ManifestPart(tmp_path, 1, key, "None", "cpu")
    zero.record(Path("scenes/b.ply"), 1.5, error="'b.ply' is not a PLY file")
    one.record(Path("scenes/a.ply"), 2.25, 140, 12)
    retried = zero.record(Path("scenes/b.ply"), 3.0, 150, 20)
    merged = merge_manifest(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [MANIFEST_NAME]  # parts gone, nothing failed
    lines = [json.loads(line) for line in (tmp_path / MANIFEST_NAME).read_text().splitlines()]
    assert [(line["scene"], line["status"], line["rank"], line["new_tokens"]) for line in lines] == \
        [("a.ply", "ok", 1, 12), ("b.ply", "ok", 0, 20)]
    assert merged.entries["b.ply"] == retried and len(merged.from_parts) == 3 and merged.failed == []
    assert [entry.scene for entry in merged.done] == ["a.ply", "b.ply"]
    assert read_manifest(tmp_path) == merged.entries
    assert merge_manifest(tmp_path).from_parts == []  # a second merge finds no parts and writes nothing


def test_a_killed_runs_cut_off_line_is_left_out_and_failures_listed(tmp_path: Path):
    key = RunKey.build("tiny-qwen", None, None, {}, SETTINGS)
    part = ManifestPart(tmp_path, 0, key, "None", "cpu")
    part.record(Path("a.ply"), 1.0, 10, 3)
    part.record(Path("c.ply"), 1.0, error="unexpected failure: boom")
    with part_path(tmp_path, 1).open("w") as handle:
        handle.write('{"scene": "b.ply", "status": "o')  # killed while writing
    merged = merge_manifest(tmp_path)
    assert sorted(merged.entries) == ["a.ply", "c.ply"]
    assert [entry.scene for entry in merged.failed] == ["c.ply"]
    assert (tmp_path / FAILED_LOG).read_text() == "c\tunexpected failure: boom\n"
    assert not part_path(tmp_path, 1).exists()


def test_a_manifest_this_tool_did_not_write_is_refused_and_kept(tmp_path: Path):
    (tmp_path / MANIFEST_NAME).write_text('{"name": "my own notes"}\n')
    with pytest.raises(OutputError, match="is not a spatialvlm run manifest"):
        read_manifest(tmp_path)
    ManifestPart(tmp_path, 0, RunKey("m", "checkpoint", "0" * 12), "None", "cpu").record(Path("a.ply"), 1.0, 1, 1)
    with pytest.raises(OutputError, match="is not a spatialvlm run manifest"):
        merge_manifest(tmp_path)
    assert (tmp_path / MANIFEST_NAME).read_text() == '{"name": "my own notes"}\n'
