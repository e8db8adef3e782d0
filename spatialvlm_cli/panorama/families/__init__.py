"""The panorama VLM families, one class each (see `base.py`), keyed by transformers' `config.model_type`.

Adding a family: a module here with a `PanoramaFamily` subclass (usually of `RoPE1DFamily` or `MRoPEFamily`), its
chat template in `assets/panorama/`, a line in FAMILIES below and its tiny preset, a YAML file in `assets/presets/`
(format in `panorama/presets.py`).
"""

from __future__ import annotations

from spatialvlm_cli.errors import ConfigError, ModelLoadError
from spatialvlm_cli.panorama.families.base import MRoPEFamily, PanoramaFamily, RoPE1DFamily, TinyTokens
from spatialvlm_cli.panorama.families.gemma3 import Gemma3
from spatialvlm_cli.panorama.families.internvl import InternVL
from spatialvlm_cli.panorama.families.qwen_vl import Qwen3VL, Qwen25VL
from spatialvlm_cli.panorama.positions import PANO_ROPE_1D, PANO_ROPE_MROPE

FAMILIES: dict[str, PanoramaFamily] = {
    family.model_type: family for family in (InternVL(), Gemma3(), Qwen25VL(), Qwen3VL())
}


def family_for_model_type(model_type: str, spec: str) -> PanoramaFamily:
    """The family of a checkpoint's `config.model_type`; ModelLoadError naming the supported ones otherwise."""
    if model_type not in FAMILIES:
        supported = ", ".join(f"{f.model_type} (e.g. {f.example_checkpoint})" for f in FAMILIES.values())
        raise ModelLoadError(f"'{spec}' is a '{model_type}' model; panorama inference supports {supported}")
    return FAMILIES[model_type]


def check_vlm_pe(family: PanoramaFamily, vlm_pe: str | None) -> None:
    """ConfigError when `--VLM_PE` does not fit the model (e.g. PanoRoPE_1D on Qwen-VL's 3-D M-RoPE)."""
    if vlm_pe is None or vlm_pe == family.pano_pe:
        return
    if vlm_pe in (PANO_ROPE_1D, PANO_ROPE_MROPE):
        kind = "1-D RoPE" if family.rope == "1d" else "3-D M-RoPE"
        raise ConfigError(
            f"--VLM_PE {vlm_pe} does not fit a {family.model_type} model ({kind}); use --VLM_PE {family.pano_pe} "
            "or None"
        )
    raise ConfigError(
        f"--VLM_PE {vlm_pe} is a point-cloud encoding; for a {family.model_type} panorama model use "
        f"{family.pano_pe} or None"
    )


__all__ = [
    "FAMILIES",
    "Gemma3",
    "InternVL",
    "MRoPEFamily",
    "PanoramaFamily",
    "Qwen3VL",
    "Qwen25VL",
    "RoPE1DFamily",
    "TinyTokens",
    "check_vlm_pe",
    "family_for_model_type",
]
