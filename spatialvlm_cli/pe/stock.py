"""`--VLM_PE None`: the language model's own 1-D RoPE for every token; the model is left untouched."""

from __future__ import annotations

from dataclasses import dataclass

from spatialvlm_cli.pe.base import PositionEncoding
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.registry import NO_PE, register


@dataclass(frozen=True)
class StockOptions(PEOptions):
    """No hyper-parameters."""


@register(NO_PE)
class StockRoPE(PositionEncoding):
    """Point tokens are ordinary tokens at their sequential 1-D positions (SpatialLM's behaviour).
    `attach`, `embed_points` and `positions` change nothing, so logits are bit-identical to plain transformers."""

    Options = StockOptions
