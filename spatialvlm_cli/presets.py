"""Preset files: the one reader of the YAML files in `assets/presets/` that describe models with seeded RANDOM
weights, for point-cloud models (`model/presets.py`) and panorama VLMs (`panorama/presets.py`) alike.

Every preset file is a mapping with a `description` (one line), a `model_type`, a `seed` and then the sizes as data;
which other keys it has is its kind's (each kind's module lists them, unknown keys are errors). The kind follows
from the model_type: SpatialLM's own types (`spatiallm_*`) are point-cloud presets, any other type is a transformers
VLM family, a panorama preset. No torch here: the panorama flag checks list the preset names before a model loads.

The same reading (find by name in a folder of `assets/` or by path, parse, check every key's type) serves other
shipped YAML files of settings: `read_settings_file` (the panorama set-ups of `--pano_preset`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from spatialvlm_cli.errors import ConfigError, ModelLoadError
from spatialvlm_cli.typed_config import check_keys, check_value

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # Python 3.11+; only annotations need it

POINT_CLOUD = "point-cloud"
PANORAMA = "panorama"

# The model_type prefix of SpatialLM's point-cloud models (spatiallm_qwen, spatiallm_llama).
_POINT_CLOUD_PREFIX = "spatiallm_"


def preset_kind(model_type: str) -> str:
    """POINT_CLOUD for a SpatialLM model_type, PANORAMA for any other."""
    return POINT_CLOUD if model_type.startswith(_POINT_CLOUD_PREFIX) else PANORAMA


def shipped_presets(kind: str) -> dict[str, str]:
    """The presets of one kind shipped in `assets/presets/`: name -> model_type, sorted by name."""
    return {name: model_type for name, model_type in _shipped_model_types().items()
            if preset_kind(model_type) == kind}


def read_preset_file(spec: str, keys: Mapping[str, Any], *, required: Collection[str], kind: str) -> dict[str, Any]:
    """Parse and validate a preset of `kind` given by name (shipped) or by YAML path: every key one of `keys` (name
    -> annotation, checked by `typed_config.check_value`), the `required` ones present. ModelLoadError for a
    missing file or a preset of the other kind, ConfigError for bad content."""
    path = _locate(spec, _folder(), lambda: ModelLoadError(
        f"no preset named '{spec}'; {kind} presets: {', '.join(shipped_presets(kind))}"), ModelLoadError, "preset")
    owner = f"preset '{spec}'"
    data = _parse(path, owner)
    model_type = _model_type(data, owner)
    if preset_kind(model_type) != kind:
        raise ModelLoadError(f"{owner} is a {preset_kind(model_type)} preset (model_type {model_type}), not a {kind} "
                             "one")
    return _checked(data, owner, keys, required)


def read_settings_file(spec: str, folder: str, keys: Mapping[str, Any], *, required: Collection[str],
                       what: str) -> dict[str, Any]:
    """Parse and validate a YAML mapping of settings given by name (shipped as `assets/<folder>/<name>.yaml`) or by
    YAML path, as `read_preset_file` checks presets. what: the noun in messages (e.g. "panorama preset").
    ConfigError for a missing file or bad content."""
    path = _locate(spec, _assets(folder), lambda: ConfigError(
        f"no {what} named '{spec}'; shipped: {', '.join(shipped_settings(folder))}"), ConfigError, what)
    return _checked(_parse(path, f"{what} '{spec}'"), f"{what} '{spec}'", keys, required)


def shipped_settings(folder: str) -> list[str]:
    """The names of the YAML files shipped in `assets/<folder>/`, sorted."""
    return sorted(entry.name.removesuffix(".yaml") for entry in _assets(folder).iterdir()
                  if entry.name.endswith(".yaml"))


def _locate(spec: str, folder: Traversable, unknown: Callable[[], Exception], missing: type[Exception],
            noun: str) -> Traversable:
    """The file of `spec`: a .yaml/.yml path as given (else `missing` naming the `noun` file), or `<spec>.yaml` in
    `folder` (else the `unknown()` error)."""
    if spec.endswith((".yaml", ".yml")):
        path: Traversable = Path(spec).expanduser()
        if not path.is_file():
            raise missing(f"{noun} file '{spec}' does not exist")
        return path
    path = folder.joinpath(f"{spec}.yaml")
    if not path.is_file():
        raise unknown()
    return path


def _checked(data: Any, owner: str, keys: Mapping[str, Any], required: Collection[str]) -> dict[str, Any]:
    """Parsed YAML `data` with every key one of `keys` (checked by `typed_config.check_value`), `required` present."""
    data = check_keys(data, list(keys), owner, required=required)
    return {key: check_value(f"{owner}: {key}", value, keys[key]) for key, value in data.items()}


def _assets(folder: str) -> Traversable:
    return files("spatialvlm_cli").joinpath(f"assets/{folder}")


def _folder() -> Traversable:
    return _assets("presets")


@cache
def _shipped_model_types() -> dict[str, str]:
    """name -> model_type of every shipped preset; read once (the package's files do not change while it runs)."""
    found = {}
    for entry in sorted(_folder().iterdir(), key=lambda entry: entry.name):
        if entry.name.endswith(".yaml"):
            name = entry.name.removesuffix(".yaml")
            owner = f"preset '{name}'"
            found[name] = _model_type(_parse(entry, owner), owner)
    return found


def _parse(path: Traversable, owner: str) -> Any:
    """The YAML content of a preset file, not yet validated."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{owner} is not valid YAML: {str(error).splitlines()[0]}") from error


def _model_type(data: Any, owner: str) -> str:
    """The model_type of parsed preset `data`; ConfigError unless it is a mapping with one. The kind's own keys are
    checked later, once the kind is known (so any key passes here)."""
    check_keys(data, data if isinstance(data, Mapping) else (), owner, required=("model_type",))
    return check_value(f"{owner}: model_type", data["model_type"], str)
