"""The observer hook (groundwork for `spatialvlm check --verbose`): what it sees at prefill and decode."""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

from spatialvlm_cli.pe import QKTable, build_position_encoding, observe_rotary
from spatialvlm_cli.pe.apply import rotate_half


class Recorder:
    def __init__(self) -> None:
        self.tables: list[tuple] = []
        self.rotations: list[tuple] = []

    def on_tables(self, positions, stock, tables) -> None:
        self.tables.append((positions, stock, tables))

    def on_rotation(self, q, k, cos, sin, q_rotated, k_rotated) -> None:
        self.rotations.append((q, k, cos, sin, q_rotated, k_rotated))


@pytest.mark.parametrize("name", ["3D_RoPE", "MixedRoPE3D"])
def test_observer_sees_tables_once_and_every_layer_at_prefill(lm, scene, name: str) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding(name, "3D_with_1D", model.config, {"init": "random"} if name == "MixedRoPE3D"
                                 else None)
    pe.attach(model.model)
    prompt = scene(model, [6])
    recorder = Recorder()
    with torch.no_grad(), observe_rotary(recorder), pe.positions(prompt.positions):
        out = model(inputs_embeds=prompt.embeds, position_ids=prompt.positions.position_ids, use_cache=True)
    assert len(recorder.tables) == 1 and len(recorder.rotations) == model.config.num_hidden_layers
    positions, (stock_cos, stock_sin), _ = recorder.tables[0]
    assert positions is prompt.positions
    text = ~positions.point_mask[0]
    for q, k, cos, _, q_rotated, k_rotated in recorder.rotations:
        assert isinstance(cos, QKTable) == (name == "MixedRoPE3D")
        stock_q, stock_k = apply_rotary_pos_emb(q, k, stock_cos, stock_sin)
        assert torch.equal(q_rotated[:, :, text], stock_q[:, :, text])  # text rows: exactly the stock 1-D RoPE
        assert torch.equal(k_rotated[:, :, text], stock_k[:, :, text])
        assert not torch.allclose(q_rotated[:, :, ~text], stock_q[:, :, ~text])  # points: their own rotation
        torch.testing.assert_close(q_rotated.norm(dim=-1), q.norm(dim=-1))

    decode = Recorder()  # a decode step: no point positions, plain stock tables
    with torch.no_grad(), observe_rotary(decode):
        model(input_ids=torch.tensor([[7]]), position_ids=prompt.positions.position_ids[:, -1:] + 1,
              past_key_values=out.past_key_values, use_cache=True)
    assert not decode.tables and len(decode.rotations) == model.config.num_hidden_layers
    q, _, cos, sin, q_rotated, _ = decode.rotations[0]
    assert cos.shape == (1, 1, 16) and torch.equal(q_rotated, q * cos[:, None] + rotate_half(q) * sin[:, None])


def test_nothing_is_reported_outside_the_block(lm, scene) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding("3D_RoPE", "3D_only", model.config)
    pe.attach(model.model)
    prompt = scene(model, [4])
    recorder = Recorder()
    with observe_rotary(recorder):
        pass
    with torch.no_grad(), pe.positions(prompt.positions):
        model(inputs_embeds=prompt.embeds, position_ids=prompt.positions.position_ids)
    assert not recorder.tables and not recorder.rotations
