"""The interface every variant implements, and the machinery that puts rotary variants into a transformers decoder.

Lifecycle (see `spatialvlm_cli/pe/__init__.py` for the contract with the model):
    pe = build_position_encoding(name, merge_rule, lm_config, options)
    pe.attach(decoder)                       once, at model construction
    embeds = pe.embed_points(embeds, positions)
    with pe.positions(positions):            around the prefill forward that contains point tokens
        decoder(inputs_embeds=embeds, position_ids=positions.position_ids, ...)

Rotary variants replace `decoder.rotary_emb` by `PointAwareRotary`, which calls the stock rotary module (so text and
decode steps get the model's own cos/sin, including any rope scaling) and, only while `pe.positions(...)` is active in
the calling thread, rewrites the entries of point tokens. The decoder computes these tables once per forward and hands
the same tuple to every layer. Per-layer tables (MixedRoPE3D) travel as one `LayerwiseTables` object for all layers
and a forward pre-hook on each attention module picks its slice. Nothing outlives the forward: the active positions
live in a ContextVar that the `with` block resets, so a `generate()` running in a worker thread sees only its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.pe.apply import QKTable, current_observer, install_apply
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.positions import PointPositions

# Positions of the forward running in this thread/context, one entry per PositionEncoding (normally zero or one).
_ACTIVE: ContextVar[tuple[tuple[PositionEncoding, PointPositions], ...]] = ContextVar(
    "spatialvlm_point_positions", default=())


@dataclass(frozen=True)
class LMShape:
    """The language-model sizes a variant needs, read from a Qwen2/Llama PretrainedConfig."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int

    @classmethod
    def from_config(cls, config: Any) -> LMShape:
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        if head_dim % 2:
            raise ConfigError(f"head_dim {head_dim} is odd: rotary pairs need an even head dimension")
        if heads % kv_heads:
            raise ConfigError(f"{heads} attention heads are not a multiple of {kv_heads} key/value heads")
        rope = getattr(config, "rope_parameters", None) or {}
        if float(rope.get("partial_rotary_factor", 1.0)) != 1.0:
            raise ConfigError("language models with partial rotary embeddings are not supported")
        return cls(config.hidden_size, config.num_hidden_layers, heads, kv_heads, head_dim)


