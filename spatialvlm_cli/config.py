"""YAML run configs: any command flag can be set in a YAML file; flags given on the command line win.

A config is a mapping from flag name to value. Keys may be spelled as the flag (`VLM_PE`, `point-cloud`) or as
the Python name (`vlm_pe`, `point_cloud`). Unknown keys and values of the wrong type are errors, not warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from spatialvlm_cli.errors import ConfigError


def normalise_key(key: str) -> str:
    """`--VLM_PE`, `VLM_PE`, `vlm-pe` -> `vlm_pe`."""
    return key.lstrip("-").replace("-", "_").lower()


def load_yaml_config(path: Path) -> dict[str, Any]:
    """Read a YAML mapping of flag -> value. Raises ConfigError with the file name on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config '{path}': {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config '{path}' is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config '{path}' is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config '{path}' must be a mapping of flag: value, not {type(data).__name__}")
    return {normalise_key(str(key)): value for key, value in data.items()}


def merge_config(ctx: typer.Context, config_path: Path | None) -> dict[str, Any]:
    """Return the command's parameter values with the YAML file filling every flag not given on the command line.

    Values from YAML go through the same type conversion as command-line values.
    """
    values = dict(ctx.params)
    if config_path is None:
        return values
    params = {param.name: param for param in ctx.command.params if param.name}
    by_key = {normalise_key(name): name for name in params}
    for param in ctx.command.params:
        for opt in getattr(param, "opts", []):
            by_key[normalise_key(opt)] = param.name
    for key, raw in load_yaml_config(config_path).items():
        name = by_key.get(key)
        if name is None or name == "config":
            valid = ", ".join(sorted(n for n in params if n != "config"))
            raise ConfigError(f"config '{config_path}': unknown key '{key}' (valid: {valid})")
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            continue
        try:
            values[name] = params[name].process_value(ctx, raw)
        except typer.BadParameter as error:
            raise ConfigError(f"config '{config_path}': bad value for '{key}': {error.message}") from None
    return values
