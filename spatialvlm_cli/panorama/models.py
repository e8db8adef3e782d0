"""Loading a panorama VLM (InternVL3.5, Gemma3, Qwen2.5-VL, Qwen3-VL): checkpoint folder, hub id or tiny preset.

Every source goes through the same path: `AutoConfig` (family check), `AutoModelForImageTextToText` and the
checkpoint's tokenizer / image processor / chat template (`PanoramaProcessor`). A preset is first written as a
checkpoint folder (`presets.save_tiny_checkpoint`) and then loaded like any other.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch
from huggingface_hub.constants import is_offline_mode
from transformers import AutoConfig, AutoModelForImageTextToText, PreTrainedModel
from transformers.utils import logging as hf_logging

from spatialvlm_cli.device import resolve_device, resolve_dtype
from spatialvlm_cli.errors import ModelLoadError
from spatialvlm_cli.io.model_source import offline_hub_problem
from spatialvlm_cli.loaded import Loaded
from spatialvlm_cli.panorama.families import PanoramaFamily, family_for_model_type
from spatialvlm_cli.panorama.presets import save_tiny_checkpoint
from spatialvlm_cli.panorama.processing import PanoramaProcessor
from spatialvlm_cli.panorama.source import alternatives, model_source

log = logging.getLogger(__name__)


class LoadedPanoramaModel(Loaded[PreTrainedModel, PanoramaProcessor]):
    """A panorama VLM (see `Loaded`): model `*ForConditionalGeneration` in eval mode on its device; processor:
    (images, prompt) -> inputs; source: 'local', 'preset' or 'hub'."""

    @property
    def family(self) -> PanoramaFamily:
        return self.processor.family


def load_panorama_model(
    spec: str, *, device: str = "auto", dtype: str = "auto", attn_implementation: str | None = None
) -> LoadedPanoramaModel:
    """Load `spec`: a checkpoint folder, a preset name (see `source.panorama_presets`) or an `owner/name` hub id.

    device: auto | cpu | cuda[:N] | mps. dtype: auto (bfloat16 on CUDA, float32 elsewhere) | float32 | bfloat16 |
    float16. Raises ModelLoadError (one line) when nothing can be loaded or the model is not a supported family."""
    source = model_source(spec)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if source == "local":
        path = Path(spec).expanduser()
        return _load(str(path), spec, "local", torch_device, torch_dtype, attn_implementation)
    if source == "preset":
        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a tiny preset writes and reads back in well under a second
        try:
            with tempfile.TemporaryDirectory(prefix="spatialvlm-preset-") as folder:
                save_tiny_checkpoint(spec, Path(folder))
                loaded = _load(folder, spec, "preset", torch_device, torch_dtype, attn_implementation)
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()
        loaded.random_weights = True
        return loaded
    _fail_fast_offline(spec)
    return _load(spec, spec, "hub", torch_device, torch_dtype, attn_implementation)


def _fail_fast_offline(spec: str) -> None:
    """ModelLoadError in seconds when the hub is out of reach (or HF_HUB_OFFLINE is set) and `spec` is not in the
    local cache, instead of after transformers' retries."""
    problem = offline_hub_problem(spec)
    if problem:
        raise ModelLoadError(f"{problem}; {alternatives()}")


def _load(
    location: str, spec: str, source: str, device: torch.device, dtype: torch.dtype, attn_implementation: str | None
) -> LoadedPanoramaModel:
    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as error:
        raise _load_error(spec, source, error) from error
    family = family_for_model_type(config.model_type, spec)
    try:
        processor = PanoramaProcessor.from_pretrained(location, family, config)
        model = AutoModelForImageTextToText.from_pretrained(
            location, config=config, dtype=dtype, attn_implementation=attn_implementation
        )
    except (OSError, ValueError) as error:
        raise _load_error(spec, source, error) from error
    config_token = getattr(config, "image_token_id", None)
    if config_token is not None and int(config_token) != processor.image_token_id:
        raise ModelLoadError(
            f"checkpoint '{spec}': the tokenizer's image token id {processor.image_token_id} is not the model's "
            f"image_token_id {config_token}"
        )
    return LoadedPanoramaModel(model=model.to(device).eval(), processor=processor, spec=spec, source=source)


def _load_error(spec: str, source: str, error: Exception) -> ModelLoadError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if source != "hub":
        return ModelLoadError(f"cannot load checkpoint '{spec}': {reason[:200]}")
    if is_offline_mode():
        reason = "offline: HF_HUB_OFFLINE is set"
    return ModelLoadError(f"cannot load '{spec}' from the Hugging Face hub ({reason[:160]}); {alternatives()}")
