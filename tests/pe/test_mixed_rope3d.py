"""MixedRoPE3D: parameter names and shapes, save/load through transformers, seed checkpoints, initialisations."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2ForCausalLM

from spatialvlm_cli.model.attention import use_point_attention
from spatialvlm_cli.pe import LearnedParameters, build_position_encoding
from spatialvlm_cli.pe.mixed_rope3d import fork_key_mapping


class PELM(Qwen2ForCausalLM):
    """A stock causal LM carrying a position encoding the way the SpatialLM model does."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.position_encoding = build_position_encoding(**config.pe, lm_config=config)
        use_point_attention(self.model)

    def _init_weights(self, module) -> None:
        super()._init_weights(module)
        if isinstance(module, LearnedParameters):
            module.reset_parameters()


def pe_model(lm, options: dict | None = None, rule: str = "3D_with_1D") -> PELM:
    stock = lm("qwen2-hd16")
    stock.config.pe = {"name": "MixedRoPE3D", "merge_rule": rule, "options": options or {}}
    model = PELM(stock.config).eval()
    model.load_state_dict(stock.state_dict(), strict=False)
    return model


@pytest.mark.parametrize(("rule", "bins"), [("3D_with_1D", 4), ("3D_only", 8)])
def test_parameter_names_and_shapes(lm, rule: str, bins: int) -> None:
    tied = pe_model(lm, rule=rule)
    shapes = {k: tuple(v.shape) for k, v in tied.state_dict().items() if k.startswith("position_encoding.")}
    assert shapes == {f"position_encoding.layers.{i}.{name}": shape for i in range(2)
                      for name, shape in (("freqs_3d_kv", (3, 2, bins)), ("axial_weights_3d_kv", (2, bins, 3)))}
    seed = pe_model(lm, {"param_layout": "seed-compatible"}, rule=rule)
    layer = seed.position_encoding.layers[1]
    assert (layer.freqs_3d_q.shape, layer.axial_weights_3d_q.shape) == ((3, 4, bins), (4, bins, 3))
    assert (layer.freqs_3d_kv.shape, layer.axial_weights_3d_kv.shape) == ((3, 2, bins), (2, bins, 3))


def point_logits(model, scene, decode) -> torch.Tensor:
    return decode["cached"](model, model.position_encoding, scene(model, [6, 9]), 2)[1]


@pytest.mark.parametrize("layout", ["tied", "seed-compatible"])
def test_trained_parameters_survive_save_and_load(lm, scene, decode, tmp_path: Path, layout: str) -> None:
    model = pe_model(lm, {"param_layout": layout})
    with torch.no_grad():  # stand-in for training
        for parameter in model.position_encoding.parameters():
            parameter.mul_(1.0 + 0.2 * torch.randn_like(parameter))
    model.save_pretrained(tmp_path)
    loaded, info = PELM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for (name, before), (_, after) in zip(model.position_encoding.state_dict().items(),
                                          loaded.position_encoding.state_dict().items(), strict=True):
        assert torch.equal(before, after), name
    assert torch.equal(point_logits(model, scene, decode), point_logits(loaded.eval(), scene, decode))


def test_parameters_missing_from_a_checkpoint_get_the_default_init(lm, tmp_path: Path) -> None:
    stock = lm("qwen2-hd16")
    stock.save_pretrained(tmp_path)  # a checkpoint trained without MixedRoPE3D
    config = type(stock.config).from_pretrained(tmp_path)
    config.pe = {"name": "MixedRoPE3D", "merge_rule": "3D_with_1D", "options": {}}
    loaded, info = PELM.from_pretrained(tmp_path, config=config, output_loading_info=True)
    assert len(info["missing_keys"]) == 4
    fresh = pe_model(lm)  # built eagerly, not on the meta device
    for name, value in fresh.position_encoding.state_dict().items():
        assert torch.equal(loaded.position_encoding.state_dict()[name], value), name


