"""Typed encoder configurations parsed from a checkpoint's ``point_config`` dict.

Keys are SpatialLM's (``config.json`` -> ``point_config``). Keys of ours have defaults. Keys we do not know
are ignored, as upstream ignores them (a real checkpoint's config must always load), and named in a log
warning. Missing or ill-typed keys raise ConfigError (the shared checks of `typed_config.py`).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_origin

from ..errors import ConfigError
from ..typed_config import check_keys, check_value
from .serialization import ORDERS


def _typed_values(cls: type, config: object, backbone: str) -> dict[str, Any]:
    """The keys of `config` that are fields of `cls`, checked against their annotations (`typed_config`). A single
    value where a list is expected stands for a one-entry list, as SpatialLM's configs may give it. Missing
    required keys are an error; keys we do not know are logged and ignored (a real checkpoint must always load)."""
    names = [f.name for f in fields(cls)]
    config = check_keys(config, [*names, *cls.IGNORED_KEYS], f"point_config for '{backbone}'",
                        required=cls.REQUIRED_KEYS, unknown="warn")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in names:
        if name not in config:
            continue
        value = config[name]
        if get_origin(hints[name]) is tuple and not isinstance(value, (list, tuple)):
            value = [value]
        values[name] = check_value(f"point_config['{name}']", value, hints[name])
    return values


def _positive(values: dict[str, Any], *names: str) -> None:
    """ConfigError unless every number (or every entry of every list) under `names` is > 0."""
    for name in names:
        value = values[name]
        if any(v <= 0 for v in (value if isinstance(value, tuple) else (value,))):
            kinds = {tuple: "a list of positive integers", int: "a positive integer", float: "a positive number"}
            kind = kinds[type(value)]
            raise ConfigError(f"point_config['{name}'] must be {kind}, got {value!r}.")


def _lengths(values: dict[str, Any], length: int, *names: str) -> None:
    """ConfigError unless every list under `names` has `length` entries."""
    for name in names:
        if len(values[name]) != length:
            raise ConfigError(f"point_config['{name}'] must have {length} entries, got {len(values[name])}.")


@dataclass(frozen=True)
class SonataConfig:
    """Sonata / PTv3 encoder of SpatialLM 1.1 (``point_backbone == "sonata"``).

    ``mask_token`` is accepted and ignored: SpatialLM's Sonata has the mask token commented out, so no such
    parameter exists. ``enc_mode`` must be true (encoder only). ``shuffle_orders`` (ours, default False)
    permutes the serialization orders at random at every serialization, as upstream does by default;
    off, block i of every stage uses ``order[i % len(order)]`` and the output is deterministic."""

    in_channels: int
    order: tuple[str, ...]
    stride: tuple[int, ...]
    enc_depths: tuple[int, ...]
    enc_channels: tuple[int, ...]
    enc_num_head: tuple[int, ...]
    enc_patch_size: tuple[int, ...]
    mlp_ratio: float
    num_bins: int
    shuffle_orders: bool = False

    REQUIRED_KEYS = (
        "in_channels",
        "order",
        "stride",
        "enc_depths",
        "enc_channels",
        "enc_num_head",
        "enc_patch_size",
        "mlp_ratio",
        "num_bins",
    )
    IGNORED_KEYS = ("mask_token", "enc_mode")

    @property
    def num_stages(self) -> int:
        return len(self.enc_depths)

    @property
    def reduced_grid_size(self) -> int:
        """Output-grid size used to normalise token positions: num_bins / 2**(stages - 1), as upstream."""
        return int(self.num_bins / 2 ** (self.num_stages - 1))

    @classmethod
    def from_point_config(cls, config: Mapping[str, Any]) -> SonataConfig:
        values = _typed_values(cls, config, "sonata")
        if not check_value("point_config['enc_mode']", config.get("enc_mode", True), bool):
            raise ConfigError("point_config['enc_mode'] is false: only Sonata's encoder mode is supported.")
        check_value("point_config['mask_token']", config.get("mask_token", False), bool)
        _positive(values, "in_channels", "stride", "enc_depths", "enc_channels", "enc_num_head", "enc_patch_size",
                  "mlp_ratio", "num_bins")
        stages = len(values["enc_depths"])
        _lengths(values, stages, "enc_channels", "enc_num_head", "enc_patch_size")
        _lengths(values, stages - 1, "stride")
        for c, h in zip(values["enc_channels"], values["enc_num_head"], strict=True):
            if c % h:
                raise ConfigError(f"enc_channels {c} is not divisible by its enc_num_head {h}.")
        if not values["order"] or any(o not in ORDERS for o in values["order"]):
            raise ConfigError(f"point_config['order'] must name orders among {ORDERS}, got {values['order']!r}.")
        return cls(**values)


@dataclass(frozen=True)
class SceneScriptConfig:
    """SceneScript sparse ResNet encoder of SpatialLM 1.0 (``point_backbone == "scenescript"``).

    ``downsample_range`` (ours): "valid" (default) reproduces torchsparse 2.1's default strided convolution,
    which infers each axis' extent from the largest coordinate and keeps only 2x2x2 windows inside it
    (voxels on an even-valued last row are dropped); "full" keeps every voxel (``unique(c // 2)``)."""

    input_channels: int
    embed_channels: int
    conv_layers: tuple[int, ...]
    num_bins: int
    downsample_range: Literal["valid", "full"] = "valid"

    REQUIRED_KEYS = ("input_channels", "embed_channels", "conv_layers", "num_bins")
    IGNORED_KEYS = ()

    @property
    def reduced_grid_size(self) -> int:
        return int(self.num_bins / 2 ** (len(self.conv_layers) - 1))

    @classmethod
    def from_point_config(cls, config: Mapping[str, Any]) -> SceneScriptConfig:
        values = _typed_values(cls, config, "scenescript")
        _positive(values, "input_channels", "embed_channels", "conv_layers", "num_bins")
        for c in values["conv_layers"]:
            if c % min(8, c):
                raise ConfigError(f"conv_layers entry {c} is not divisible by its {min(8, c)} norm groups.")
        last = values["conv_layers"][-1]
        if (2 * last) % 8:
            raise ConfigError(f"2 * conv_layers[-1] = {2 * last} is not divisible by 8 norm groups.")
        return cls(**values)
