"""Typed hyper-parameters of a variant: frozen dataclasses that round-trip through plain JSON-able dicts.

A model stores `pe.spec()` (name, merge rule, options dict) in its PretrainedConfig; `from_dict` rebuilds the typed
options, rejecting unknown keys and wrong types with a ConfigError (never a warning).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from spatialvlm_cli.errors import ConfigError

T = TypeVar("T", bound="PEOptions")


@dataclasses.dataclass(frozen=True)
class PEOptions:
    """Base of every variant's options. Subclasses add fields with defaults and validate in `__post_init__`."""

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any] | None, owner: str | None = None) -> T:
        """Typed options from a plain dict (e.g. `config.pe`); missing keys take the defaults. owner: what the
        options belong to in error messages (e.g. "--VLM_PE 3D_RoPE"; default the class name)."""
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {owner or cls.__name__} "
                              f"(valid: {', '.join(names) or 'none'})")
        return cls(**{key: _coerce(key, value, hints[key]) for key, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (tuples as lists) that `from_dict` turns back into an equal object."""
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def fork(cls: type[T]) -> T:
        """The hyper-parameters of the fork, the reference implementation (its defects excluded). Default: the
        plain defaults."""
        return cls()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check `value` against the annotation `hint` (float, int, bool, str Literal, tuple[int, ...], Optional)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"option {key}={value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in value):
            raise ConfigError(f"option {key} must be a list of integers, got {value!r}")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"option {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"option {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"option {key} must be a number, got {value!r}")
        return float(value)
    raise TypeError(f"option {key}: unsupported annotation {hint!r}")
