"""`spatialvlm check`: every variant passes on the tiny preset; a broken rotation and a forgotten decode-mask
extension make the right checkpoints fail with messages that name the problem."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

import spatialvlm_cli.check.model_checks as model_checks
from spatialvlm_cli.check import (
    ALL_VARIANTS,
    CHECKPOINT_NAMES,
    CHECKPOINTS,
    Check,
    Invariant,
    Measurement,
    check_variants,
    run_checks,
    verbose_prefill,
)
from spatialvlm_cli.check.model_checks import MODEL_CHECKS
from spatialvlm_cli.check.panorama import PANORAMA_CHECKS
from spatialvlm_cli.check.scene import load_check_scene, synthetic_room
from spatialvlm_cli.cli.check import check_command, parse_layers
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.pe import PESpec
from spatialvlm_cli.pe.rope3d import RoPE3D
from spatialvlm_cli.preprocess import prepare_point_cloud

WHOLE_MODEL = {"point embeddings", "point embeddings (3D_Sinusoidal addition)", "prefill vs decode detection",
               "cache length == mask length", "cached decode == recomputation"}


def _inputs(loaded, cloud):
    rows = torch.from_numpy(prepare_point_cloud(cloud, loaded.num_bins).rows)
    return loaded.processor([rows])


def _failed(results):
    return {(r.checkpoint_no, r.name): r.detail for r in results if not r.passed}


@pytest.mark.parametrize("preset", ["tiny-qwen", "tiny-llama"])
def test_every_variant_passes(preset, small_room):
    results = check_variants(preset, small_room, ALL_VARIANTS)
    assert _failed(results) == {}
    modes = ["None"] + [f"{name}/{rule}" for name in ("3D_RoPE", "MixedRoPE3D", "3D_Sinusoidal")
                        for rule in ("3D_only", "3D_with_1D")]
    assert sorted({r.mode for r in results}) == sorted(modes)
    for mode in modes:
        mine = [r for r in results if r.mode == mode]
        # 2 layers x 9 checkpoints, numbered 1..9 per layer, plus the whole-model checks
        assert sorted((r.layer, r.checkpoint_no) for r in mine if r.layer is not None) == [
            (layer, number) for layer in (0, 1) for number in range(1, 10)]
        assert {r.name for r in mine if r.layer is None} <= WHOLE_MODEL
        assert len([r for r in mine if r.layer is None]) == 4
        assert {r.name for r in mine if r.checkpoint_no} == set(CHECKPOINT_NAMES.values())


def test_details_name_shapes_and_spans(small_room):
    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe="3D_RoPE", merge_rule="3D_with_1D")
    inputs = _inputs(loaded, small_room)
    results = run_checks(loaded, inputs, layers=[1])
    points = int((inputs["input_ids"] == loaded.model.config.point_token_id).sum())
    length = inputs["input_ids"].shape[1]
    by_number = {r.checkpoint_no: r for r in results if r.layer == 1}
    assert set(by_number) == set(range(1, 10)) and {r.layer for r in results} == {1, None}
    assert f"q (1, 4, {length}, 16)" in by_number[1].detail and "Hq=4 Hkv=2" in by_number[1].detail
    start = int(torch.nonzero(inputs["input_ids"][0] == loaded.model.config.point_start_token_id)[0, 0])
    assert f"point spans [[({start + 1}, {start + 1 + points})]]" in by_number[2].detail
    assert f"{points} point tokens == {points} coordinates" in by_number[2].detail
    # 3D_with_1D on head_dim 16: 4 of 8 pairs keep the 1-D position, 4 carry x, y, z
    assert "4 spatial pairs" in by_number[4].detail and "1-D pairs (4)" in by_number[8].detail


def _gptj_tables(self, stock_cos, stock_sin, point_mask, coords, attention_scaling=1.0):
    """The seeds' defect: angles duplicated GPT-J style [a0, a0, a1, a1, ...] but applied with rotate_half."""
    axis, frequency, spatial = self.pair_tables(coords.device)
    angles = coords.index_select(-1, axis) * frequency
    doubled = angles.repeat_interleave(2, dim=-1)
    cos, sin = (doubled.cos() * attention_scaling).to(stock_cos.dtype), (doubled.sin() * attention_scaling).to(
        stock_sin.dtype)
    select = point_mask[..., None] & spatial
    return torch.where(select, cos, stock_cos), torch.where(select, sin, stock_sin)


