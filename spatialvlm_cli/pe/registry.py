"""`--VLM_PE` name -> PositionEncoding class. Each variant module registers itself with `@register(name)`;
`spec.py` resolves spellings and builds variants."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from spatialvlm_cli.pe.base import PositionEncoding

PE_REGISTRY: dict[str, type[PositionEncoding]] = {}
NO_PE = "None"
DEFAULT_MERGE_RULE = "3D_only"

PE = TypeVar("PE", bound="type[PositionEncoding]")


def register(name: str) -> Callable[[PE], PE]:
    """Class decorator: make the variant available as `--VLM_PE name`."""

    def add(cls: PE) -> PE:
        if name.lower() in (registered.lower() for registered in PE_REGISTRY):
            raise ValueError(f"positional encoding '{name}' is registered twice")
        cls.name = name
        PE_REGISTRY[name] = cls
        return cls

    return add