def test_seed_checkpoints_load_with_the_key_mapping(lm, tmp_path: Path) -> None:
    stock = lm("qwen2-hd16")
    stock.config.pe = {"name": "MixedRoPE3D", "merge_rule": "3D_with_1D",
                       "options": {"param_layout": "seed-compatible"}}
    stock.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    seed_tensors = {}
    for layer in range(2):  # where the fork kept them: on each attention layer
        for name, shape in (("freqs_3d_q", (3, 4, 4)), ("axial_weights_3d_q", (4, 4, 3)),
                            ("freqs_3d_kv", (3, 2, 4)), ("axial_weights_3d_kv", (2, 4, 3))):
            seed_tensors[f"model.layers.{layer}.self_attn.{name}"] = torch.randn(shape)
    save_file({**weights, **seed_tensors}, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded, info = PELM.from_pretrained(tmp_path, key_mapping=fork_key_mapping(), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for key, value in seed_tensors.items():
        layer, name = key.split(".")[2], key.split(".")[-1]
        assert torch.equal(getattr(loaded.position_encoding.layers[int(layer)], name), value)


def init_angles(lm, init: str, coords: torch.Tensor) -> torch.Tensor:
    """Angles (L, Hkv, N, F) in radians of the spatial pairs at `coords` (N, 3), right after initialisation."""
    pe = build_position_encoding("MixedRoPE3D", "3D_only", lm("qwen2-hd16").config, {"init": init})
    directions = torch.stack([layer.directions()[0] for layer in pe.layers]).detach()  # (L, Hkv, F, 3)
    return torch.einsum("lhfa,na->lhnf", directions, coords)


# cells with equal x + y + z: three with sum 1, two with sum 6
SAME_SUM = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 3.0, 1.0], [3.0, 1.0, 2.0]])


@pytest.mark.parametrize("init", ["axial", "random"])
def test_initialisations_tell_distinct_cells_apart(lm, init: str) -> None:
    angles = init_angles(lm, init, SAME_SUM)
    for a, b in itertools.combinations(range(len(SAME_SUM)), 2):
        difference = (angles[:, :, a] - angles[:, :, b]).abs().amax(dim=-1)  # (L, Hkv) over frequency bins
        assert difference.min() > 0.3, (a, b)


def test_the_seed_initialisation_is_degenerate(lm) -> None:
    # the fork (document 002): same base frequency on x, y, z and weights ~1 -> angle ~ freq * (x + y + z)
    angles = init_angles(lm, "seed", SAME_SUM)
    for group in ([0, 1, 2], [3, 4]):  # x + y + z = 1 and = 6
        assert (angles[:, :, group] - angles[:, :, group[:1]]).abs().max() < 0.1


def test_random_init_is_a_rotated_axial_rope_per_head(lm) -> None:
    pe = build_position_encoding("MixedRoPE3D", "3D_only", lm("qwen2-hd16").config, {"init": "random"})
    directions = pe.layers[0].directions()[0].detach()  # (Hkv, F, 3)
    magnitudes = torch.tensor(pe.spatial_frequencies)
    torch.testing.assert_close(directions.norm(dim=-1), magnitudes.expand(2, -1))
    assert not torch.allclose(directions[0], directions[1])  # heads differ
    again = build_position_encoding("MixedRoPE3D", "3D_only", lm("qwen2-hd16").config, {"init": "random"})
    assert torch.equal(again.layers[0].freqs_3d_kv, pe.layers[0].freqs_3d_kv)  # reproducible from init_seed


def test_frequencies_are_learnable(lm, scene, point_forward) -> None:
    model = pe_model(lm, {"init": "random"})
    prompt = scene(model, [6])
    out = point_forward(model, model.position_encoding, prompt.embeds, prompt.positions,
                        attention_mask=prompt.attention_mask)
    out.logits.square().mean().backward()
    for layer in model.position_encoding.layers:
        assert layer.freqs_3d_kv.grad.abs().sum() > 0 and layer.axial_weights_3d_kv.grad.abs().sum() > 0


@pytest.mark.parametrize("rule", ["3D_only", "3D_with_1D"])
@pytest.mark.parametrize("layout", ["interleaved", "chunked"])
def test_axial_init_reproduces_3d_rope_exactly(lm, rule: str, layout: str) -> None:
    model = lm("llama-hd24")
    rope = build_position_encoding("3D_RoPE", rule, model.config, {"layout": layout})
    mixed = build_position_encoding("MixedRoPE3D", rule, model.config, {"layout": layout})
    position_ids = torch.arange(10)[None].expand(2, -1)
    point_mask = torch.zeros(2, 10, dtype=torch.bool)
    point_mask[:, 2:8] = True
    coords = torch.randint(0, 30, (2, 10, 3)).float()
    stock_cos, stock_sin = model.model.rotary_emb(torch.zeros(2, 10, 1), position_ids)
    cos, sin = rope.tables_from_units(stock_cos, stock_sin, point_mask, coords)
    tables = mixed.tables_from_units(stock_cos, stock_sin, point_mask, coords)
    for layer in range(2):
        cos_m, sin_m = tables.for_layer(layer)
        assert cos_m.q is cos_m.k  # tied: query heads share their key head's table
        half = cos.shape[-1] // 2  # per-head tables hold one value per pair
        assert torch.equal(cos_m.k, cos[:, None, :, :half].expand_as(cos_m.k))
        assert torch.equal(sin_m.k, sin[:, None, :, :half].expand_as(sin_m.k))
