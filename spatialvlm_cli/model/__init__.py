"""SpatialLM-style point-cloud language models: configs, model classes, processor, loading and presets.

Importing this package registers `spatiallm_qwen` and `spatiallm_llama` with transformers' AutoConfig and
AutoModelForCausalLM, so `AutoModelForCausalLM.from_pretrained(<SpatialLM checkpoint>)` works without remote code.
"""

from __future__ import annotations

from spatialvlm_cli.versions import warn_untested_versions

warn_untested_versions()  # one warning line per dependency outside its tested window

from transformers import AutoConfig, AutoModelForCausalLM

from spatialvlm_cli.model.config import SpatialLMLlamaConfig, SpatialLMQwenConfig
from spatialvlm_cli.model.loaded import LoadedModel
from spatialvlm_cli.model.loading import DEFAULT_MODEL, list_presets, list_shipped_models, load_spatiallm
from spatialvlm_cli.model.modeling import SpatialLMLlamaForCausalLM, SpatialLMQwenForCausalLM
from spatialvlm_cli.model.processing import SpatialLMProcessor
from spatialvlm_cli.pe.spec import KEEP

AutoConfig.register(SpatialLMQwenConfig.model_type, SpatialLMQwenConfig, exist_ok=True)
AutoConfig.register(SpatialLMLlamaConfig.model_type, SpatialLMLlamaConfig, exist_ok=True)
AutoModelForCausalLM.register(SpatialLMQwenConfig, SpatialLMQwenForCausalLM, exist_ok=True)
AutoModelForCausalLM.register(SpatialLMLlamaConfig, SpatialLMLlamaForCausalLM, exist_ok=True)

__all__ = [
    "DEFAULT_MODEL",
    "KEEP",
    "LoadedModel",
    "SpatialLMLlamaConfig",
    "SpatialLMLlamaForCausalLM",
    "SpatialLMProcessor",
    "SpatialLMQwenConfig",
    "SpatialLMQwenForCausalLM",
    "list_presets",
    "list_shipped_models",
    "load_spatiallm",
]
