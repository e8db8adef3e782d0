"""The model to train: an architecture in the preset format (YAML path or shipped preset name) with a chosen PE.

Training starts from the preset's seeded random weights, built by the same `build_preset` that `--model tiny-qwen`
uses, so the trained model is an ordinary SpatialLM-style checkpoint once saved.
"""

from __future__ import annotations

from typing import Any

import torch

from spatialvlm_cli.model.loading import KEEP, LoadedModel
from spatialvlm_cli.model.presets import build_preset, preset_config, read_preset
from spatialvlm_cli.model.processing import SpatialLMProcessor
from spatialvlm_cli.model.tokenizer import load_bundled_tokenizer


def build_processor(architecture: str) -> SpatialLMProcessor:
    """The processor of an architecture, without building its weights (cheap; used by data workers)."""
    preset = read_preset(architecture)
    tokenizer = load_bundled_tokenizer(preset["chat_format"])
    return SpatialLMProcessor(tokenizer, preset_config(preset, tokenizer))


def build_untrained_model(
    architecture: str,
    vlm_pe: str | None = KEEP,
    merge_rule: str | None = KEEP,
    pe_options: dict[str, Any] | None = None,
) -> LoadedModel:
    """The architecture's seeded random weights on CPU in float32, with the PE swapped in, in train mode."""
    overrides = {"vlm_pe": vlm_pe, "merge_rule": merge_rule, "pe_options": pe_options}
    loaded = build_preset(read_preset(architecture), architecture, torch.device("cpu"), torch.float32, overrides,
                          "sdpa")
    loaded.model.train()
    return loaded
