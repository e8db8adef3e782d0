"""The panorama VLM families: which transformers model types they cover and which PanoRoPE variant fits them."""

from __future__ import annotations

from dataclasses import dataclass

from spatialvlm_cli.errors import ConfigError, ModelLoadError
from spatialvlm_cli.panorama.positions import PANO_ROPE_1D, PANO_ROPE_MROPE


@dataclass(frozen=True)
class ModelFamily:
    """name: our name. model_type: transformers' `config.model_type`. rope: '1d' (position ids (B, L)) or
    'mrope' (Qwen-VL's (3, B, L) t/h/w ids, fed as (4, B, L) with a leading text row). pano_pe: the `--VLM_PE`
    name of the PanoRoPE variant that fits it."""

    name: str
    model_type: str
    rope: str
    pano_pe: str
    example_checkpoint: str


FAMILIES: dict[str, ModelFamily] = {
    family.model_type: family
    for family in (
        ModelFamily("internvl", "internvl", "1d", PANO_ROPE_1D, "OpenGVLab/InternVL3_5-1B-HF"),
        ModelFamily("gemma3", "gemma3", "1d", PANO_ROPE_1D, "google/gemma-3-4b-it"),
        ModelFamily("qwen2.5-vl", "qwen2_5_vl", "mrope", PANO_ROPE_MROPE, "Qwen/Qwen2.5-VL-3B-Instruct"),
        ModelFamily("qwen3-vl", "qwen3_vl", "mrope", PANO_ROPE_MROPE, "Qwen/Qwen3-VL-2B-Instruct"),
    )
}


def family_for_model_type(model_type: str, spec: str) -> ModelFamily:
    """The family of a checkpoint's `config.model_type`; ModelLoadError naming the supported ones otherwise."""
    if model_type not in FAMILIES:
        supported = ", ".join(f"{f.model_type} (e.g. {f.example_checkpoint})" for f in FAMILIES.values())
        raise ModelLoadError(f"'{spec}' is a '{model_type}' model; panorama inference supports {supported}")
    return FAMILIES[model_type]


def check_vlm_pe(family: ModelFamily, vlm_pe: str | None) -> None:
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
