"""The model to train: anything `--model` takes (a checkpoint folder, a shipped model, a hub id, or a preset's
seeded random weights), loaded through the same `load_spatiallm` as `infer`, with the chosen PE, in float32 and
train mode. A PE swap initialises the new PE's parameters as `--VLM_PE` does at inference; the trained model is an
ordinary SpatialLM-style checkpoint once saved.
"""

from __future__ import annotations

from typing import Any

from spatialvlm_cli.model.loading import KEEP, LoadedModel, load_spatiallm
from spatialvlm_cli.pe.spec import Keep


def load_for_training(
    spec: str,
    vlm_pe: str | Keep | None = KEEP,
    merge_rule: str | Keep | None = KEEP,
    pe_options: dict[str, Any] | None = None,
    device: str = "cpu",
    attention_weights: bool = False,
) -> LoadedModel:
    """The model of `spec` on `device` in float32 with the PE swapped in, in train mode (a preset's random weights
    are where training from scratch starts: no warning). attention_weights: eager attention, whose forward can
    return the attention weights (`output_attentions`), instead of SDPA."""
    loaded = load_spatiallm(spec, device=device, dtype="float32", vlm_pe=vlm_pe, merge_rule=merge_rule,
                            pe_options=pe_options, attn_implementation="eager" if attention_weights else "sdpa",
                            warn_random=False)
    loaded.model.train()
    return loaded
