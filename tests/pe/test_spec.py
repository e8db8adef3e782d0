"""PESpec: every spelling resolved once, frozen, stored in and read from model configs (ours and the fork's)."""

from __future__ import annotations

import dataclasses

import pytest

from spatialvlm_cli.errors import ConfigError, UnknownPEVariant
from spatialvlm_cli.pe import KEEP, PE_REGISTRY, PESpec, merge_rule_name, variant_name


@pytest.mark.parametrize("spelling", [None, "None", "none", " NONE ", "1D_RoPE", "1d_rope", "stock"])
def test_stock_spellings(spelling) -> None:
    assert variant_name(spelling) == "None"
    spec = PESpec.parse(spelling, "3D_with_1D")
    assert spec.is_stock and spec.label == "None"
    assert spec.config_fields() == {"vlm_pe": None, "pcd_pe_merge_rule": None, "pe": {}}


def test_names_and_rules_in_any_case_and_unknown_ones() -> None:
    spec = PESpec.parse("3d_rope", "3d_WITH_1d", {"layout": "chunked"})
    assert (spec.name, spec.merge_rule, spec.label) == ("3D_RoPE", "3D_with_1D", "3D_RoPE/3D_with_1D")
    assert merge_rule_name(None) == merge_rule_name("none") == "3D_only"
    with pytest.raises(UnknownPEVariant, match="unknown positional encoding 'Fancy'"):
        PESpec.parse("Fancy")
    with pytest.raises(UnknownPEVariant, match="unknown merge rule"):
        PESpec.parse("3D_RoPE", "2D_only")
    with pytest.raises(ConfigError, match="unknown option"):
        PESpec.parse("3D_RoPE", None, {"theta": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "MixedRoPE3D"  # type: ignore[misc]


def test_config_round_trip_and_overrides() -> None:
    class Config:
        pass

    spec = PESpec.parse("MixedRoPE3D", "3D_only", {"init": "random", "theta_3d": 50})
    config = Config()
    for key, value in spec.config_fields().items():
        setattr(config, key, value)
    assert PESpec.from_config(config) == spec
    assert spec.overridden() == spec
    assert spec.overridden(KEEP, "3D_with_1D").options == spec.options
    assert spec.overridden(options={"theta_3d": 70}).options.theta_3d == 70.0
    swapped = spec.overridden("3D_RoPE")  # another variant starts from its own defaults
    assert swapped == PESpec.parse("3D_RoPE", "3D_only")
    assert spec.overridden(None).is_stock


def test_every_variant_comes_from_the_registry() -> None:
    labels = [spec.label for spec in PESpec.every_variant()]
    others = [name for name in PE_REGISTRY if name != "None"]
    assert labels[0] == "None" and len(labels) == 1 + 2 * len(others) == len(set(labels))
    assert {"MixedRoPE3D/3D_with_1D", "3D_Sinusoidal/3D_with_1D"} <= set(labels)


@pytest.mark.parametrize(("fork", "expected"), [
    ({"VLM_PE": "1D_RoPE", "PCD_PE_Merge_Rule": "3D_only"}, "None"),
    ({"VLM_PE": "None"}, "None"),
    ({"VLM_PE": None}, "None"),
    ({"VLM_PE": "3D_RoPE", "PCD_PE_Merge_Rule": "3D_with_1D"}, "3D_RoPE/3D_with_1D"),
    ({"VLM_PE": "MixedRoPE3D", "PCD_PE_Merge_Rule": "3D_only"}, "MixedRoPE3D/3D_only"),
])
def test_a_config_in_the_seed_forks_format_loads(tmp_path, fork: dict, expected: str) -> None:
    import json

    import torch

    from spatialvlm_cli.model import load_spatiallm

    saved = load_spatiallm("tiny-qwen", device="cpu")
    saved.model.save_pretrained(tmp_path)
    saved.tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for ours in ("vlm_pe", "pcd_pe_merge_rule", "pe"):
        config.pop(ours, None)
    (tmp_path / "config.json").write_text(json.dumps({**config, **fork}))
    loaded = load_spatiallm(str(tmp_path), device="cpu")
    assert loaded.model.config.pe_spec.label == expected
    assert loaded.model.position_encoding.name == expected.split("/")[0]
    assert not hasattr(loaded.model.config, "VLM_PE")  # stored in our fields from now on
    if expected == "None":
        ids = torch.tensor([[5, 6, 7]])
        with torch.no_grad():
            assert torch.equal(loaded.model(ids).logits, saved.model(ids).logits)
