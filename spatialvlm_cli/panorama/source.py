"""Where a panorama `--model` comes from, checked without loading anything: a checkpoint folder, a tiny preset or a
hub id, and its family when that is known before a download. No torch, no transformers here: `infer --image` runs
these checks before the model loads, so a bad `--model` fails in a second (tests/test_layering.py keeps it light).
"""

from __future__ import annotations

import json
from pathlib import Path

from spatialvlm_cli.errors import ModelLoadError
from spatialvlm_cli.io.model_source import HUB_ID, missing_model_path
from spatialvlm_cli.panorama.families import PanoramaFamily, family_for_model_type
from spatialvlm_cli.presets import PANORAMA, shipped_presets

DEFAULT_PANORAMA_MODEL = "OpenGVLab/InternVL3_5-1B-HF"


def panorama_presets() -> dict[str, str]:
    """The tiny panorama presets shipped in `assets/presets/` (random weights, built by
    `presets.save_tiny_checkpoint`): name -> transformers model_type."""
    return shipped_presets(PANORAMA)


def alternatives() -> str:
    """The end of every 'cannot load' message: what can be passed instead."""
    return f"pass a local checkpoint directory or a panorama preset ({', '.join(panorama_presets())})"


def model_source(spec: str) -> str:
    """'local' (a folder with config.json), 'preset' or 'hub' (an owner/name id); ModelLoadError otherwise.
    Cheap: no download, no weights."""
    problem = missing_model_path(spec)
    if problem:
        raise ModelLoadError(problem)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"checkpoint '{spec}' has no config.json")
        return "local"
    if spec in panorama_presets():
        return "preset"
    if path.exists() or not HUB_ID.match(spec):
        raise ModelLoadError(f"'{spec}' is not a checkpoint directory, panorama preset or hub id; {alternatives()}")
    return "hub"


def peek_family(spec: str) -> PanoramaFamily | None:
    """The family of `spec` without loading weights: from the preset's file or a local config.json; None for hub
    ids (known only after download) and unreadable folders (the load reports those)."""
    presets = panorama_presets()
    if spec in presets:
        return family_for_model_type(presets[spec], spec)
    config_path = Path(spec).expanduser() / "config.json"
    if not config_path.is_file():
        return None
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None
    return family_for_model_type(str(model_type), spec)
