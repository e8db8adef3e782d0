"""The one validator of typed configuration read from plain JSON or YAML: PE options (`pe/options.py`), encoder
`point_config`s (`encoders/config.py`) and preset files of both kinds (`presets.py`).

`check_keys` judges a mapping's keys (unknown ones are an error, or for a checkpoint's `point_config` a logged
warning: a real checkpoint must always load); `check_value` judges one value against its field's annotation. Both
raise ConfigError, never a bare TypeError, for anything a user wrote.
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, Literal, get_args, get_origin

from spatialvlm_cli.errors import ConfigError

log = logging.getLogger(__name__)

_ELEMENTS = {int: "integers", str: "strings"}


def check_keys(data: object, known: Collection[str], owner: str, *, required: Collection[str] = (),
               noun: str = "key", unknown: Literal["error", "warn"] = "error") -> Mapping[str, Any]:
    """`data` as a mapping whose keys are all `known` and include every `required` one; otherwise ConfigError
    (unknown keys only logged with unknown="warn"). owner names the mapping in messages (e.g. "--VLM_PE 3D_RoPE");
    noun names its keys (e.g. "option")."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{owner} must be a mapping of {noun}s to values, got {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ConfigError(f"{owner} lacks {', '.join(missing)}")
    extra = sorted(set(data) - set(known))
    if extra and unknown == "error":
        raise ConfigError(f"unknown {noun}(s) {', '.join(extra)} for {owner} (valid: {', '.join(known) or 'none'})")
    if extra:
        log.warning("%s: %s(s) %s not used; ignored", owner, noun, ", ".join(extra))
    return data


def check_value(label: str, value: Any, hint: Any) -> Any:
    """`value` checked against the annotation `hint`, in the form the field holds (lists as tuples, ints as floats):
    bool, int, float, str, dict, a Literal, tuple[int, ...], tuple[str, ...], or a union with None. label names the
    value in the ConfigError (e.g. "option theta")."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        return check_value(label, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{label}={value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        element = args[0]
        if not isinstance(value, (list, tuple)) or not all(_is(v, element) for v in value):
            raise ConfigError(f"{label} must be a list of {_ELEMENTS[element]}, got {value!r}")
        return tuple(value)
    if hint is float:
        if not _is(value, float):
            raise ConfigError(f"{label} must be a number, got {value!r}")
        return float(value)
    kinds = {bool: "true or false", int: "an integer", str: "a string", dict: "a mapping"}
    base = origin or hint
    if base not in kinds:
        raise TypeError(f"{label}: unsupported annotation {hint!r}")
    if not _is(value, base):
        raise ConfigError(f"{label} must be {kinds[base]}, got {value!r}")
    return value


def _is(value: Any, kind: type) -> bool:
    """isinstance, where a bool is no number and an int is a float."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)
