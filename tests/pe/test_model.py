"""Every variant on tiny Qwen2 / Llama models with our point-aware attention: stock behaviour for text, cached
decoding equal to recomputation, padded batches equal to single runs, generate() in a worker thread, no effect on
stock models or on other instances."""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import Qwen2ForCausalLM, TextIteratorStreamer

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.model.attention import point_rotary_for, use_point_attention
from spatialvlm_cli.pe import PointPositions, build_position_encoding

VARIANTS = [("None", {}), ("3D_RoPE", {}), ("3D_RoPE", {"layout": "chunked"}), ("MixedRoPE3D", {"init": "random"}),
            ("MixedRoPE3D", {"init": "seed", "param_layout": "seed-compatible"}), ("3D_Sinusoidal", {})]
RULES = ["3D_only", "3D_with_1D"]


@pytest.mark.parametrize("case", ["qwen2-hd16", "llama-hd24"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_text_only_logits_are_bit_identical_to_stock(stock_lm, lm, point_forward, case: str, attn: str, name: str,
                                                     options: dict) -> None:
    stock_model, model = stock_lm(case, attn), lm(case, attn)
    ids = torch.randint(3, 240, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1], [1] * 9])
    with torch.no_grad():
        stock = stock_model(ids, attention_mask=mask).logits
        assert torch.equal(model(ids, attention_mask=mask).logits, stock)
        for rule in RULES:
            pe = build_position_encoding(name, rule, model.config, options)
            # a forward with the variant's tables but no point tokens is stock as well
            positions = PointPositions.from_point_blocks(torch.zeros(2, 9, dtype=torch.bool),
                                                         [torch.zeros(0, 3)] * 2, mask)
            embeds = pe.embed_points(model.get_input_embeddings()(ids), positions)
            out = point_forward(model, pe, embeds, positions, attention_mask=mask)
            reference = stock_model(ids, attention_mask=mask, position_ids=positions.position_ids).logits
            assert torch.equal(out.logits, reference)


