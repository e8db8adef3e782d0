"""Configs of the SpatialLM-style models: a Qwen2 or Llama decoder config plus the point-cloud fields.

Field names are SpatialLM's (`point_backbone`, `point_config`, `projector`, `point_*_token_id`), so a real
SpatialLM `config.json` loads unchanged. Ours are `vlm_pe`, `pcd_pe_merge_rule` and `pe`; a checkpoint without them
gets None (stock 1-D RoPE), which is what SpatialLM itself runs. A config of the seed fork (`VLM_PE`,
`PCD_PE_Merge_Rule`, spellings such as "1D_RoPE") is read through `PESpec.from_config` and stored in our fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import LlamaConfig, Qwen2Config

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe.spec import FORK_FIELDS, PESpec

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
    pcd_pe_merge_rule: how 3-D positions share the head dimension ('3D_only', '3D_with_1D'); None for stock RoPE.
    pe: options of the positional encoding (variant-specific, e.g. theta_3d), every field stored.
    `pe_spec` gives the three as one frozen `PESpec`.
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

    @property
    def pe_spec(self) -> PESpec:
        """The positional encoding these fields store."""
        return PESpec.from_config(self)

    def _check_point_fields(self, extra: dict[str, Any]) -> None:
        """Validate the point fields; `extra` (the config's unknown keyword arguments) may hold the seed fork's PE
        fields, which move into ours."""
        for fork_field, ours in FORK_FIELDS.items():
            value = extra.pop(fork_field, None)
            if getattr(self, ours) is None and value is not None:
                setattr(self, ours, value)
        # Parsed once, here: every spelling (ours, the CLI's "None", the seed fork's) becomes the canonical spec.
        for name, value in PESpec.from_config(self).config_fields().items():
            setattr(self, name, value)
        if self.projector not in PROJECTORS:
            raise ConfigError(f"projector must be one of {', '.join(PROJECTORS)}, got '{self.projector}'")
        if self.point_config is not None and not isinstance(self.point_config, dict):
            raise ConfigError(f"point_config must be a mapping, got {type(self.point_config).__name__}")


class SpatialLMQwenConfig(Qwen2Config, PointCloudFields):
    """Qwen2 decoder + point encoder (SpatialLM 1.0/1.1 Qwen checkpoints)."""

    model_type = "spatiallm_qwen"

    def __post_init__(self, **kwargs: Any) -> None:
        self._check_point_fields(kwargs)
        super().__post_init__(**kwargs)


class SpatialLMLlamaConfig(LlamaConfig, PointCloudFields):
    """Llama decoder + point encoder (SpatialLM 1.0/1.1 Llama checkpoints)."""

    model_type = "spatiallm_llama"

    def __post_init__(self, **kwargs: Any) -> None:
        self._check_point_fields(kwargs)
        super().__post_init__(**kwargs)
