"""Every positional-encoding variant on the CPU fast path (`--quantize int8`: int8 decoder linears and LM head):
cached decoding equals recomputation, point-token attention depends only on relative position, text-only forwards
stay close to float32, and quantizing one model leaves another untouched. Tolerances are what per-token int8
activations permit (the float32 path's tests are in test_model.py and test_rotation.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spatialvlm_cli.model.attention import observe_attention
from spatialvlm_cli.model.quantize import DynamicInt8Linear, quantize_decoder_int8
from spatialvlm_cli.pe import PointPositions, PointRotary, build_position_encoding

VARIANTS = [("None", {}), ("3D_RoPE", {}), ("3D_RoPE", {"layout": "chunked"}), ("MixedRoPE3D", {"init": "random"}),
            ("MixedRoPE3D", {"init": "seed", "param_layout": "seed-compatible"}), ("3D_Sinusoidal", {})]
# The rotary configurations whose point q.k is relative (seed-compatible MixedRoPE3D with separate q parameters
# is not under GQA: test_rotation.py shows it).
RELATIVE = [("3D_RoPE", {}), ("3D_RoPE", {"layout": "chunked"}), ("MixedRoPE3D", {"init": "random"})]
RULES = ["3D_only", "3D_with_1D"]
CASES = ["qwen2-hd16", "llama-hd24"]


@pytest.fixture
def fast_lm(lm):
    """`lm(case, attn)` on the fast path: the same weights, its decoder linears and LM head int8."""

    def build(case: str, attn: str = "sdpa"):
        model = lm(case, attn)
        quantize_decoder_int8(model)
        return model

    return build


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_cached_generation_equals_recomputation_on_the_fast_path(fast_lm, scene, decode, case: str, attn: str,
                                                                 rule: str, name: str, options: dict) -> None:
    model = fast_lm(case, attn)
    assert isinstance(model.model.layers[0].self_attn.q_proj, DynamicInt8Linear)
    pe = build_position_encoding(name, rule, model.config, options)
    prompt = scene(model, [5, 9])  # left-padded batch of two
    cached_tokens, cached_logits = decode["cached"](model, pe, prompt, 5)
    recomputed_tokens, recomputed_logits = decode["recomputed"](model, pe, prompt, 5)
    # Activations are quantized per token, so a row's codes do not depend on the rows computed with it: cached and
    # recomputed steps differ only by float summation order.
    assert torch.equal(cached_tokens, recomputed_tokens)
    torch.testing.assert_close(cached_logits, recomputed_logits, atol=1e-4, rtol=1e-4)


class _Recorder:
    """Collects every attention layer's rotated q (B, Hq, S, D) and k (B, Hkv, S, D)."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_attention(self, call) -> None:
        self.calls.append((call.q_rot, call.k_rot))


def _point_qk(model, pe, embeds: torch.Tensor, position_ids: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Every layer's attention logits q.k (L, B, Hq, S, S) for a sequence of point tokens only, rotated at grid
    `coords` (1, S, 3) taken as rotation units as they are (no min-corner shift: the translation must reach the
    tables)."""
    mask = torch.ones(position_ids.shape, dtype=torch.bool)
    cos, sin = model.model.rotary_emb(embeds, position_ids)
    rotary = PointRotary(PointPositions(position_ids, mask, coords), pe.tables_from_units(cos, sin, mask, coords))
    recorder = _Recorder()
    with torch.no_grad(), observe_attention(model, recorder):
        model(inputs_embeds=embeds, position_ids=position_ids, point_rotary=rotary)
    return torch.stack([q @ k.repeat_interleave(q.shape[1] // k.shape[1], dim=1).transpose(-1, -2)
                        for q, k in recorder.calls])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), RELATIVE)
def test_point_attention_depends_only_on_relative_position_on_the_fast_path(fast_lm, case: str, rule: str,
                                                                            name: str, options: dict) -> None:
    model = fast_lm(case)
    pe = build_position_encoding(name, rule, model.config, options)
    generator = torch.Generator().manual_seed(3)
    length = 8
    embeds = torch.randn(1, length, model.config.hidden_size, generator=generator)
    position_ids = torch.arange(length)[None] + 4
    coords = torch.rand(1, length, 3, generator=generator) * 20.0
    base = _point_qk(model, pe, embeds, position_ids, coords)
    shifted = _point_qk(model, pe, embeds, position_ids + 9, coords + torch.tensor([3.5, -2.25, 7.0]))
    scale = base.abs().max()
    # Layer 0 sees identical int8 codes (measured: ~1e-6 of the range apart); deeper layers' inputs differ by float
    # rounding, which could move an activation's code by one step: 1e-3 of the range allows for that.
    torch.testing.assert_close(shifted[0], base[0], atol=1e-5 * scale, rtol=0)
    assert (shifted - base).abs().max() <= 1e-3 * scale
    moved = coords.clone()
    moved[0, 0] += torch.tensor([1.0, 2.0, 0.5])
    # the positions do matter: moving one point changes q.k far beyond that tolerance (measured: 0.3-0.6)
    assert (_point_qk(model, pe, embeds, position_ids, moved) - base).abs().max() > 0.1 * scale


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_fast_path_stays_close_to_float32(lm, fast_lm, scene, decode, case: str, rule: str, name: str,
                                          options: dict) -> None:
    reference, model = lm(case), fast_lm(case)
    pe = build_position_encoding(name, rule, model.config, options)
    prompt = scene(model, [7])
    _, fast_logits = decode["cached"](model, pe, prompt, 1)
    _, float_logits = decode["cached"](reference, pe, prompt, 1)
    error = (fast_logits - float_logits).abs().max() / float_logits.abs().max()
    assert 2e-3 < error < 0.05  # it is quantized (measured 1.2-1.8 % of the logits' range), and the error is small


def test_quantizing_one_model_leaves_another_untouched(lm) -> None:
    first, second = lm("qwen2-hd16"), lm("qwen2-hd16")
    ids = torch.randint(3, 240, (1, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = second(ids).logits
        quantize_decoder_int8(first)
        assert torch.equal(second(ids).logits, before)
        assert not torch.equal(first(ids).logits, before)
    assert type(second.model.layers[0].mlp.down_proj) is nn.Linear
    assert isinstance(first.lm_head, DynamicInt8Linear)

