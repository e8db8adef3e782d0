"""`PESpec`: which positional encoding a model runs, parsed once, frozen.

Every spelling a user, a config file or a checkpoint may use is resolved here and nowhere else:
    name        a registered variant in any case; Python None, "None", "none", "1D_RoPE" (the fork's
                spelling) or "stock" mean stock 1-D RoPE (`NO_PE`);
    merge_rule  "3D_only" | "3D_with_1D" in any case; None means 3D_only; stock RoPE has no merge rule;
    options     the variant's typed options (`PEOptions`), unknown keys rejected.
A model config stores the spec in `vlm_pe`, `pcd_pe_merge_rule` and `pe` (`config_fields`); configs written by
the fork use `VLM_PE` and `PCD_PE_Merge_Rule` instead, which `from_config` reads too. The CLI, configs,
scripts and `check` build a PESpec (or a load-time override of one) and the model only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from spatialvlm_cli.errors import ConfigError, UnknownPEVariant
from spatialvlm_cli.flags import is_stock_spelling
from spatialvlm_cli.pe.allocation import MERGE_RULES
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.registry import DEFAULT_MERGE_RULE, NO_PE, PE_REGISTRY

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from spatialvlm_cli.pe.base import PositionEncoding

FORK_FIELDS = {"VLM_PE": "vlm_pe", "PCD_PE_Merge_Rule": "pcd_pe_merge_rule"}  # the fork's config keys


class Keep(Enum):
    """Sentinel type of KEEP: keep what the checkpoint stores (distinct from None, which means stock RoPE for a
    variant)."""

    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep.KEEP


def variant_name(name: str | None) -> str:
    """The registered spelling of a variant; the stock spellings (and Python None) give `NO_PE`."""
    if is_stock_spelling(name):
        return NO_PE
    for registered in PE_REGISTRY:
        if registered.lower() == str(name).strip().lower():
            return registered
    raise UnknownPEVariant(f"unknown positional encoding '{name}' (valid: {', '.join(sorted(PE_REGISTRY))})")


def merge_rule_name(rule: str | None) -> str:
    """The registered spelling of a `--PCD_PE_Merge_Rule` value (case ignored); None or "none" mean 3D_only."""
    if rule is None or str(rule).strip().lower() == "none":
        return DEFAULT_MERGE_RULE
    for known in MERGE_RULES:
        if known.lower() == str(rule).strip().lower():
            return known
    raise UnknownPEVariant(f"unknown merge rule '{rule}' (valid: {', '.join(MERGE_RULES)})")


@dataclass(frozen=True)
class PESpec:
    """A positional encoding: registered variant name, merge rule and typed options. Build one with `parse`."""

    name: str
    merge_rule: str
    options: PEOptions

    @classmethod
    def parse(cls, name: str | None, merge_rule: str | None = None,
              options: Mapping[str, Any] | PEOptions | None = None) -> PESpec:
        """Raises UnknownPEVariant for unknown names or rules and ConfigError for options the variant rejects."""
        canonical = variant_name(name)
        options_cls = PE_REGISTRY[canonical].Options
        if isinstance(options, PEOptions):
            if not isinstance(options, options_cls):
                raise ConfigError(f"{type(options).__name__} are not options of '{canonical}' "
                                  f"({options_cls.__name__})")
            typed = options
        else:
            typed = options_cls.from_dict(options, owner=f"--VLM_PE {canonical}")
        return cls(canonical, merge_rule_name(merge_rule), typed)

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> PESpec:
        """The spec a model config stores in vlm_pe / pcd_pe_merge_rule / pe. A SpatialLM config without them runs
        stock RoPE, as SpatialLM does. (Configs move the fork's VLM_PE / PCD_PE_Merge_Rule into these.)"""
        return cls.parse(getattr(config, "vlm_pe", None), getattr(config, "pcd_pe_merge_rule", None),
                         getattr(config, "pe", None) or None)

    def config_fields(self) -> dict[str, Any]:
        """The config fields that store this spec (`vlm_pe` None and no merge rule for stock RoPE)."""
        if self.is_stock:
            return {"vlm_pe": None, "pcd_pe_merge_rule": None, "pe": {}}
        return {"vlm_pe": self.name, "pcd_pe_merge_rule": self.merge_rule, "pe": self.options.to_dict()}

    def overridden(self, name: str | Keep | None = KEEP, merge_rule: str | Keep | None = KEEP,
                   options: Mapping[str, Any] | None = None) -> PESpec:
        """This spec with load-time overrides: `name` KEEP keeps the variant (another variant starts from its
        default options); `merge_rule` KEEP or None keeps the rule; `options` are merged over the kept ones."""
        new_name = self.name if name is KEEP else variant_name(name)
        rule = self.merge_rule if merge_rule is KEEP or merge_rule is None else merge_rule
        kept = self.options.to_dict() if new_name == self.name else {}
        return PESpec.parse(new_name, rule, {**kept, **dict(options or {})})

    @property
    def is_stock(self) -> bool:
        return self.name == NO_PE

    @property
    def label(self) -> str:
        """"None", or "<variant>/<merge rule>"."""
        return NO_PE if self.is_stock else f"{self.name}/{self.merge_rule}"

    def build(self, lm_config: PretrainedConfig) -> PositionEncoding:
        """The PositionEncoding module for a language model with config `lm_config` (Qwen2Config / LlamaConfig)."""
        return PE_REGISTRY[self.name](self.merge_rule, lm_config, self.options)

    @classmethod
    def every_variant(cls) -> tuple[PESpec, ...]:
        """Stock RoPE once, then every registered variant under every merge rule, default options."""
        others = [cls.parse(name, rule) for name in PE_REGISTRY if name != NO_PE for rule in MERGE_RULES]
        return (cls.parse(NO_PE), *others)


def build_position_encoding(name: str | None, merge_rule: str | None, lm_config: PretrainedConfig,
                            options: Mapping[str, Any] | PEOptions | None = None) -> PositionEncoding:
    """The variant `name` for a language model with config `lm_config`: `PESpec.parse(...).build(lm_config)`."""
    return PESpec.parse(name, merge_rule, options).build(lm_config)


def fork_options(name: str | None) -> dict[str, Any]:
    """The fork's hyper-parameters of a variant as an options dict (defects such as truncated widths excluded)."""
    return PE_REGISTRY[variant_name(name)].Options.fork().to_dict()
