"""Point-cloud presets: SpatialLM-shaped models with seeded RANDOM weights, described by YAML files in
`assets/presets/` (read by the shared `spatialvlm_cli/presets.py`, like the panorama presets).

They exist so that the whole pipeline (processor, encoder, PE, generate, layout parsing) runs with no download:
`tiny-qwen` / `tiny-llama` for tests, `spatiallm1.1-qwen-0.5b-shape` (the real sizes) for benchmarks. Their
output is meaningless; loading one logs a warning and sets `LoadedModel.random_weights`.

A point-cloud preset file has exactly these keys (unknown keys are errors):
    description: str             one line
    model_type: spatiallm_qwen | spatiallm_llama   (a spatiallm_* type makes it a point-cloud preset)
    chat_format: qwen | llama    template and special tokens of the bundled tokenizer
    seed: int                    weights are a function of the seed only (built on CPU in float32)
    decoder: {...}               Qwen2Config / LlamaConfig fields (vocab_size defaults to the tokenizer's size)
    point_backbone: str          sonata | scenescript
    point_config: {...}          encoder options incl. num_bins
    projector: linear | mlp
    vlm_pe, pcd_pe_merge_rule, pe: positional encoding (null: stock 1-D RoPE)
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.initialization import no_init_weights

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.config import SpatialLMLlamaConfig, SpatialLMQwenConfig
from spatialvlm_cli.model.loaded import LoadedModel, apply_pe_overrides, finalise_model
from spatialvlm_cli.model.processing import SpatialLMProcessor
from spatialvlm_cli.model.prompt import POINT_END_TOKEN, POINT_PAD_TOKEN, POINT_START_TOKEN
from spatialvlm_cli.model.tokenizer import load_bundled_tokenizer
from spatialvlm_cli.presets import POINT_CLOUD, read_preset_file

log = logging.getLogger(__name__)

# The preset with SpatialLM1.1-Qwen-0.5B's sizes: the one definition of SpatialLM 1.1's Sonata encoder config, which
# scripts/bench_encoder.py and the encoder tests read from it.
SPATIALLM_1_1_SHAPE = "spatiallm1.1-qwen-0.5b-shape"

# Every key a point-cloud preset file may have, with the type of its value (checked by `typed_config.check_value`).
PRESET_KEYS: dict[str, Any] = {
    "description": str,
    "model_type": str,
    "chat_format": str,
    "seed": int,
    "decoder": dict,
    "point_backbone": str,
    "point_config": dict,
    "projector": str,
    "vlm_pe": str | None,
    "pcd_pe_merge_rule": str | None,
    "pe": dict | None,
}
REQUIRED_KEYS = ("model_type", "chat_format", "seed", "decoder", "point_backbone", "point_config")


def read_preset(spec: str) -> dict[str, Any]:
    """Parse and validate a point-cloud preset given by name (shipped) or by YAML path."""
    return read_preset_file(spec, PRESET_KEYS, required=REQUIRED_KEYS, kind=POINT_CLOUD)


def preset_config(preset: dict[str, Any],
                  tokenizer: PreTrainedTokenizerBase) -> SpatialLMQwenConfig | SpatialLMLlamaConfig:
    """The model config of a preset: decoder fields + point fields + token ids taken from the tokenizer."""
    classes = {"spatiallm_qwen": SpatialLMQwenConfig, "spatiallm_llama": SpatialLMLlamaConfig}
    if preset["model_type"] not in classes:
        raise ConfigError(f"preset model_type must be one of {', '.join(classes)}, got '{preset['model_type']}'")
    decoder = dict(preset["decoder"])
    vocab_size = decoder.pop("vocab_size", len(tokenizer))
    if vocab_size < len(tokenizer):
        raise ConfigError(f"preset vocab_size {vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens")
    return classes[preset["model_type"]](
        **decoder,
        vocab_size=vocab_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        point_backbone=preset["point_backbone"],
        point_config=dict(preset["point_config"]),
        projector=preset.get("projector", "linear"),
        point_start_token_id=tokenizer.convert_tokens_to_ids(POINT_START_TOKEN),
        point_end_token_id=tokenizer.convert_tokens_to_ids(POINT_END_TOKEN),
        point_token_id=tokenizer.convert_tokens_to_ids(POINT_PAD_TOKEN),
        vlm_pe=preset.get("vlm_pe"),
        pcd_pe_merge_rule=preset.get("pcd_pe_merge_rule"),
        pe=dict(preset.get("pe") or {}),
    )


def cast_parameters(model: PreTrainedModel, dtype: torch.dtype) -> None:
    """Cast floating parameters to `dtype` except the modules kept in float32 (encoder, learned PE); buffers such
    as rotary frequency tables keep their own dtype, as from_pretrained(dtype=...) leaves them."""
    keep = tuple(f"{prefix}." for prefix in model._keep_in_fp32_modules_strict)
    for name, parameter in model.named_parameters():
        if parameter.is_floating_point() and not name.startswith(keep):
            parameter.data = parameter.data.to(dtype)


def build_preset(
    preset: dict[str, Any],
    spec: str,
    device: torch.device,
    dtype: torch.dtype,
    overrides: dict[str, Any],
    attn_implementation: str | None,
    warn: bool = True,
) -> LoadedModel:
    """A `LoadedModel` with seeded random weights (identical on every device; bf16 = rounded fp32); `warn` logs
    that its output is meaningless."""
    tokenizer = load_bundled_tokenizer(preset["chat_format"])
    config = preset_config(preset, tokenizer)
    apply_pe_overrides(config, overrides["vlm_pe"], overrides["merge_rule"], overrides["pe_options"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(preset["seed"])
        # Construct without torch's per-layer default init (overwritten anyway), then run the model's own init
        # once: halves the build time of the 0.5B preset.
        with no_init_weights():
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
        model.init_weights()
    cast_parameters(model, dtype)
    model = finalise_model(model, device)
    if warn:
        log.warning("'%s' is a preset: its weights are RANDOM (seed %d), its output is meaningless", spec,
                    preset["seed"])
    return LoadedModel(
        model=model,
        processor=SpatialLMProcessor(tokenizer, model.config),
        source="preset",
        spec=spec,
        random_weights=True,
    )
