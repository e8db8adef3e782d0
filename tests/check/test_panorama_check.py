"""`spatialvlm check --model <panorama preset>`: the panorama position checks through the check table, JSON and
exit code; unfitting variants fail in one line before anything is loaded; broken hooks give exit code 1."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import InternVLForConditionalGeneration
from typer.testing import CliRunner

from spatialvlm_cli.check.panorama import (
    load_check_panorama,
    panorama_family,
    panorama_variants,
    synthetic_panorama,
)
from spatialvlm_cli.cli.app import app
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.panorama.families import FAMILIES

CHECKS = ["image_runs", "text_image_collisions", "rotary_prefill", "rotary_decode", "cache_mask_lengths",
          "cache_equals_recompute"]


@pytest.fixture(scope="module")
def small_pano(tmp_path_factory) -> Path:
    """A 128 x 64 synthetic panorama on disk: tiles render in microseconds."""
    path = tmp_path_factory.mktemp("pano") / "pano.png"
    Image.fromarray(synthetic_panorama(128, 64)).save(path)
    return path


@pytest.mark.parametrize(
    ("preset", "pano_pe"), [("tiny-internvl", "PanoRoPE_1D"), ("tiny-qwen3-vl", "PanoRoPE")]
)
def test_all_variants_pass_with_rows_per_mode(preset, pano_pe, small_pano, tmp_path):
    out = tmp_path / "check.json"
    result = CliRunner().invoke(
        app, ["check", "--model", preset, "--VLM_PE", "all", "--image", str(small_pano), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    modes = ["None", f"{pano_pe}/shared", f"{pano_pe}/cora"]
    assert all(mode in result.output for mode in modes) and "18 checks" in result.output
    payload = json.loads(out.read_text())
    assert payload["passed"] is True and payload["counts"] == {"total": 18, "passed": 18, "failed": 0}
    assert payload["model"] == preset and payload["scene"] == str(small_pano)
    rows = payload["results"]
    assert [row["mode"] for row in rows] == [mode for mode in modes for _ in CHECKS]
    assert [row["name"] for row in rows] == CHECKS * 3
    assert {(row["layer"], row["checkpoint_no"]) for row in rows} == {(None, None)}
    collisions = {row["mode"]: row["detail"] for row in rows if row["name"] == "text_image_collisions"}
    # cora shifts text after the image back into the image ids (a warning, so it passes); the others do not.
    assert collisions["None"].startswith("0 text tokens") and collisions[f"{pano_pe}/shared"].startswith("0 text")
    assert not collisions[f"{pano_pe}/cora"].startswith("0 text")


def test_unfitting_variant_is_one_error_line():
    result = CliRunner().invoke(app, ["check", "--model", "tiny-qwen2.5-vl", "--VLM_PE", "PanoRoPE_1D"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --VLM_PE PanoRoPE_1D does not fit a qwen2_5_vl model")


def test_ids_that_never_reach_the_model_exit_1(small_pano, tmp_path, monkeypatch):
    forward = InternVLForConditionalGeneration.forward

    @functools.wraps(forward)
    def drop_position_ids(self, *args, position_ids=None, **kwargs):  # a model that ignores the ids it is given
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(InternVLForConditionalGeneration, "forward", drop_position_ids)
    out = tmp_path / "check.json"
    result = CliRunner().invoke(
        app, ["check", "-m", "tiny-internvl", "--VLM_PE", "PanoRoPE_1D", "-i", str(small_pano), "--json", str(out)]
    )
    assert result.exit_code == 1, result.output
    failed = {row["name"] for row in json.loads(out.read_text())["results"] if not row["passed"]}
    assert failed == {"rotary_prefill", "rotary_decode"}


def test_detection_variants_and_fallback_image(tmp_path, monkeypatch):
    assert panorama_family("tiny-gemma3") is FAMILIES["gemma3"]
    assert panorama_family("tiny-qwen") is None  # the point-cloud preset keeps the point-cloud checks
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    assert panorama_family(str(checkpoint)) is FAMILIES["qwen3_vl"]
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "spatiallm_qwen"}))
    assert panorama_family(str(checkpoint)) is None

    qwen = FAMILIES["qwen2_5_vl"]
    assert panorama_variants(qwen, None) == [(None, "shared")] == panorama_variants(qwen, "None")
    assert panorama_variants(qwen, "ALL") == [(None, "shared"), ("PanoRoPE", "shared"), ("PanoRoPE", "cora")]
    with pytest.raises(ConfigError, match="point-cloud encoding"):
        panorama_variants(qwen, "3D_RoPE")

    monkeypatch.setattr("spatialvlm_cli.check.panorama.default_panorama_path", lambda: None)
    fallback = load_check_panorama()
    assert "synthetic" in fallback.source and fallback.panorama.pixels.shape == (128, 256, 3)
    pixels = fallback.panorama.pixels.astype(float)
    # yaw bands wrap around: the seam columns differ no more than neighbouring columns inside the image
    seam = np.abs(pixels[:, 0] - pixels[:, -1]).mean()
    inner = np.abs(pixels[:, 128] - pixels[:, 127]).mean()
    assert seam < 1.5 * inner + 5
