"""What every model source hands back (`LoadedModel`) and the steps all of them share: PE overrides on the config
before the model is built, and the final placement on a device. `loading.py` and `presets.py` both build on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from spatialvlm_cli.model.config import SpatialLMLlamaConfig, SpatialLMQwenConfig
    from spatialvlm_cli.model.modeling import SpatialLMLlamaForCausalLM, SpatialLMQwenForCausalLM
    from spatialvlm_cli.model.processing import SpatialLMProcessor


@dataclass
class LoadedModel:
    """A model ready for `generate`, with what is needed to feed it.

    model: SpatialLM{Qwen,Llama}ForCausalLM in eval mode on its device (encoder float32).
    processor: `SpatialLMProcessor` (point clouds -> input_ids, attention_mask, point_clouds).
    num_bins: input grid cells per 32 m axis (grid size 32 / num_bins metres).
    source: 'local', 'shipped', 'preset' or 'hub'. random_weights: True for presets (their output is meaningless).
    """

    model: SpatialLMQwenForCausalLM | SpatialLMLlamaForCausalLM
    tokenizer: PreTrainedTokenizerBase
    processor: SpatialLMProcessor
    num_bins: int
    source: str
    spec: str
    random_weights: bool = False


def apply_pe_overrides(config: SpatialLMQwenConfig | SpatialLMLlamaConfig, vlm_pe: str | None, merge_rule: str | None,
                       pe_options: dict[str, Any] | None) -> bool:
    """Store the stored spec with load-time overrides (see `PESpec.overridden`) in the config, before the model is
    built from it; returns True when the PE differs from the stored one."""
    stored = config.pe_spec
    spec = stored.overridden(vlm_pe, merge_rule, pe_options)
    for name, value in spec.config_fields().items():
        setattr(config, name, value)
    return spec != stored


def finalise_model(model: SpatialLMQwenForCausalLM | SpatialLMLlamaForCausalLM,
                   device: torch.device) -> SpatialLMQwenForCausalLM | SpatialLMLlamaForCausalLM:
    """Move to the device, keep the encoder in float32, eval mode."""
    model = model.to(device=device)
    model.set_point_backbone_dtype(torch.float32)
    return model.eval()
