"""Registry, name handling, typed options round trip and build-time validation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from spatialvlm_cli.errors import ConfigError, UnknownPEVariant
from spatialvlm_cli.pe import PE_REGISTRY, build_position_encoding, fork_options, register, variant_name
from spatialvlm_cli.pe.mixed_rope3d import MixedRoPE3DOptions
from spatialvlm_cli.pe.rope3d import RoPE3DOptions


def test_registry_has_the_cli_variants() -> None:
    assert set(PE_REGISTRY) == {"None", "3D_RoPE", "MixedRoPE3D", "3D_Sinusoidal"}
    for name, cls in PE_REGISTRY.items():
        assert cls.name == name


@pytest.mark.parametrize("spelling", [None, "None", "none", "NONE", " None "])
def test_none_in_any_spelling_is_the_stock_encoding(spelling: str | None) -> None:
    # fork bug: the CLI string "None" was not None and switched the custom attention on
    assert variant_name(spelling) == "None"


def test_unknown_names_list_the_valid_ones(lm_config) -> None:
    with pytest.raises(UnknownPEVariant, match=r"3D_RoPE, 3D_Sinusoidal, MixedRoPE3D, None"):
        build_position_encoding("CCA_2DProj", "3D_only", lm_config("qwen2-hd16"))
    with pytest.raises(UnknownPEVariant, match=r"3D_only, 3D_with_1D"):
        build_position_encoding("3D_RoPE", "4D", lm_config("qwen2-hd16"))
    assert variant_name("3d_rope") == "3D_RoPE"


def test_register_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="twice"):
        register("3d_rope")(type("Clash", (), {}))


@pytest.mark.parametrize("name", ["None", "3D_RoPE", "MixedRoPE3D", "3D_Sinusoidal"])
@pytest.mark.parametrize("rule", ["3D_only", "3D_with_1D"])
def test_spec_round_trips_through_json(lm_config, name: str, rule: str) -> None:
    config = lm_config("llama-hd24")
    pe = build_position_encoding(name, rule.lower(), config, fork_options(name))
    stored = json.loads(json.dumps(pe.spec()))  # what PretrainedConfig.to_json_string would keep
    rebuilt = build_position_encoding(**stored, lm_config=config)
    assert rebuilt.spec() == pe.spec() and rebuilt.options == pe.options and rebuilt.merge_rule == rule


def test_fork_options() -> None:
    assert fork_options("3D_RoPE") == {"theta_3d": 10000.0, "layout": "chunked", "coord_unit": "unit",
                                       "axis_pairs": None, "pairs_1d": None}
    mixed = MixedRoPE3DOptions.from_dict(fork_options("MixedRoPE3D"))
    assert (mixed.theta_3d, mixed.init, mixed.param_layout) == (100.0, "seed", "seed-compatible")
    assert fork_options(None) == {}


def test_options_are_typed(lm_config) -> None:
    config = lm_config("qwen2-hd16")
    options = RoPE3DOptions.from_dict({"theta_3d": 50, "axis_pairs": [2, 3, 3], "layout": "chunked"})
    assert options.theta_3d == 50.0 and isinstance(options.theta_3d, float) and options.axis_pairs == (2, 3, 3)
    for bad, message in [({"theta": 5.0}, "unknown option"), ({"layout": "diagonal"}, "not one of"),
                         ({"theta_3d": "big"}, "number"), ({"theta_3d": 1.0}, "greater than 1"),
                         ({"axis_pairs": [1.5, 3, 3]}, "integers"), ({"pairs_1d": True}, "integer")]:
        with pytest.raises(ConfigError, match=message):
            build_position_encoding("3D_RoPE", "3D_with_1D", config, bad)
    with pytest.raises(ConfigError, match="not options of"):
        build_position_encoding("3D_Sinusoidal", "3D_only", config, options)


def test_bad_model_configs_fail_at_build(lm_config) -> None:
    # transformers' own validation already refuses odd head_dim; configs built elsewhere must be refused too
    sizes = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1, head_dim=16)
    odd = SimpleNamespace(**{**sizes, "head_dim": 15})
    with pytest.raises(ConfigError, match="head_dim 15 is odd"):
        build_position_encoding("3D_RoPE", "3D_only", odd)
    with pytest.raises(ConfigError, match="does not add up"):
        build_position_encoding("MixedRoPE3D", "3D_with_1D", lm_config("qwen2-hd16"), {"axis_pairs": [2, 2, 2]})
    with pytest.raises(ConfigError, match="not a multiple"):
        build_position_encoding("MixedRoPE3D", "3D_only", SimpleNamespace(**{**sizes, "num_attention_heads": 3}))
    with pytest.raises(ConfigError, match="odd"):
        build_position_encoding("3D_Sinusoidal", "3D_only", SimpleNamespace(**{**sizes, "hidden_size": 63}))
    partial = SimpleNamespace(**sizes, rope_parameters={"partial_rotary_factor": 0.5})
    with pytest.raises(ConfigError, match="partial rotary"):
        build_position_encoding("3D_RoPE", "3D_only", partial)