def test_point_models_leave_stock_and_each_other_untouched(stock_lm, lm, scene, decode) -> None:
    before = stock_lm("qwen2-hd16")  # built before any model of ours runs
    ids = torch.randint(3, 240, (1, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        stock_logits = before(ids).logits
    rope, mixed = lm("qwen2-hd16"), lm("qwen2-hd16")
    rope_pe = build_position_encoding("3D_RoPE", "3D_only", rope.config)
    mixed_pe = build_position_encoding("MixedRoPE3D", "3D_only", mixed.config, {"init": "random"})
    prompt = scene(rope, [6])
    _, rope_logits = decode["cached"](rope, rope_pe, prompt, 2)
    _, mixed_logits = decode["cached"](mixed, mixed_pe, prompt, 2)
    _, rope_again = decode["cached"](rope, rope_pe, prompt, 2)
    assert torch.equal(rope_again, rope_logits)  # running the other model changed nothing in this one
    assert (mixed_logits - rope_logits).abs().max() > 1e-4  # and they really rotate differently
    after = stock_lm("qwen2-hd16")  # a stock model built after ours is bit-identical to one built before
    with torch.no_grad():
        assert torch.equal(after(ids).logits, stock_logits)
        assert torch.equal(before(ids).logits, stock_logits)
    assert type(after.model.layers[0].self_attn).__name__ == "Qwen2Attention"


@pytest.mark.parametrize("case", ["qwen2-hd16", "llama-hd24"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_cached_generation_equals_recomputation(lm, scene, decode, case: str, attn: str, rule: str, name: str,
                                                options: dict) -> None:
    model = lm(case, attn)
    pe = build_position_encoding(name, rule, model.config, options)
    prompt = scene(model, [5, 9])  # left-padded batch of two
    cached_tokens, cached_logits = decode["cached"](model, pe, prompt, 5)
    recomputed_tokens, recomputed_logits = decode["recomputed"](model, pe, prompt, 5)
    assert torch.equal(cached_tokens, recomputed_tokens)
    torch.testing.assert_close(cached_logits, recomputed_logits, atol=2e-5, rtol=1e-5)


def alone(prompt, row: int):
    """Row `row` of a left-padded batch as a batch of one without its padding."""
    keep = prompt.attention_mask[row].bool()
    pick = (slice(row, row + 1), keep)
    positions = prompt.positions
    return type(prompt)(prompt.embeds[pick], prompt.attention_mask[pick],
                        PointPositions(positions.position_ids[pick], positions.point_mask[pick],
                                       positions.point_coords[pick]))


@pytest.mark.parametrize("case", ["qwen2-hd16", "llama-hd24"])
@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_padded_batch_equals_single_runs(lm, scene, decode, case: str, name: str, options: dict) -> None:
    model = lm(case)
    pe = build_position_encoding(name, "3D_with_1D", model.config, options)
    prompt = scene(model, [4, 11], seed=3)  # 7 pad tokens in front of the first sequence
    assert int((prompt.attention_mask == 0).sum()) == 7
    batch_tokens, batch_logits = decode["cached"](model, pe, prompt, 4)
    for row in range(2):
        tokens, logits = decode["cached"](model, pe, alone(prompt, row), 4)
        assert torch.equal(tokens[0], batch_tokens[row])
        torch.testing.assert_close(logits[0], batch_logits[row], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "options"), VARIANTS[1:])
def test_point_encodings_change_what_the_model_computes(lm, scene, decode, name: str, options: dict) -> None:
    model = lm("qwen2-hd16")
    prompt = scene(model, [8])
    stock = build_position_encoding("None", None, model.config)
    _, stock_logits = decode["cached"](model, stock, prompt, 1)
    pe = build_position_encoding(name, "3D_only", model.config, options)
    _, logits = decode["cached"](model, pe, prompt, 1)
    assert (logits - stock_logits).abs().max() > 1e-4


def test_mixed_rope_default_init_is_3d_rope_interleaved(lm, scene, decode) -> None:
    model = lm("llama-hd24")
    prompt = scene(model, [6, 10])
    results = []
    for name in ("3D_RoPE", "MixedRoPE3D"):
        pe = build_position_encoding(name, "3D_with_1D", model.config)
        results.append(decode["cached"](model, pe, prompt, 3))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])  # same arithmetic on equal tables: bit-identical logits


def test_point_tables_belong_to_the_prefill(lm, scene) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding("3D_RoPE", "3D_only", model.config)
    prompt = scene(model, [4])
    cos, sin = model.model.rotary_emb(prompt.embeds, torch.tensor([[20]]))  # a decode step's stock tables
    with pytest.raises(InputError, match="belong to the prefill only"):
        pe.point_rotary(cos, sin, prompt.positions)


class PointQwen2(Qwen2ForCausalLM):
    """What the model owner does, in miniature: its own attention, and point positions in forward's signature,
    turned into tables only for the forward whose embeddings they describe (the prefill)."""

    def __init__(self, config) -> None:
        super().__init__(config)
        use_point_attention(self.model)

    def forward(self, *args, point_positions: PointPositions | None = None, inputs_embeds=None, **kwargs):
        if point_positions is not None and inputs_embeds is not None:
            kwargs["point_rotary"] = point_rotary_for(self.model, self.position_encoding, inputs_embeds,
                                                      point_positions)
        return super().forward(*args, inputs_embeds=inputs_embeds, **kwargs)


class IdTokenizer:
    def decode(self, ids, **kwargs) -> str:
        return "".join(f"<{int(i)}> " for i in ids)


@pytest.mark.parametrize("name", ["3D_RoPE", "MixedRoPE3D"])
def test_generate_in_a_worker_thread_with_a_streamer(lm, scene, decode, name: str) -> None:
    stock = lm("qwen2-hd16")
    model = PointQwen2._from_config(stock.config).eval()
    model.load_state_dict(stock.state_dict())
    model.position_encoding = build_position_encoding(name, "3D_with_1D", model.config, {"init": "random"}
                                                      if name == "MixedRoPE3D" else None)
    prompt = scene(model, [7])
    expected, _ = decode["cached"](model, model.position_encoding, prompt, 6)

    streamer = TextIteratorStreamer(IdTokenizer(), skip_prompt=True, timeout=60.0)
    result = {}
    kwargs = dict(inputs_embeds=prompt.embeds, attention_mask=prompt.attention_mask,
                  position_ids=prompt.positions.position_ids, point_positions=prompt.positions, max_new_tokens=6,
                  min_new_tokens=6, do_sample=False, streamer=streamer, pad_token_id=0)
    worker = threading.Thread(target=lambda: result.update(out=model.generate(**kwargs)))
    ids = torch.randint(3, 240, (1, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        text_only = stock(ids).logits
        worker.start()
        for _ in range(5):  # the worker's point positions never leak into this thread's forwards
            assert torch.equal(model(ids).logits, text_only)
    streamed = "".join(streamer)
    worker.join()
    assert torch.equal(result["out"][0], expected[0])
    assert streamed.split() == [f"<{int(t)}>" for t in expected[0]]


def test_point_attention_guards_and_copies(lm, stock_lm, scene, decode) -> None:
    import copy

    with pytest.raises(ConfigError, match="has no layers"):
        use_point_attention(stock_lm("qwen2-hd16").lm_head)
    model = lm("qwen2-hd16")
    pe = build_position_encoding("MixedRoPE3D", "3D_only", model.config, {"init": "random"})
    twin, twin_pe = copy.deepcopy(model), copy.deepcopy(pe)
    prompt = scene(model, [5])
    assert torch.equal(decode["cached"](twin, twin_pe, prompt, 2)[1], decode["cached"](model, pe, prompt, 2)[1])
