"""The shared preset reader (`spatialvlm_cli/presets.py`): one YAML format for point-cloud and panorama presets."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from spatialvlm_cli.errors import ConfigError, ModelLoadError
from spatialvlm_cli.model import presets as point_cloud
from spatialvlm_cli.panorama import presets as panorama
from spatialvlm_cli.panorama.families import FAMILIES
from spatialvlm_cli.presets import PANORAMA, POINT_CLOUD, preset_kind, read_preset_file, shipped_presets


def _shipped_text(name: str) -> str:
    return files("spatialvlm_cli").joinpath(f"assets/presets/{name}.yaml").read_text(encoding="utf-8")


def _read_panorama_file(path: Path) -> dict:
    return read_preset_file(str(path), panorama.PRESET_KEYS, required=panorama.REQUIRED_KEYS, kind=PANORAMA)


def test_presets_are_listed_by_kind() -> None:
    assert shipped_presets(PANORAMA) == {"tiny-gemma3": "gemma3", "tiny-internvl": "internvl",
                                         "tiny-qwen2.5-vl": "qwen2_5_vl", "tiny-qwen3-vl": "qwen3_vl"}
    assert {"tiny-qwen", "tiny-llama", "spatiallm1.1-qwen-0.5b-shape"} <= set(shipped_presets(POINT_CLOUD))
    assert not set(shipped_presets(PANORAMA)) & set(shipped_presets(POINT_CLOUD))
    assert preset_kind("spatiallm_llama") == POINT_CLOUD and preset_kind("gemma3") == PANORAMA


def test_every_family_has_a_panorama_preset() -> None:
    assert set(shipped_presets(PANORAMA).values()) == set(FAMILIES)


@pytest.mark.parametrize("name", list(shipped_presets(PANORAMA)))
def test_shipped_panorama_presets_are_valid(name: str) -> None:
    preset = panorama.read_preset(name)
    assert set(panorama.REQUIRED_KEYS) <= set(preset) <= set(panorama.PRESET_KEYS)
    assert preset["description"] and isinstance(preset["config"]["text_config"], dict)
    assert set(preset["token_ids"].values()) <= set(FAMILIES[preset["model_type"]].tiny_tokens.tokens)


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(_shipped_text("tiny-gemma3") + "image_procesor: Gemma3ImageProcessor\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key.*image_procesor.*valid: description"):
        _read_panorama_file(bad)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda text: text.replace("seed: 0", "seed: zero"), "seed must be an integer, got 'zero'"),
        (lambda text: text.replace("image_processor: Gemma3ImageProcessor\n", ""), "lacks image_processor"),
        (lambda text: text.replace("model_type: gemma3\n", ""), "lacks model_type"),
        (lambda text: "- a list\n", "must be a mapping of keys to values"),
        (lambda text: "model_type: [\n", "not valid YAML"),
    ],
)
def test_panorama_values_are_checked(tmp_path: Path, change, fragment: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(change(_shipped_text("tiny-gemma3")), encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        _read_panorama_file(bad)


def test_a_preset_of_the_other_kind_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="'tiny-internvl' is a panorama preset"):
        point_cloud.read_preset("tiny-internvl")
    with pytest.raises(ModelLoadError, match="unknown panorama preset 'tiny-qwen'"):
        panorama.read_preset("tiny-qwen")
    with pytest.raises(ModelLoadError, match="'tiny-qwen' is a point-cloud preset"):
        read_preset_file("tiny-qwen", panorama.PRESET_KEYS, required=(), kind=PANORAMA)


def test_missing_presets_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no preset named 'tiny-nothing'; point-cloud presets: .*tiny-qwen"):
        point_cloud.read_preset("tiny-nothing")
    with pytest.raises(ModelLoadError, match="does not exist"):
        point_cloud.read_preset(str(tmp_path / "absent.yaml"))


def test_token_ids_must_name_a_special_token() -> None:
    preset = panorama.read_preset("tiny-internvl")
    preset["token_ids"] = {"image_token_id": "<image>"}
    tokens = FAMILIES["internvl"].tiny_tokens
    with pytest.raises(ConfigError, match="image_token_id='<image>' is not a special token"):
        panorama.preset_config_fields(preset, "tiny-internvl", panorama.build_tokenizer(tokens), tokens)