def test_gptj_duplicated_frequencies_fail(monkeypatch, small_room):
    monkeypatch.setattr(RoPE3D, "tables_from_units", _gptj_tables)
    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe="3D_RoPE", merge_rule="3D_only")
    results = run_checks(loaded, _inputs(loaded, small_room), layers=[0])
    failed = _failed(results)
    assert {number for number, _ in failed} >= {2, 4, 5, 7, 9}
    norms = next(r for r in results if r.checkpoint_no == 5)
    # the verdict's numbers, then its text: only the broken invariant speaks (the kept shapes are not repeated)
    error = norms.measured["rotation_preserves_norms"]["error"]
    assert error > 1e-4 and f"norms change by up to {error:.2e}" in norms.detail
    assert norms.measured["rotation_keeps_shape_and_dtype"]["q"].startswith("(1, 4, ") and "q (" not in norms.detail
    assert (1, CHECKPOINT_NAMES[1]) not in failed and (6, CHECKPOINT_NAMES[6]) not in failed
    assert "GPT-J-duplicated" in failed[(2, CHECKPOINT_NAMES[2])]
    assert "not a rotation" in failed[(5, CHECKPOINT_NAMES[5])]
    assert "not a function of relative position" in failed[(9, CHECKPOINT_NAMES[9])]
    # text rows are untouched by the defect: the 1-D checkpoint keeps passing
    assert (8, CHECKPOINT_NAMES[8]) not in failed


def test_forgotten_mask_extension_fails(monkeypatch, small_room):
    monkeypatch.setattr(model_checks, "extend_attention_mask", lambda mask: mask)
    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe="3D_RoPE")
    results = run_checks(loaded, _inputs(loaded, small_room), layers=[0], decode_steps=2)
    failed = _failed(results)
    message = failed[(None, "cache length == mask length")]
    length = _inputs(loaded, small_room)["input_ids"].shape[1]
    assert f"forward 1 (0: prefill): attention mask has {length} columns but the KV cache holds {length + 1}" in message
    assert "not extended" in message
    cache = next(r for r in results if r.name == "cache length == mask length")
    # the measured numbers behind the text: both decode steps are one column short, the prefill is not
    assert cache.measured["mask_length_equals_cache_length"] == {
        "forward": 1, "mask": length, "cache": length + 1, "bad": 2, "steps": 2, "lengths": [length] * 3}
    assert (None, "cached decode == recomputation") in failed
    assert not any(number for number, _ in failed)  # the nine prefill checkpoints are not to blame


def test_verbose_prefill_prints_in_generate_worker_thread(small_room):
    from rich.console import Console

    from spatialvlm_cli.generation import GenerationSettings, stream_generate

    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe="MixedRoPE3D")
    console = Console(record=True, width=300)
    hooks_before = [len(layer.self_attn._forward_pre_hooks) for layer in loaded.model.model.layers]
    settings = GenerationSettings(max_new_tokens=2, greedy=True)
    with verbose_prefill(loaded.model, console) as results:
        stream_generate(loaded.model, loaded.tokenizer, _inputs(loaded, small_room), settings)
    text = console.export_text()
    assert len(results) == 18 and all(r.passed for r in results)
    for number, name in CHECKPOINT_NAMES.items():
        assert text.count(f"[CHECKPOINT {number}] {name}: PASS") == 2
    # outside the block none of our hooks is left on the model (MixedRoPE3D keeps its own layer slicers)
    assert [len(layer.self_attn._forward_pre_hooks) for layer in loaded.model.model.layers] == hooks_before
    assert not any(layer.self_attn._forward_hooks for layer in loaded.model.model.layers)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command(name="check")(check_command)
    app.command(name="noop")(lambda: None)
    return app


