"""Parameter names and shapes of a full-size SpatialLM1.1-Qwen-0.5B-shaped model, built on the meta device.

The encoder's own names (`point_backbone.*` below the top level) are tested in tests/encoders; here: the top-level
layout a real checkpoint's safetensors use, and the decoder/projector shapes.
"""

from __future__ import annotations

import pytest
import torch

from spatialvlm_cli.model import SpatialLMQwenForCausalLM
from spatialvlm_cli.model.presets import SPATIALLM_1_1_SHAPE, preset_config, read_preset
from spatialvlm_cli.model.tokenizer import load_bundled_tokenizer


def _meta_model(**changes) -> SpatialLMQwenForCausalLM:
    preset = read_preset(SPATIALLM_1_1_SHAPE)
    preset.update(changes)
    config = preset_config(preset, load_bundled_tokenizer("qwen"))
    with torch.device("meta"):
        return SpatialLMQwenForCausalLM(config)


@pytest.fixture(scope="module")
def shapes() -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in _meta_model().state_dict().items()}


def test_top_level_names(shapes):
    assert {name.split(".")[0] for name in shapes} == {"model", "lm_head", "point_backbone", "point_proj"}
    assert not any(name.startswith("position_encoding") for name in shapes)  # VLM_PE None adds nothing


def test_decoder_is_qwen2_5_0_5b(shapes):
    assert shapes["model.embed_tokens.weight"] == (151936, 896)
    assert shapes["lm_head.weight"] == (151936, 896)
    assert shapes["model.norm.weight"] == (896,)
    layers = {int(name.split(".")[2]) for name in shapes if name.startswith("model.layers.")}
    assert layers == set(range(24))
    assert shapes["model.layers.23.self_attn.q_proj.weight"] == (896, 896)
    assert shapes["model.layers.23.self_attn.q_proj.bias"] == (896,)
    assert shapes["model.layers.23.self_attn.k_proj.weight"] == (128, 896)  # 2 kv heads x 64
    assert shapes["model.layers.23.self_attn.o_proj.weight"] == (896, 896)
    assert shapes["model.layers.0.mlp.gate_proj.weight"] == (4864, 896)
    decoder = sum(torch.Size(s).numel() for n, s in shapes.items() if n.startswith("model."))
    assert decoder == 494_032_768  # Qwen2.5-0.5B with tied embeddings


def test_linear_projector_maps_sonata_512_to_hidden(shapes):
    assert shapes["point_proj.weight"] == (896, 512)
    assert shapes["point_proj.bias"] == (896,)
    assert shapes["point_backbone.embedding.stem.linear.weight"] == (48, 6)
    assert shapes["point_backbone.input_proj.weight"] == (512, 512 + 63)


def test_mlp_projector_keys():
    names = {n: tuple(t.shape) for n, t in _meta_model(projector="mlp").state_dict().items() if "point_proj" in n}
    assert names == {
        "point_proj.0.weight": (512, 512),
        "point_proj.0.bias": (512,),
        "point_proj.2.weight": (896, 512),
        "point_proj.2.bias": (896,),
    }
