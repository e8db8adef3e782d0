"""Typed hyper-parameters of a variant: frozen dataclasses that round-trip through plain JSON-able dicts.

A model stores `pe.spec()` (name, merge rule, options dict) in its PretrainedConfig; `from_dict` rebuilds the typed
options, rejecting unknown keys and wrong types with a ConfigError (never a warning; see `typed_config.py`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from spatialvlm_cli.typed_config import check_keys, check_value

T = TypeVar("T", bound="PEOptions")


@dataclasses.dataclass(frozen=True)
class PEOptions:
    """Base of every variant's options. Subclasses add fields with defaults and validate in `__post_init__`."""

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any] | None, owner: str | None = None) -> T:
        """Typed options from a plain dict (e.g. `config.pe`); missing keys take the defaults. owner: what the
        options belong to in error messages (e.g. "--VLM_PE 3D_RoPE"; default the class name)."""
        hints = typing.get_type_hints(cls)
        names = [field.name for field in dataclasses.fields(cls)]
        data = check_keys(dict(data or {}), names, owner or cls.__name__, noun="option")
        return cls(**{key: check_value(f"option {key}", value, hints[key]) for key, value in data.items()})

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
