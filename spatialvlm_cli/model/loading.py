"""Load a SpatialLM-style model from a checkpoint directory, a shipped model, a preset (random weights) or the hub.

`load_spatiallm(spec)` resolves `spec` in this order: an existing directory (a checkpoint), a model name shipped in
`assets/models/` (trained weights, e.g. the default `spatialvlm-rooms`), a `.yaml` file (a preset), a preset name
shipped in `assets/presets/`, then an `owner/name` hub id. The positional encoding of a
checkpoint can be swapped at load time (`vlm_pe`, `merge_rule`, `pe_options`); learned PE parameters the
checkpoint lacks are then freshly initialised, with a warning.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.constants import is_offline_mode
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from spatialvlm_cli.device import resolve_device, resolve_dtype
from spatialvlm_cli.errors import ModelLoadError
from spatialvlm_cli.io.model_source import HUB_ID, hub_unreachable, missing_model_path, offline_hub_problem
from spatialvlm_cli.model.loaded import LoadedModel, apply_pe_overrides, finalise_model
from spatialvlm_cli.model.presets import build_preset, preset_config, read_preset
from spatialvlm_cli.model.processing import SpatialLMProcessor
from spatialvlm_cli.model.quantize import check_quantize, quantize_model
from spatialvlm_cli.model.tokenizer import load_bundled_tokenizer
from spatialvlm_cli.pe.spec import KEEP, Keep
from spatialvlm_cli.presets import POINT_CLOUD, shipped_presets

log = logging.getLogger(__name__)

# The shipped model trained on synthetic rooms (scripts/train_rooms.py); SpatialLM's own checkpoints are a
# --model away (e.g. manycore-research/SpatialLM1.1-Qwen-0.5B or a local copy).
DEFAULT_MODEL = "spatialvlm-rooms"

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
MODEL_TYPES = ("spatiallm_qwen", "spatiallm_llama")


def list_presets() -> list[str]:
    """Names of the point-cloud presets shipped with the package (random-weight models for tests and benchmarks)."""
    return list(shipped_presets(POINT_CLOUD))


def list_shipped_models() -> list[str]:
    """Names of the trained models shipped with the package (checkpoint folders in `assets/models/`)."""
    folder = files("spatialvlm_cli").joinpath("assets/models")
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.joinpath("config.json").is_file())


def shipped_model_dir(name: str) -> Path:
    """The checkpoint folder of a shipped model (an installed package keeps its assets as plain files)."""
    return Path(str(files("spatialvlm_cli").joinpath(f"assets/models/{name}")))


def _alternatives() -> str:
    return (
        f"pass a local checkpoint directory, a shipped model ({', '.join(list_shipped_models()) or 'none'}) or a "
        f"preset name ({', '.join(list_presets())})"
    )


def check_checkpoint_dir(path: Path) -> None:
    """Raise ModelLoadError naming the first file a checkpoint directory lacks (config, weights, tokenizer)."""
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"checkpoint '{path}' has no config.json")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(f"checkpoint '{path}' has no weights (model.safetensors or pytorch_model.bin)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"checkpoint '{path}' has no tokenizer.json")


def load_spatiallm(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    vlm_pe: str | Keep | None = KEEP,
    merge_rule: str | Keep | None = KEEP,
    pe_options: dict[str, Any] | None = None,
    attn_implementation: str | None = None,
    quantize: str = "none",
    warn_random: bool = True,
) -> LoadedModel:
    """Load a model, its tokenizer and processor.

    spec: checkpoint directory | shipped model name (see `list_shipped_models`) | preset YAML path | preset name
    (see `list_presets`) | hub id.
    device: auto | cpu | cuda[:N] | mps. dtype: auto | float32 | bfloat16 | float16 (decoder and projector; the
    encoder stays float32). vlm_pe: KEEP (the checkpoint's), None or 'None' (stock 1-D RoPE), or a variant name.
    merge_rule: KEEP or None (the checkpoint's), '3D_only' or '3D_with_1D'. pe_options: PE options merged over
    the checkpoint's (over none when the variant changes).
    attn_implementation: sdpa | eager | None (transformers' default).
    quantize: none | int8 (the CPU fast path: `spatialvlm_cli.model.quantize`; ConfigError on another device).
    warn_random: log that a preset's weights are random (its output meaningless); training from a preset, where
    random weights are the starting point, turns it off.
    Raises ModelLoadError (one line) when nothing can be loaded, ConfigError for bad options."""

    source, location = _resolve(spec)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    check_quantize(quantize, torch_device)  # before the load, which takes seconds
    overrides = {"vlm_pe": vlm_pe, "merge_rule": merge_rule, "pe_options": pe_options}
    if source == "preset":
        loaded = build_preset(read_preset(spec), spec, torch_device, torch_dtype, overrides, attn_implementation,
                              warn=warn_random)
    else:
        loaded = _load_pretrained(location, spec, source, torch_device, torch_dtype, overrides, attn_implementation,
                                  local_files_only=source == "hub" and hub_unreachable() is not None)
    quantize_model(loaded.model, quantize)
    return loaded


def _resolve(spec: str) -> tuple[str, str]:
    """(source, location) of a model spec, in load_spatiallm's order: ('local', directory) | ('shipped', its
    folder) | ('preset', spec) | ('hub', hub id). Raises ModelLoadError (one line) for a missing path, an incomplete
    checkpoint, anything else, or a hub id on a machine that cannot reach the hub nor has it cached."""
    problem = missing_model_path(spec)
    if problem:
        raise ModelLoadError(problem)
    path = Path(spec).expanduser()
    if path.is_dir():
        check_checkpoint_dir(path)
        return "local", str(path)
    if spec in list_shipped_models():
        return "shipped", str(shipped_model_dir(spec))
    if spec.endswith((".yaml", ".yml")) or spec in list_presets():
        return "preset", spec
    if path.exists() or not HUB_ID.match(spec):
        raise ModelLoadError(f"'{spec}' is not a checkpoint directory, shipped model, preset or hub id; "
                             f"{_alternatives()}")
    problem = offline_hub_problem(spec)
    if problem:
        raise ModelLoadError(f"{problem}; {_alternatives()}")
    return "hub", spec


def load_processor(spec: str) -> SpatialLMProcessor:
    """The processor (tokenizer and config) of anything `load_spatiallm` takes, without building the weights: cheap,
    for processes that only prepare inputs (training examples). Raises ModelLoadError (one line)."""
    source, location = _resolve(spec)
    if source == "preset":
        preset = read_preset(spec)
        tokenizer = load_bundled_tokenizer(preset["chat_format"])
        return SpatialLMProcessor(tokenizer, preset_config(preset, tokenizer))
    local_files_only = source == "hub" and hub_unreachable() is not None
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=local_files_only)
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_files_only)
    except Exception as error:
        raise ModelLoadError(f"cannot read the processor of '{spec}' ({_first_line(error)})") from error
    if config.model_type not in MODEL_TYPES:
        raise ModelLoadError(f"'{spec}' is a '{config.model_type}' model, not one of {', '.join(MODEL_TYPES)}")
    return SpatialLMProcessor(tokenizer, config)


def _first_line(error: Exception) -> str:
    """The first non-empty line of an error's text (with the next when it ends in ':'), at most 160 characters:
    transformers adds paragraphs of advice."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or ["no details"]
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text[:160]


def _hub_error(spec: str, error: Exception) -> ModelLoadError:
    reason = _first_line(error)
    if is_offline_mode():
        reason = "offline: HF_HUB_OFFLINE is set"
    return ModelLoadError(f"cannot load '{spec}' from the Hugging Face hub ({reason}); {_alternatives()}")


def _load_pretrained(
    location: str,
    spec: str,
    source: str,
    device: torch.device,
    dtype: torch.dtype,
    overrides: dict[str, Any],
    attn_implementation: str | None,
    local_files_only: bool = False,
) -> LoadedModel:
    """Config, tokenizer and weights from a folder or the hub (the cache only with local_files_only). Whatever a
    broken checkpoint raises (a truncated or garbage model.safetensors, a corrupt tokenizer.json, a config.json
    field of the wrong type, an unknown model_type) becomes one ModelLoadError line naming the file."""
    if source != "hub":
        try:
            model_type = json.loads((Path(location) / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            raise ModelLoadError(f"checkpoint '{spec}': config.json is not a JSON object") from None
        if model_type not in MODEL_TYPES:
            raise ModelLoadError(f"checkpoint '{spec}' is a '{model_type}' model, not one of {', '.join(MODEL_TYPES)}")
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=local_files_only)
    except Exception as error:
        if source == "hub":
            raise _hub_error(spec, error) from error
        raise ModelLoadError(f"checkpoint '{spec}' has an unusable config.json ({_first_line(error)})") from error
    if config.model_type not in MODEL_TYPES:
        raise ModelLoadError(f"'{spec}' is a '{config.model_type}' model, not one of {', '.join(MODEL_TYPES)}")
    pe_changed = apply_pe_overrides(config, overrides["vlm_pe"], overrides["merge_rule"], overrides["pe_options"])
    stage = "tokenizer.json"
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_files_only)
        stage = "weights or config.json"
        model, info = AutoModelForCausalLM.from_pretrained(
            location, config=config, dtype=dtype, attn_implementation=attn_implementation, output_loading_info=True,
            local_files_only=local_files_only,
        )
    except Exception as error:
        if source == "hub" and isinstance(error, OSError):
            raise _hub_error(spec, error) from error
        raise ModelLoadError(f"cannot load checkpoint '{spec}': unusable {stage} ({_first_line(error)})") from error
    _check_loading_info(model, info, spec, pe_changed)
    model = finalise_model(model, device)
    return LoadedModel(
        model=model,
        processor=SpatialLMProcessor(tokenizer, model.config),
        source=source,
        spec=spec,
    )


def _check_loading_info(model: PreTrainedModel, info: dict[str, Any], spec: str, pe_changed: bool) -> None:
    """Missing learned-PE weights after a PE swap: warn. Any other missing weight: fail. Unused weights: warn."""
    pe_names: set[str] = set()
    if model.position_encoding is not None:
        pe_tensors = {id(p) for p in model.position_encoding.parameters()}
        pe_names = {name for name, p in model.named_parameters(remove_duplicate=False) if id(p) in pe_tensors}
    missing = set(info.get("missing_keys", ()))
    fresh = sorted(missing & pe_names)
    others = sorted(missing - pe_names)
    if others:
        raise ModelLoadError(
            f"checkpoint '{spec}' lacks {len(others)} weight(s) the model needs, e.g. {', '.join(others[:3])}"
        )
    if fresh:
        reason = "the positional encoding was changed at load time" if pe_changed else "the checkpoint lacks them"
        log.warning(
            "positional encoding '%s': %d learned parameter tensor(s) freshly initialised (%s): %s",
            model.config.vlm_pe,
            len(fresh),
            reason,
            ", ".join(fresh[:4]),
        )
    unexpected = sorted(info.get("unexpected_keys", ()))
    if unexpected:
        log.warning(
            "checkpoint '%s' has %d weight(s) this model does not use, e.g. %s", spec, len(unexpected), unexpected[:3]
        )
