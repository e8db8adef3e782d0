"""The interface every variant implements, and what a prefill with point tokens hands the attention layers.

Lifecycle (see `spatialvlm_cli/pe/__init__.py` for the contract with the model):
    pe = build_position_encoding(spec, lm_config)                 a submodule of the model (learned parameters)
    embeds = pe.embed_points(embeds, positions)                    identity unless 3D_Sinusoidal
    rotary = pe.point_rotary(stock_cos, stock_sin, positions, s)   tables for every layer of this forward
    decoder(inputs_embeds=embeds, position_ids=positions.position_ids, point_rotary=rotary, ...)

Nothing is installed into transformers and nothing outlives the forward: the tables travel as an explicit argument
to the model's own attention layers (`spatialvlm_cli.model.attention`), which rotate with them at prefill and with
the decoder's stock (cos, sin) otherwise (decode steps, text-only forwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.pe.apply import QKTable
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.positions import PointPositions

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class LMShape:
    """The language-model sizes a variant needs, read from a Qwen2/Llama PretrainedConfig."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> LMShape:
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

    def __init__(self, merge_rule: str, lm_config: PretrainedConfig, options: PEOptions) -> None:
        super().__init__()
        self.merge_rule = merge_rule
        self.options = options
        self.lm_shape = LMShape.from_config(lm_config)

    def spec(self) -> dict[str, Any]:
        """Plain dict to store in the model config; `build_position_encoding(**spec, lm_config=...)` rebuilds it."""
        return {"name": self.name, "merge_rule": self.merge_rule, "options": self.options.to_dict()}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, merge_rule={self.merge_rule!r}, options={self.options}"

    def embed_points(self, inputs_embeds: Tensor, positions: PointPositions) -> Tensor:
        """(B, S, C) token embeddings -> (B, S, C). Identity except for additive variants (3D_Sinusoidal)."""
        return inputs_embeds

    def point_rotary(self, stock_cos: Tensor, stock_sin: Tensor, positions: PointPositions,
                     attention_scaling: float = 1.0) -> PointRotary:
        """What the attention layers of a prefill with point tokens rotate with. stock_cos/sin: (B, S, D) of the
        model's 1-D RoPE at `positions.position_ids`. Variants that leave attention alone hand the stock tables on
        (the same arithmetic as the stock attention, so results stay bit-identical)."""
        _check_shape(stock_cos, positions)
        return PointRotary(positions, (stock_cos, stock_sin))


def _check_shape(stock_cos: Tensor, positions: PointPositions) -> None:
    if positions.point_mask.shape != stock_cos.shape[:2]:
        raise InputError(f"point positions cover shape {tuple(positions.point_mask.shape)} but the forward has "
                         f"{tuple(stock_cos.shape[:2])} tokens: point positions belong to the prefill only")


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


@dataclass(frozen=True)
class PointRotary:
    """The rotation of one prefill with point tokens, for every attention layer.

    positions: the tokens' positions (1-D ids, point mask, grid cells). tables: (cos, sin) (B, S, D) shared by all
    layers, or LayerwiseTables (MixedRoPE3D)."""

    positions: PointPositions
    tables: tuple[Tensor, Tensor] | LayerwiseTables

    def for_layer(self, index: int) -> tuple[Tensor | QKTable, Tensor | QKTable]:
        """The (cos, sin) attention layer `index` rotates q and k with (see `apply_rotary`)."""
        if isinstance(self.tables, LayerwiseTables):
            return self.tables.for_layer(index)
        return self.tables


class RotaryPositionEncoding(PositionEncoding):
    """A variant that changes the rotation of point tokens. Subclasses implement `rotary_tables`."""

    def rotary_tables(self, stock_cos: Tensor, stock_sin: Tensor, positions: PointPositions,
                      attention_scaling: float) -> tuple[Tensor, Tensor] | LayerwiseTables:
        """Tables for a forward with point tokens. stock_cos/sin: (B, S, D) of the model's 1-D RoPE at
        `positions.position_ids`, in the model dtype; text rows must come back unchanged."""
        raise NotImplementedError

    def point_rotary(self, stock_cos: Tensor, stock_sin: Tensor, positions: PointPositions,
                     attention_scaling: float = 1.0) -> PointRotary:
        _check_shape(stock_cos, positions)
        with torch.autocast(device_type=stock_cos.device.type, enabled=False):
            tables = self.rotary_tables(stock_cos, stock_sin, positions, attention_scaling)
        return PointRotary(positions, tables)
