"""`--VLM_PE` name -> PositionEncoding class. Each variant module registers itself with `@register(name)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from spatialvlm_cli.errors import ConfigError, UnknownPEVariant
from spatialvlm_cli.pe.allocation import MERGE_RULES
from spatialvlm_cli.pe.options import PEOptions

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


def canonical_name(name: str | None) -> str:
    """The registered spelling of a variant name; case is ignored and Python None or "none" mean "None"."""
    if name is None:
        return NO_PE
    for registered in PE_REGISTRY:
        if registered.lower() == str(name).strip().lower():
            return registered
    raise UnknownPEVariant(f"unknown positional encoding '{name}' (valid: {', '.join(sorted(PE_REGISTRY))})")


def canonical_merge_rule(rule: str | None) -> str:
    """The registered spelling of a `--PCD_PE_Merge_Rule` value (case ignored); None means 3D_only."""
    if rule is None:
        return DEFAULT_MERGE_RULE
    for known in MERGE_RULES:
        if known.lower() == str(rule).strip().lower():
            return known
    raise UnknownPEVariant(f"unknown merge rule '{rule}' (valid: {', '.join(MERGE_RULES)})")


def build_position_encoding(name: str | None, merge_rule: str | None, lm_config: Any,
                            options: Mapping[str, Any] | PEOptions | None = None) -> PositionEncoding:
    """The variant `name` for a language model with config `lm_config` (Qwen2Config / LlamaConfig).

    merge_rule: "3D_only" | "3D_with_1D" (case ignored; None = 3D_only). options: the variant's options as a dict
    (unknown keys rejected), an instance of its Options class, or None for the defaults.
    Raises UnknownPEVariant for unknown names or rules and ConfigError for options the model cannot take.
    """
    cls = PE_REGISTRY[canonical_name(name)]
    rule = canonical_merge_rule(merge_rule)
    if isinstance(options, PEOptions):
        if not isinstance(options, cls.Options):
            raise ConfigError(f"{type(options).__name__} are not options of '{cls.name}' ({cls.Options.__name__})")
        typed = options
    else:
        typed = cls.Options.from_dict(options)
    return cls(rule, lm_config, typed)


def seed_options(name: str | None) -> dict[str, Any]:
    """The seeds' hyper-parameters of a variant as an options dict (defects such as truncated widths excluded)."""
    return PE_REGISTRY[canonical_name(name)].Options.seed().to_dict()
