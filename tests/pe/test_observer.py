"""The attention observer (what `spatialvlm check` builds on): what it sees at prefill and decode."""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.attention import AttentionCall, observe_attention
from spatialvlm_cli.pe import QKTable, build_position_encoding
from spatialvlm_cli.pe.apply import rotate_half
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache


class Recorder:
    def __init__(self) -> None:
        self.calls: list[AttentionCall] = []

    def on_attention(self, call: AttentionCall) -> None:
        self.calls.append(call)


@pytest.mark.parametrize("name", ["3D_RoPE", "MixedRoPE3D"])
def test_observer_sees_every_layer_at_prefill_and_decode(lm, scene, point_forward, name: str) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding(name, "3D_with_1D", model.config, {"init": "random"} if name == "MixedRoPE3D"
                                 else None)
    prompt = scene(model, [6])
    recorder = Recorder()
    with torch.no_grad(), observe_attention(model, recorder):
        out = point_forward(model, pe, prompt.embeds, prompt.positions, use_cache=True)
    assert [call.layer for call in recorder.calls] == list(range(model.config.num_hidden_layers))
    stock_cos, stock_sin = model.model.rotary_emb(prompt.embeds, prompt.positions.position_ids)
    text = ~prompt.positions.point_mask[0]
    for call in recorder.calls:
        assert call.is_prefill and call.positions is prompt.positions and call.past_length == 0
        assert isinstance(call.cos, QKTable) == (name == "MixedRoPE3D")
        stock_q, stock_k = apply_rotary_pos_emb(call.q, call.k, stock_cos, stock_sin)
        assert torch.equal(call.q_rot[:, :, text], stock_q[:, :, text])  # text rows: exactly the stock 1-D RoPE
        assert torch.equal(call.k_rot[:, :, text], stock_k[:, :, text])
        assert not torch.allclose(call.q_rot[:, :, ~text], stock_q[:, :, ~text])  # points: their own rotation
        torch.testing.assert_close(call.q_rot.norm(dim=-1), call.q.norm(dim=-1))
        assert torch.equal(call.cached_keys, call.k_rot)  # the cache holds the rotated keys

    decode = Recorder()  # a decode step: no point positions, plain stock tables
    with torch.no_grad(), observe_attention(model, decode):
        model(input_ids=torch.tensor([[7]]), position_ids=prompt.positions.position_ids[:, -1:] + 1, use_cache=True,
              **{CACHE_ARGUMENT: output_cache(out)})
    assert len(decode.calls) == model.config.num_hidden_layers
    call = decode.calls[0]
    assert not call.is_prefill and call.positions is None and call.past_length == prompt.embeds.shape[1]
    assert call.cos.shape == (1, 1, 16)
    assert torch.equal(call.q_rot, call.q * call.cos[:, None] + rotate_half(call.q) * call.sin[:, None])


def test_nothing_is_reported_outside_the_block(lm, scene, point_forward, stock_lm) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding("3D_RoPE", "3D_only", model.config)
    prompt = scene(model, [4])
    recorder = Recorder()
    with observe_attention(model, recorder):
        pass
    with torch.no_grad():
        point_forward(model, pe, prompt.embeds, prompt.positions)
    assert not recorder.calls
    assert all(layer.self_attn.observer is None for layer in model.model.layers)
    with pytest.raises(ConfigError, match="no point-aware attention"):
        observe_attention(stock_lm("qwen2-hd16"), recorder).__enter__()
