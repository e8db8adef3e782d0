"""The attention of our SpatialLM models: the family's own attention, rotating point tokens by their 3-D position.

A SpatialLM model owns its attention class, as transformers' Qwen2-VL does: `SpatialLMQwen2Attention` subclasses
`Qwen2Attention` (and `SpatialLMLlamaAttention` `LlamaAttention`) with the same parameters and the same
forward, except that a prefill with point tokens passes `point_rotary` (a `spatialvlm_cli.pe.PointRotary`) and
the layer rotates q and k with those tables instead of the decoder's stock (cos, sin). Decode steps and text-only
forwards use the stock tables with transformers' arithmetic, so they are bit-identical to the stock model. The
tables travel as an explicit keyword argument through the decoder's `**kwargs`; nothing else in transformers is
touched (see `spatialvlm_cli.transformers_seam` for the internals this forward mirrors).

An observer (`observe_attention`, used by `spatialvlm check`) sees every call: q, k, v, the tables, the rotated q
and k and the cache length. It is an attribute of this model's layers, so it costs one attribute test per layer
when unset and never affects another model instance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from torch import Tensor, nn
from transformers.models.llama import modeling_llama
from transformers.models.qwen2 import modeling_qwen2

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe import PointPositions, PointRotary, QKTable, apply_rotary

if TYPE_CHECKING:
    from spatialvlm_cli.pe import PositionEncoding


@dataclass
class AttentionCall:
    """One attention call of one layer, as `AttentionObserver.on_attention` receives it.

    hidden_states (B, S, C) the layer's input; q (B, Hq, S, D), k and v (B, Hkv, S, D) after the head split; cos,
    sin the tables q and k were rotated with ((B, S, D) tensors, or QKTable per-head half tables); q_rot, k_rot the
    rotated q and k; positions the point positions of a prefill with point tokens (None at decode steps and in
    text-only forwards); past_length the layer's cache length before the call; cached_keys (B, Hkv, S, D) the
    newest S keys the cache returned (None without a cache)."""

    layer: int
    hidden_states: Tensor
    q: Tensor
    k: Tensor
    v: Tensor | None
    cos: Tensor | QKTable
    sin: Tensor | QKTable
    q_rot: Tensor
    k_rot: Tensor
    positions: PointPositions | None
    past_length: int
    cached_keys: Tensor | None

    @property
    def is_prefill(self) -> bool:
        """A forward that starts an empty cache with point positions (not a decode step)."""
        return self.past_length == 0 and self.positions is not None


class AttentionObserver(Protocol):
    """Receives every attention call of a model while `observe_attention` is active (in the forward's thread)."""

    def on_attention(self, call: AttentionCall) -> None: ...


class PointRotaryAttention(nn.Module):
    """Mixin before a family's attention class: its forward, with the rotation taken from `point_rotary` when given.

    forward: hidden_states (B, S, C); position_embeddings the decoder's stock (cos, sin) (B, S, D); attention_mask
    as the decoder builds it; point_rotary the tables of a prefill with point tokens (None otherwise).
    Returns (B, S, C) and the attention weights (eager only), as the stock forward does."""

    eager_attention: ClassVar[Callable[..., tuple[Tensor, Tensor | None]]]
    observer: AttentionObserver | None = None

    def forward(self, hidden_states: Tensor, position_embeddings: tuple[Tensor, Tensor],
                attention_mask: Tensor | None = None, point_rotary: PointRotary | None = None,
                **kwargs: Any) -> tuple[Tensor, Tensor | None]:
        cache = transformers_seam.pop_cache(kwargs)
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings if point_rotary is None else point_rotary.for_layer(self.layer_idx)
        query_rot, key_rot = apply_rotary(query, key, cos, sin)

        observer = self.observer
        past_length = int(cache.get_seq_length(self.layer_idx)) if observer is not None and cache is not None else 0
        keys, values = (key_rot, value) if cache is None else cache.update(key_rot, value, self.layer_idx)

        attend = transformers_seam.attention_function(self, type(self).eager_attention)
        window = {"sliding_window": self.sliding_window} if hasattr(self, "sliding_window") else {}
        output, weights = attend(self, query_rot, keys, values, attention_mask,
                                 dropout=0.0 if not self.training else self.attention_dropout,
                                 scaling=self.scaling, **window, **kwargs)
        output = self.o_proj(output.reshape(*input_shape, -1).contiguous())
        if observer is not None:
            observer.on_attention(AttentionCall(
                layer=self.layer_idx, hidden_states=hidden_states.detach(), q=query.detach(), k=key.detach(),
                v=value.detach(), cos=cos, sin=sin, q_rot=query_rot.detach(), k_rot=key_rot.detach(),
                positions=None if point_rotary is None else point_rotary.positions, past_length=past_length,
                cached_keys=None if cache is None else keys[..., -key.shape[2]:, :].detach()))
        return output, weights


class SpatialLMQwen2Attention(PointRotaryAttention, modeling_qwen2.Qwen2Attention):
    """Qwen2 attention that rotates point tokens by `point_rotary` (same parameters as Qwen2Attention)."""

    eager_attention = staticmethod(modeling_qwen2.eager_attention_forward)


class SpatialLMLlamaAttention(PointRotaryAttention, modeling_llama.LlamaAttention):
    """Llama attention that rotates point tokens by `point_rotary` (same parameters as LlamaAttention)."""

    eager_attention = staticmethod(modeling_llama.eager_attention_forward)


ATTENTION_CLASSES: dict[type[nn.Module], type[PointRotaryAttention]] = {
    modeling_qwen2.Qwen2Attention: SpatialLMQwen2Attention,
    modeling_llama.LlamaAttention: SpatialLMLlamaAttention,
}


def use_point_attention(decoder: nn.Module) -> None:
    """Give `decoder` (a Qwen2Model / LlamaModel being constructed) our attention in every layer. Call it in the
    model's `__init__`, before weights are initialised or loaded: the new modules have the same parameter names."""
    layers = getattr(decoder, "layers", None)
    if layers is None or not all(hasattr(layer, "self_attn") for layer in layers):
        raise ConfigError(f"'{type(decoder).__name__}' has no layers[i].self_attn: point-aware attention needs a "
                          f"Qwen2Model or LlamaModel")
    for layer in layers:
        stock = layer.self_attn
        own = ATTENTION_CLASSES.get(type(stock))
        if own is None:
            raise ConfigError(f"no point-aware attention for '{type(stock).__name__}' (have: "
                              f"{', '.join(cls.__name__ for cls in ATTENTION_CLASSES)})")
        layer.self_attn = own(stock.config, stock.layer_idx)


def point_attention_layers(model: nn.Module) -> list[PointRotaryAttention]:
    """The point-aware attention modules of `model`, in layer order."""
    return [module for module in model.modules() if isinstance(module, PointRotaryAttention)]


@contextlib.contextmanager
def observe_attention(model: nn.Module, observer: AttentionObserver) -> Iterator[None]:
    """Report every attention call of `model` inside the block to `observer` (any thread running its forward)."""
    layers = point_attention_layers(model)
    if not layers:
        raise ConfigError(f"'{type(model).__name__}' has no point-aware attention to observe")
    for layer in layers:
        layer.observer = observer
    try:
        yield
    finally:
        for layer in layers:
            layer.observer = None


def point_rotary_for(decoder: nn.Module, position_encoding: PositionEncoding, inputs_embeds: Tensor,
                     positions: PointPositions) -> PointRotary:
    """The tables of a prefill with point tokens: the variant's, built on the decoder's stock RoPE at
    `positions.position_ids`. inputs_embeds (B, S, C) gives dtype and device."""
    cos, sin, scaling = transformers_seam.stock_rotary(decoder, inputs_embeds, positions.position_ids)
    return position_encoding.point_rotary(cos, sin, positions, scaling)
