"""Every transformers internal spatialvlm depends on, named in one place; `tests/test_transformers_seam.py` pins each.

What we add to a transformers model enters through its public extension points: our SpatialLM models own their
attention class (a subclass of the family's, as Qwen2-VL owns its rotary attention), extra arguments reach it
through the decoder's `**kwargs` (documented for the attention interface), panorama position ids go in as
`generate(position_ids=...)` / `model(position_ids=...)`, and `prepare_inputs_for_generation` / `generate` are
overridden on our own classes. Nothing in transformers is patched, so a stock model built in the same process is
untouched. What remains version-dependent or undocumented is below; when a release changes one of these, one
test of the seam fails and names it.

1. The KV-cache argument of decoder, layer and attention forwards is `cache` from transformers 5.24 on and
   `past_key_values` before (an alias until 5.40): `CACHE_ARGUMENT`, `pop_cache`, and model outputs' field of
   the same name (`output_cache`, `causal_lm_output`).
2. The attention module's attributes that our attention forward reads as the stock forward does: `q_proj`,
   `k_proj`, `v_proj`, `o_proj`, `head_dim`, `scaling`, `attention_dropout`, `layer_idx`, `sliding_window`
   (Qwen2 only), and `config._attn_implementation` with `ALL_ATTENTION_FUNCTIONS` (`attention_function`).
3. `Cache.update(key, value, layer_idx)` returns the layer's keys and values so far; `Cache.get_seq_length(i)`.
4. The decoder layout: `model.layers[i].self_attn`, `model.rotary_emb(x, position_ids) -> (cos, sin)` with its
   `attention_scaling`; a VLM's text decoder is `model.model.language_model` (`text_decoder`); training's extra
   heads read the first layer's input norm and the final norm (`first_input_norm`, `final_norm`).
6. The KV-cache layer contract `generation.kv_cache.GrowingLayer` builds on: `Cache(layer_class_to_replicate=...)`
   adds one layer object per decoder layer; `DynamicLayer` keeps `keys` / `values` (B, H, S, D) tensors that its
   other methods (length, crop, beam reordering, batch selection) read and replace, `lazy_initialization` sets them
   up, and `update(key, value)` returns the layer's keys and values so far.
7. Activation checkpointing is `activation_checkpointing_enable` from transformers 5.25 on and
   `gradient_checkpointing_enable` before (deprecated from 5.25, to go in v6): `enable_activation_checkpointing`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn
from transformers import Qwen2Model
from transformers.cache_utils import Cache
from transformers.cache_utils import DynamicLayer as DynamicLayer  # re-exported for generation.kv_cache (item 6)
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

if TYPE_CHECKING:
    from transformers.utils import ModelOutput

CACHE_NAMES = ("cache", "past_key_values")
CACHE_ARGUMENT: str = next(name for name in CACHE_NAMES if name in inspect.signature(Qwen2Model.forward).parameters)
"""The name under which this transformers' decoders take and return the KV cache."""


def pop_cache(kwargs: dict[str, Any]) -> Cache | None:
    """Remove the KV cache from a forward's keyword arguments, whichever name the caller used."""
    found = [kwargs.pop(name) for name in CACHE_NAMES if name in kwargs]
    present = [cache for cache in found if cache is not None]
    return present[0] if present else None


def output_cache(output: ModelOutput) -> Cache | None:
    """The KV cache a model output carries (field `cache` or `past_key_values`, as this transformers names it)."""
    return output.get(CACHE_ARGUMENT)


def causal_lm_output(loss: Tensor | None, logits: Tensor, cache: Cache | None,
                     hidden_states: tuple[Tensor, ...] | None,
                     attentions: tuple[Tensor, ...] | None) -> CausalLMOutputWithPast:
    """A CausalLMOutputWithPast with the cache under this transformers' field name (no deprecation warning)."""
    return CausalLMOutputWithPast(loss=loss, logits=logits, hidden_states=hidden_states, attentions=attentions,
                                  **{CACHE_ARGUMENT: cache})


def attention_function(module: nn.Module, eager: Callable[..., tuple[Tensor, Tensor | None]]) -> Callable[..., Any]:
    """The attention kernel the model was configured with (sdpa, eager, flash, ...), as the stock forward picks it."""
    return ALL_ATTENTION_FUNCTIONS.get_interface(module.config._attn_implementation, eager)


def stock_rotary(decoder: nn.Module, hidden_states: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor, float]:
    """The decoder's own 1-D RoPE: cos, sin (B, S, D) in the hidden dtype at `position_ids` (B, S), and the
    attention scaling already folded into them (1.0 for plain RoPE)."""
    rotary = decoder.rotary_emb
    cos, sin = rotary(hidden_states, position_ids)
    return cos, sin, float(getattr(rotary, "attention_scaling", 1.0))


def text_decoder(vlm: nn.Module) -> nn.Module:
    """The text decoder of a transformers `*ForConditionalGeneration` VLM (InternVL, Gemma3, Qwen2.5-VL, Qwen3-VL)."""
    return vlm.model.language_model


def first_input_norm(decoder: nn.Module) -> nn.Module:
    """The first decoder layer's input RMSNorm: its output (B, S, C) is what the first attention sees."""
    return decoder.layers[0].input_layernorm


def final_norm(decoder: nn.Module) -> nn.Module:
    """The decoder's final RMSNorm: its output (B, S, C) feeds the LM head."""
    return decoder.norm


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute each decoder layer's activations in the backward pass (non-reentrant checkpoints), under this
    transformers' name for it."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
