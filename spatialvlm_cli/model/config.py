"""Configs of the SpatialLM-style models: a Qwen2 or Llama decoder config plus the point-cloud fields.

Field names are SpatialLM's (`point_backbone`, `point_config`, `projector`, `point_*_token_id`), so a real
SpatialLM `config.json` loads unchanged. Ours are `vlm_pe`, `pcd_pe_merge_rule` and `pe`; a checkpoint without them
gets None (stock 1-D RoPE), which is what SpatialLM itself runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import LlamaConfig, Qwen2Config

from spatialvlm_cli.errors import ConfigError

PROJECTORS = ("linear", "mlp")


@dataclass(kw_only=True, repr=False)
class PointCloudFields:
    """The fields both model families add to their decoder config.

    point_backbone: encoder name ('sonata' or 'scenescript', see `spatialvlm_cli.encoders`).
    point_config: the encoder's constructor options, with `num_bins` (input grid cells per 32 m axis).
    projector: 'linear' (Linear(C, hidden)) or 'mlp' (Linear(C, C), GELU, Linear(C, hidden)).
    point_start_token_id / point_end_token_id / point_token_id: ids of `<|point_start|>`, `<|point_end|>` and
        `<|point_pad|>`; the processor writes one `<|point_pad|>` per encoder token between start and end.
    vlm_pe: positional encoding of the decoder (None: stock 1-D RoPE, or a `spatialvlm_cli.pe` variant name).
    pcd_pe_merge_rule: how 3-D positions share the head dimension ('3D_only', '3D_with_1D'); None: the variant's.
    pe: extra options of the positional encoding (variant-specific, e.g. a rope theta for the 3-D axes).
    """

    point_backbone: str = "sonata"
    point_config: dict[str, Any] | None = None
    projector: str = "linear"
    point_start_token_id: int | None = None
    point_end_token_id: int | None = None
    point_token_id: int | None = None
    vlm_pe: str | None = None
    pcd_pe_merge_rule: str | None = None
    pe: dict[str, Any] | None = None

    def _check_point_fields(self) -> None:
        # The CLI spelling "None" means stock RoPE, never a variant called "None".
        if isinstance(self.vlm_pe, str) and self.vlm_pe.strip().lower() == "none":
            self.vlm_pe = None
        if isinstance(self.pcd_pe_merge_rule, str) and self.pcd_pe_merge_rule.strip().lower() == "none":
            self.pcd_pe_merge_rule = None
        if self.projector not in PROJECTORS:
            raise ConfigError(f"projector must be one of {', '.join(PROJECTORS)}, got '{self.projector}'")
        if self.point_config is not None and not isinstance(self.point_config, dict):
            raise ConfigError(f"point_config must be a mapping, got {type(self.point_config).__name__}")
        if self.pe is None:
            self.pe = {}


class SpatialLMQwenConfig(Qwen2Config, PointCloudFields):
    """Qwen2 decoder + point encoder (SpatialLM 1.0/1.1 Qwen checkpoints)."""

    model_type = "spatiallm_qwen"

    def __post_init__(self, **kwargs: Any) -> None:
        self._check_point_fields()
        super().__post_init__(**kwargs)


class SpatialLMLlamaConfig(LlamaConfig, PointCloudFields):
    """Llama decoder + point encoder (SpatialLM 1.0/1.1 Llama checkpoints)."""

    model_type = "spatiallm_llama"

    def __post_init__(self, **kwargs: Any) -> None:
        self._check_point_fields()
        super().__post_init__(**kwargs)