class PositionEncoding(nn.Module):
    """Base of all variants. Subclasses set `Options` and override what they change; the base is a no-op."""

    name: ClassVar[str]
    Options: ClassVar[type[PEOptions]] = PEOptions

    def __init__(self, merge_rule: str, lm_config: Any, options: PEOptions) -> None:
        super().__init__()
        self.merge_rule = merge_rule
        self.options = options
        self.lm_shape = LMShape.from_config(lm_config)
        object.__setattr__(self, "_decoder", None)  # not a submodule: the decoder belongs to the model
        self._hooks: list[RemovableHandle] = []

    def spec(self) -> dict[str, Any]:
        """Plain dict to store in the model config; `build_position_encoding(**spec, lm_config=...)` rebuilds it."""
        return {"name": self.name, "merge_rule": self.merge_rule, "options": self.options.to_dict()}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, merge_rule={self.merge_rule!r}, options={self.options}"

    @property
    def decoder(self) -> nn.Module | None:
        """The decoder this encoding is attached to, if any."""
        return self._decoder

    def attach(self, decoder: nn.Module) -> None:
        """Install into `decoder` (a Qwen2Model / LlamaModel). Touches only this instance; no-op for None."""
        self._check_unattached()
        object.__setattr__(self, "_decoder", decoder)

    def _check_unattached(self) -> None:
        if self._decoder is not None:
            raise ConfigError(f"positional encoding '{self.name}' is already attached to a decoder")

    def detach(self) -> None:
        """Undo `attach`: the decoder behaves exactly as a stock one again."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        object.__setattr__(self, "_decoder", None)

    def embed_points(self, inputs_embeds: Tensor, positions: PointPositions) -> Tensor:
        """(B, S, C) token embeddings -> (B, S, C). Identity except for additive variants (3D_Sinusoidal)."""
        return inputs_embeds

    @contextlib.contextmanager
    def positions(self, positions: PointPositions) -> Iterator[None]:
        """Make `positions` the point layout of the forward(s) run inside the block, in this thread only."""
        token = _ACTIVE.set((*_ACTIVE.get(), (self, positions)))
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def active_positions(self) -> PointPositions | None:
        """The positions set by the innermost `with self.positions(...)` of this thread, else None."""
        for owner, positions in reversed(_ACTIVE.get()):
            if owner is self:
                return positions
        return None


class LearnedParameters(nn.Module):
    """A module holding a variant's learned parameters. Models call `reset_parameters()` from their
    `_init_weights(module)` so parameters missing from a checkpoint get the variant's initialisation."""

    def reset_parameters(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class LayerwiseTables:
    """Per-layer, per-head, per-pair tables for one forward: k (L, B, Hkv, S, D/2); q (L, B, Hq, S, D/2) or None
    when tied (query heads then use their key/value head's table)."""

    cos_k: Tensor
    sin_k: Tensor
    cos_q: Tensor | None = None
    sin_q: Tensor | None = None

    def for_layer(self, index: int) -> tuple[QKTable, QKTable]:
        """The (cos, sin) of layer `index` in the form `apply_rotary` understands."""
        cos_k, sin_k = self.cos_k[index], self.sin_k[index]
        if self.cos_q is None or self.sin_q is None:
            return QKTable(cos_k, cos_k), QKTable(sin_k, sin_k)
        return QKTable(self.cos_q[index], cos_k), QKTable(self.sin_q[index], sin_k)


class RotaryPositionEncoding(PositionEncoding):
    """A variant that changes the rotation of point tokens. Subclasses implement `rotary_tables`."""

    layerwise: ClassVar[bool] = False  # True: `rotary_tables` returns LayerwiseTables

    def rotary_tables(self, stock_cos: Tensor, stock_sin: Tensor, positions: PointPositions,
                      attention_scaling: float) -> tuple[Tensor, Tensor] | LayerwiseTables:
        """Tables for a forward with point tokens. stock_cos/sin: (B, S, D) of the model's 1-D RoPE at
        `positions.position_ids`, in the model dtype; text rows must come back unchanged."""
        raise NotImplementedError

    def attach(self, decoder: nn.Module) -> None:
        self._check_unattached()
        layers = getattr(decoder, "layers", None)
        stock = getattr(decoder, "rotary_emb", None)
        if stock is None or layers is None or not all(hasattr(layer, "self_attn") for layer in layers):
            raise ConfigError(f"'{type(decoder).__name__}' has no rotary_emb/layers[i].self_attn: positional "
                              f"encoding '{self.name}' needs a Qwen2Model or LlamaModel")
        if isinstance(stock, PointAwareRotary):
            raise ConfigError(f"the decoder already carries positional encoding '{stock.encoding.name}'; detach it "
                              f"before attaching '{self.name}'")
        if len(layers) != self.lm_shape.num_layers:
            raise ConfigError(f"decoder has {len(layers)} layers but the encoding was built for "
                              f"{self.lm_shape.num_layers}")
        modules = {sys.modules[type(layer.self_attn).__module__] for layer in layers}
        for module in modules:
            if not hasattr(module, "apply_rotary_pos_emb"):
                raise ConfigError(f"'{module.__name__}' has no apply_rotary_pos_emb to extend")
        super().attach(decoder)
        for module in modules:
            install_apply(module)
        decoder.rotary_emb = PointAwareRotary(stock, self)
        if self.layerwise:
            for index, layer in enumerate(layers):
                self._hooks.append(layer.self_attn.register_forward_pre_hook(_layer_slicer(index), with_kwargs=True))

    def detach(self) -> None:
        decoder = self._decoder
        if decoder is not None and isinstance(decoder.rotary_emb, PointAwareRotary):
            decoder.rotary_emb = decoder.rotary_emb.stock
        super().detach()


class PointAwareRotary(nn.Module):
    """Stand-in for `decoder.rotary_emb`: stock (cos, sin) (B, S, D) unless point positions are active."""

    def __init__(self, stock: nn.Module, encoding: RotaryPositionEncoding) -> None:
        super().__init__()
        self.stock = stock
        object.__setattr__(self, "encoding", encoding)  # not a submodule: its parameters belong to the model

    def forward(self, x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor] | LayerwiseTables:
        """x: (B, S, C) hidden states (dtype and device); position_ids: (B, S) int64. Llama passes it by keyword."""
        cos, sin = self.stock(x, position_ids)
        positions = self.encoding.active_positions()
        if positions is None:
            return cos, sin
        if positions.point_mask.shape != position_ids.shape:
            raise InputError(f"point positions cover shape {tuple(positions.point_mask.shape)} but the forward has "
                             f"position_ids {tuple(position_ids.shape)}: pass position_ids=positions.position_ids "
                             f"and leave decode steps outside `with pe.positions(...)`")
        scaling = float(getattr(self.stock, "attention_scaling", 1.0))
        with torch.autocast(device_type=x.device.type, enabled=False):
            tables = self.encoding.rotary_tables(cos, sin, positions, scaling)
        observer = current_observer()
        if observer is not None:
            observer.on_tables(positions, (cos, sin), tables)
        return tables


def _layer_slicer(index: int) -> Callable[[nn.Module, tuple, dict], tuple[tuple, dict] | None]:
    """Forward pre-hook for attention layer `index`: replace LayerwiseTables by that layer's (cos, sin)."""

    def pick_layer(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        tables = kwargs.get("position_embeddings")
        if isinstance(tables, LayerwiseTables):
            kwargs["position_embeddings"] = tables.for_layer(index)
            return args, kwargs
        return None

    return pick_layer