def test_cli_all_variants_json_and_exit_code(tmp_path, monkeypatch, small_room):
    monkeypatch.setattr("spatialvlm_cli.check.scene.synthetic_room", lambda: small_room)
    monkeypatch.setattr("spatialvlm_cli.check.scene.default_scene_path", lambda: None)
    out = tmp_path / "check.json"
    result = CliRunner().invoke(_app(), ["check", "--VLM_PE", "all", "--layers", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "all passed" in result.output and "synthetic" in result.output
    payload = json.loads(out.read_text())
    assert payload["passed"] is True and payload["counts"]["failed"] == 0
    assert payload["counts"]["total"] == len(PESpec.every_variant()) * (9 + 4) == 7 * 13
    assert {r["layer"] for r in payload["results"]} == {0, None}
    names = {check.name: {invariant.name for invariant in check.invariants} for check in (*CHECKPOINTS, *MODEL_CHECKS)}
    for row in payload["results"]:
        assert set(row) == {"mode", "layer", "checkpoint_no", "name", "passed", "measured", "detail"}
        assert row["measured"] and set(row["measured"]) <= names[row["name"].removesuffix(" (3D_Sinusoidal addition)")]
    translation = [r["measured"].get("qk_invariant_to_common_translation") for r in payload["results"]
                   if r["checkpoint_no"] == 9]
    # measured only where it applies: the variants that rotate point tokens by 3-D angles (3D_RoPE, MixedRoPE3D)
    assert sum(found is not None for found in translation) == 4 and all(
        found["drift"] < 1e-3 for found in translation if found is not None)


def test_config_file_sets_flags_and_the_command_line_wins(tmp_path, monkeypatch, small_room):
    monkeypatch.setattr("spatialvlm_cli.check.scene.synthetic_room", lambda: small_room)
    monkeypatch.setattr("spatialvlm_cli.check.scene.default_scene_path", lambda: None)
    out = tmp_path / "check.json"
    config = tmp_path / "check.yaml"
    config.write_text(f"VLM_PE: MixedRoPE3D\nPCD_PE_Merge_Rule: 3D_with_1D\nlayers: '0,1'\njson: {out}\n")
    result = CliRunner().invoke(_app(), ["check", "--config", str(config), "--layers", "1"])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["layers"] == "1" and {r["layer"] for r in payload["results"]} == {1, None}
    assert {r["mode"] for r in payload["results"]} == {"MixedRoPE3D/3D_with_1D"}
    config.write_text("layer: 0\n")
    result = CliRunner().invoke(_app(), ["check", "--config", str(config)])
    assert isinstance(result.exception, ConfigError) and "unknown key 'layer'" in str(result.exception)


def _toy_check() -> Check[float]:
    def is_positive(x: float) -> Measurement:
        return Measurement(x > 0, {"x": x})

    def is_small(x: float) -> Measurement | None:
        return None if x < 0 else Measurement(x < 10, {"x": x, "limit": 10})

    return Check(3, "toy", (Invariant(is_positive, "{x:g} > 0", "{x:g} <= 0"),
                            Invariant(is_small, "{x:g} < {limit}", "{x:g} >= {limit}")))


@pytest.mark.parametrize(("x", "passed", "measured", "detail"), [
    (2.0, True, {"is_positive": {"x": 2.0}, "is_small": {"x": 2.0, "limit": 10}}, "2 > 0; 2 < 10"),
    (20.0, False, {"is_positive": {"x": 20.0}, "is_small": {"x": 20.0, "limit": 10}}, "20 >= 10"),
    (-1.0, False, {"is_positive": {"x": -1.0}}, "-1 <= 0"),  # is_small does not apply: not measured, not shown
])
def test_a_check_judges_its_invariants_into_one_result(x, passed, measured, detail):
    result = _toy_check().judge(x, "mode", layer=4)
    assert (result.mode, result.layer, result.checkpoint_no, result.name) == ("mode", 4, 3, "toy")
    assert (result.passed, result.measured, result.detail) == (passed, measured, detail)
    assert _toy_check().judge(x, "mode", name="renamed").name == "renamed"


def test_tables_keep_the_seeds_numbers_and_name_each_property_once():
    assert [(check.number, check.name) for check in CHECKPOINTS] == [
        (1, "Q/K/V after projection and head reshape"), (2, "3-D RoPE data (cos/sin, point-token spans)"),
        (3, "point-token extraction"), (4, "after 3-D RoPE on point tokens"), (5, "full Q/K after 3-D RoPE"),
        (6, "1-D RoPE data"), (7, "point tokens kept"), (8, "after 1-D RoPE on all tokens"),
        (9, "final Q/K (points 3-D, text 1-D)")]
    assert {check.number: check.name for check in CHECKPOINTS} == CHECKPOINT_NAMES
    invariants = [invariant.name for check in (*CHECKPOINTS, *MODEL_CHECKS, *PANORAMA_CHECKS)
                  for invariant in check.invariants]
    assert len(invariants) == len(set(invariants))
    assert {check.number for check in (*MODEL_CHECKS, *PANORAMA_CHECKS)} == {None}


def test_cli_exit_code_1_and_verbose_on_failure(tmp_path, monkeypatch, small_room):
    monkeypatch.setattr(RoPE3D, "tables_from_units", _gptj_tables)
    path = tmp_path / "room.ply"
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(small_room.points))
    cloud.colors = o3d.utility.Vector3dVector(small_room.colors)
    o3d.io.write_point_cloud(str(path), cloud)
    result = CliRunner().invoke(_app(), ["check", "--vlm-pe", "3D_RoPE", "--pcd-pe-merge-rule", "3D_only",
                                         "-p", str(path), "--layers", "1", "--verbose"])
    assert result.exit_code == 1
    assert "[CHECKPOINT 5] full Q/K after 3-D RoPE: FAIL" in result.output
    assert "[CHECKPOINT 1] Q/K/V after projection and head reshape: PASS" in result.output


def test_layers_option_and_bad_layers(small_room):
    assert parse_layers("all") is None and parse_layers("5,0,5") == [0, 5]
    with pytest.raises(ConfigError):
        parse_layers("first")
    loaded = load_spatiallm("tiny-qwen", device="cpu")
    with pytest.raises(ConfigError, match="do not exist"):
        run_checks(loaded, _inputs(loaded, small_room), layers=[7])


def test_default_scene_falls_back_to_synthetic(monkeypatch):
    monkeypatch.setattr("spatialvlm_cli.check.scene.default_scene_path", lambda: None)
    scene = load_check_scene()
    assert "synthetic" in scene.source
    room = synthetic_room()
    assert room.points.shape == scene.cloud.points.shape
    # six planes of a 4 x 3 x 2.5 m box: extent matches up to the jitter
    assert abs(room.points[:, 0].max() - room.points[:, 0].min() - 4.0) < 0.05
