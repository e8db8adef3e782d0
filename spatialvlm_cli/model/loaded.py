"""What every point-cloud model source hands back (`LoadedModel`) and the steps all of them share: PE overrides on
the config before the model is built, and the final placement on a device. `loading.py` and `presets.py` both build
on it."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from spatialvlm_cli.loaded import Loaded
from spatialvlm_cli.model.config import SpatialLMLlamaConfig, SpatialLMQwenConfig
from spatialvlm_cli.model.modeling import SpatialLMModel
from spatialvlm_cli.model.processing import SpatialLMProcessor


class LoadedModel(Loaded[SpatialLMModel, SpatialLMProcessor]):
    """A SpatialLM-style model (see `Loaded`): model in eval mode on its device (encoder float32); processor:
    point clouds -> input_ids, attention_mask, point_clouds."""

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.processor.tokenizer

    @property
    def num_bins(self) -> int:
        """Input grid cells per 32 m axis (grid size 32 / num_bins metres)."""
        return self.model.num_bins


def apply_pe_overrides(config: SpatialLMQwenConfig | SpatialLMLlamaConfig, vlm_pe: str | None, merge_rule: str | None,
                       pe_options: dict[str, Any] | None) -> bool:
    """Store the stored spec with load-time overrides (see `PESpec.overridden`) in the config, before the model is
    built from it; returns True when the PE differs from the stored one."""
    stored = config.pe_spec
    spec = stored.overridden(vlm_pe, merge_rule, pe_options)
    for name, value in spec.config_fields().items():
        setattr(config, name, value)
    return spec != stored


def finalise_model(model: SpatialLMModel, device: torch.device) -> SpatialLMModel:
    """Move to the device (dtypes as they are: the encoder is already float32) and into eval mode."""
    return model.to(device=device).eval()
