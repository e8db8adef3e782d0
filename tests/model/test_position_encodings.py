"""Every positional-encoding variant through `load_spatiallm`: build, forward, KV cache, save/load, swaps."""

from __future__ import annotations

import logging

import pytest
import torch

from spatialvlm_cli.errors import UnknownPEVariant
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.pe import MERGE_RULES, NO_PE, PE_REGISTRY

# The merge rule means nothing to stock RoPE: test it once.
VARIANTS = [(NO_PE, None)] + [(name, rule) for name in sorted(PE_REGISTRY) if name != NO_PE for rule in MERGE_RULES]

# Same weights in another model instance: CPU GEMM kernels may round differently with memory alignment.
SAME_WEIGHTS_ATOL = 1e-6


@pytest.fixture(scope="module")
def cloud(make_cloud):
    return make_cloud((60, 50, 40), 500, seed=40)


@pytest.fixture(scope="module")
def stock_logits(cloud):
    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe=None)
    inputs = loaded.processor([cloud])
    with torch.no_grad():
        return loaded.model(**inputs).logits[0]


def _first_point(inputs, config) -> int:
    return inputs["input_ids"][0].tolist().index(config.point_token_id)


@torch.no_grad()
@pytest.mark.parametrize(("name", "rule"), VARIANTS)
def test_variant_forward_and_cached_generation(name, rule, cloud, stock_logits):
    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe=name, merge_rule=rule)
    model = loaded.model
    assert model.position_encoding.name == name
    inputs = loaded.processor([cloud])
    logits = model(**inputs).logits[0]
    first = _first_point(inputs, model.config)
    # Text before the point block never sees a point token: identical to stock RoPE.
    torch.testing.assert_close(logits[:first], stock_logits[:first], rtol=0, atol=1e-6)
    change = (logits[-1] - stock_logits[-1]).abs().max()
    assert change == 0 if name == NO_PE else change > 1e-4

    _assert_cached_equals_uncached(model, inputs, steps=3)


def _assert_cached_equals_uncached(model, inputs, steps: int) -> None:
    """Greedy generate with the KV cache vs one no-cache forward over prompt + generated tokens (explicit all-ones
    mask): causal, so its logits at the last `steps` positions are the step-by-step recomputation."""
    out = model.generate(
        **inputs, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
        return_dict_in_generate=True, output_logits=True,
    )  # fmt: skip
    full = out.sequences[:, :-1]
    reference = model(
        input_ids=full, attention_mask=torch.ones_like(full), point_clouds=inputs["point_clouds"], use_cache=False
    ).logits[0, -steps:]
    torch.testing.assert_close(torch.stack([step[0] for step in out.logits]), reference, rtol=1e-5, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("name", ["3D_RoPE", "MixedRoPE3D"])
def test_llama_rotary_variants_cached_equals_uncached(name, cloud):
    loaded = load_spatiallm("tiny-llama", device="cpu", vlm_pe=name, merge_rule="3D_with_1D")
    _assert_cached_equals_uncached(loaded.model, loaded.processor([cloud]), steps=3)


@torch.no_grad()
def test_learned_pe_saves_reloads_and_stays_float32(tmp_path, cloud):
    loaded = load_spatiallm("tiny-qwen", device="cpu", vlm_pe="MixedRoPE3D", merge_rule="3D_only")
    with torch.no_grad():  # make the learned frequencies differ from any fresh initialisation
        for parameter in loaded.model.position_encoding.parameters():
            parameter.mul_(1.5)
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    inputs = loaded.processor([cloud])
    expected = loaded.model(**inputs).logits

    reloaded = load_spatiallm(str(tmp_path), device="cpu")
    assert reloaded.model.config.vlm_pe == "MixedRoPE3D" and reloaded.model.config.pe["init"] == "axial"
    for name, parameter in loaded.model.position_encoding.named_parameters():
        assert torch.equal(parameter, reloaded.model.position_encoding.get_parameter(name)), name
    torch.testing.assert_close(reloaded.model(**inputs).logits, expected, rtol=0, atol=SAME_WEIGHTS_ATOL)

    half = load_spatiallm(str(tmp_path), device="cpu", dtype="bfloat16").model
    assert {p.dtype for p in half.position_encoding.parameters()} == {torch.float32}
    assert {p.dtype for p in half.point_backbone.parameters()} == {torch.float32}
    assert half.model.embed_tokens.weight.dtype == torch.bfloat16
    for name, parameter in half.position_encoding.named_parameters():
        assert torch.equal(parameter, reloaded.model.position_encoding.get_parameter(name)), name


@torch.no_grad()
def test_swapping_pe_on_a_checkpoint(tmp_path, cloud, caplog):
    stock = load_spatiallm("tiny-qwen", device="cpu")
    stock.model.save_pretrained(tmp_path)
    stock.tokenizer.save_pretrained(tmp_path)

    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli"):
        swapped = load_spatiallm(str(tmp_path), device="cpu", vlm_pe="MixedRoPE3D", merge_rule="3D_with_1D")
    assert any("freshly initialised" in record.getMessage() for record in caplog.records)
    # The fresh parameters are the variant's own initialisation, not uninitialised memory.
    preset = load_spatiallm("tiny-qwen", device="cpu", vlm_pe="MixedRoPE3D", merge_rule="3D_with_1D").model
    for name, parameter in swapped.model.position_encoding.named_parameters():
        assert torch.equal(parameter, preset.position_encoding.get_parameter(name)), name
    inputs = swapped.processor([cloud])
    torch.testing.assert_close(swapped.model(**inputs).logits, preset(**inputs).logits, rtol=0, atol=SAME_WEIGHTS_ATOL)

    options = load_spatiallm(str(tmp_path), device="cpu", vlm_pe="3D_RoPE", pe_options={"theta_3d": 50.0})
    assert options.model.config.pe["theta_3d"] == 50.0 and options.model.config.pcd_pe_merge_rule == "3D_only"
    with pytest.raises(UnknownPEVariant, match="4D_RoPE"):
        load_spatiallm(str(tmp_path), device="cpu", vlm_pe="4D_RoPE")
