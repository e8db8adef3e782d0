"""Pins every transformers internal named in `spatialvlm_cli.transformers_seam`: when a release changes one, the
failing test here names it (rather than 21 tests elsewhere)."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, LlamaModel, Qwen2Config, Qwen2ForCausalLM
from transformers.models.llama.modeling_llama import LlamaAttention, LlamaDecoderLayer
from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2DecoderLayer, Qwen2Model

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.model.attention import ATTENTION_CLASSES

SIZES = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=128)
FAMILIES = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}


def tiny(family: str, attn: str = "sdpa"):
    config_cls, model_cls = FAMILIES[family]
    torch.manual_seed(0)
    return model_cls._from_config(config_cls(**SIZES), attn_implementation=attn).eval()


@pytest.mark.parametrize("forward", [Qwen2Model.forward, LlamaModel.forward, Qwen2DecoderLayer.forward,
                                     LlamaDecoderLayer.forward, Qwen2Attention.forward, LlamaAttention.forward])
def test_the_cache_argument_has_one_name_everywhere(forward) -> None:
    assert transformers_seam.CACHE_ARGUMENT in transformers_seam.CACHE_NAMES
    assert transformers_seam.CACHE_ARGUMENT in inspect.signature(forward).parameters


@pytest.mark.parametrize("family", list(FAMILIES))
def test_model_outputs_carry_the_cache_under_that_name_without_warnings(family: str) -> None:
    model = tiny(family)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model(torch.tensor([[3, 4, 5]]), use_cache=True)
        cache = transformers_seam.output_cache(out)
        assert isinstance(cache, DynamicCache) and cache.get_seq_length() == 3
        step = model(torch.tensor([[6]]), use_cache=True, **{transformers_seam.CACHE_ARGUMENT: cache})
        assert transformers_seam.output_cache(step).get_seq_length(0) == 4
        built = transformers_seam.causal_lm_output(None, step.logits, cache, None, None)
        assert transformers_seam.output_cache(built) is cache


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_attention_attributes_our_forward_reads(family: str) -> None:
    attention = tiny(family).model.layers[1].self_attn
    assert type(attention) in ATTENTION_CLASSES
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim", "scaling", "attention_dropout", "layer_idx",
                 "config"):
        assert hasattr(attention, name), name
    assert attention.layer_idx == 1 and attention.scaling == attention.head_dim ** -0.5
    assert hasattr(attention, "sliding_window") == (family == "qwen2")
    assert attention.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_our_attention_forward_equals_the_stock_one(family: str, attn: str) -> None:
    """The stock forward's steps (projections, rotation, cache update, attention kernel, output projection) are
    what our attention mirrors: equal weights give bit-equal outputs and caches, at prefill and at a decode step."""
    model = tiny(family, attn)
    stock = model.model.layers[0].self_attn
    ours = ATTENTION_CLASSES[type(stock)](stock.config, stock.layer_idx).eval()
    ours.load_state_dict(stock.state_dict())
    hidden = torch.randn(1, 5, SIZES["hidden_size"], generator=torch.Generator().manual_seed(1))
    position_ids = torch.arange(5)[None]
    tables = model.model.rotary_emb(hidden, position_ids)
    caches = DynamicCache(config=model.config), DynamicCache(config=model.config)
    name = transformers_seam.CACHE_ARGUMENT
    with torch.no_grad():
        for step in (slice(0, 4), slice(4, 5)):
            cos, sin = tables[0][:, step], tables[1][:, step]
            expected, _ = stock(hidden[:, step], (cos, sin), None, **{name: caches[0]})
            got, _ = ours(hidden[:, step], (cos, sin), None, **{name: caches[1]})
            assert torch.equal(got, expected)
    assert torch.equal(caches[0].layers[0].keys, caches[1].layers[0].keys)


def test_cache_update_returns_everything_cached_so_far() -> None:
    cache = DynamicCache(config=Qwen2Config(**SIZES))
    first = torch.randn(1, 2, 3, 8)
    keys, _ = cache.update(first, first, 0)
    assert cache.get_seq_length(0) == 3
    keys, _ = cache.update(torch.ones(1, 2, 1, 8), torch.ones(1, 2, 1, 8), 0)
    assert keys.shape == (1, 2, 4, 8) and torch.equal(keys[:, :, :3], first)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_decoder_rotary_gives_stock_tables(family: str) -> None:
    decoder = tiny(family).model
    hidden = torch.zeros(2, 4, SIZES["hidden_size"])
    cos, sin, scaling = transformers_seam.stock_rotary(decoder, hidden, torch.arange(4)[None].expand(2, -1))
    head_dim = SIZES["hidden_size"] // SIZES["num_attention_heads"]
    assert cos.shape == sin.shape == (2, 4, head_dim) and scaling == 1.0
    inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2).float() / head_dim)
    torch.testing.assert_close(cos[0, 3, : head_dim // 2], torch.cos(3 * inv_freq))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_norms_training_heads_read(family: str) -> None:
    model = tiny(family)
    seen = {}
    transformers_seam.first_input_norm(model.model).register_forward_hook(
        lambda module, args, output: seen.__setitem__("first", output))
    transformers_seam.final_norm(model.model).register_forward_hook(
        lambda module, args, output: seen.__setitem__("final", output))
    with torch.no_grad():
        out = model(torch.tensor([[3, 4, 5]]), output_hidden_states=True)
    assert seen["first"].shape == seen["final"].shape == (1, 3, SIZES["hidden_size"])
    torch.testing.assert_close(model.lm_head(seen["final"]), out.logits)  # the final norm feeds the LM head


@pytest.mark.parametrize("family", list(FAMILIES))
def test_activation_checkpointing_is_switched_on_without_warnings(family: str) -> None:
    """Checkpointed layers recompute in the backward pass: the gradients equal the plain model's."""
    plain, checkpointed = tiny(family).train(), tiny(family).train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning under this transformers' name for it
        transformers_seam.enable_activation_checkpointing(checkpointed)
    # The state under this transformers' name for it (is_gradient_checkpointing is deprecated from 5.25).
    name = "is_activation_checkpointing" if hasattr(type(plain), "is_activation_checkpointing") \
        else "is_gradient_checkpointing"
    assert getattr(checkpointed, name) and not getattr(plain, name)
    ids = torch.tensor([[3, 4, 5, 6]])
    for model in (plain, checkpointed):
        model(ids, labels=ids).loss.backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
