"""Typed encoder configurations parsed from a checkpoint's ``point_config`` dict.

Keys are SpatialLM's (``config.json`` -> ``point_config``). Keys of ours have defaults. Keys we do not know
are ignored, as upstream ignores them (a real checkpoint's config must always load), and named in a log
warning. Missing or ill-typed keys raise ConfigError.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from ..errors import ConfigError
from .serialization import ORDERS

logger = logging.getLogger(__name__)


def _int_list(config: Mapping[str, Any], key: str, length: int | None = None) -> tuple[int, ...]:
    value = config[key]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ConfigError(f"point_config['{key}'] must be a list of positive integers, got {value!r}.")
    if length is not None and len(value) != length:
        raise ConfigError(f"point_config['{key}'] must have {length} entries, got {len(value)}.")
    return tuple(value)


def _positive_int(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"point_config['{key}'] must be a positive integer, got {value!r}.")
    return value


def _bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"point_config['{key}'] must be true or false, got {value!r}.")
    return value


def _check_keys(config: Mapping[str, Any], cls: type, backbone: str) -> None:
    if not isinstance(config, Mapping):
        raise ConfigError(f"point_config must be a mapping, got {type(config).__name__}.")
    known = {f.name for f in fields(cls)} | set(getattr(cls, "IGNORED_KEYS", ()))
    required = set(cls.REQUIRED_KEYS)
    missing = sorted(required - set(config))
    if missing:
        raise ConfigError(f"point_config for '{backbone}' lacks {missing}.")
    unknown = sorted(set(config) - known)
    if unknown:
        logger.warning("point_config keys %s are not used by the '%s' encoder; ignored.", unknown, backbone)


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
        _check_keys(config, cls, "sonata")
        if not _bool(config, "enc_mode", True):
            raise ConfigError("point_config['enc_mode'] is false: only Sonata's encoder mode is supported.")
        _bool(config, "mask_token", False)
        order = config["order"]
        order = (order,) if isinstance(order, str) else tuple(order)
        if not order or any(o not in ORDERS for o in order):
            raise ConfigError(f"point_config['order'] must name orders among {ORDERS}, got {order!r}.")
        depths = _int_list(config, "enc_depths")
        stages = len(depths)
        channels = _int_list(config, "enc_channels", stages)
        heads = _int_list(config, "enc_num_head", stages)
        for c, h in zip(channels, heads, strict=True):
            if c % h:
                raise ConfigError(f"enc_channels {c} is not divisible by its enc_num_head {h}.")
        mlp_ratio = config["mlp_ratio"]
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
            raise ConfigError(f"point_config['mlp_ratio'] must be a positive number, got {mlp_ratio!r}.")
        return cls(
            in_channels=_positive_int(config, "in_channels"),
            order=order,
            stride=_int_list(config, "stride", stages - 1),
            enc_depths=depths,
            enc_channels=channels,
            enc_num_head=heads,
            enc_patch_size=_int_list(config, "enc_patch_size", stages),
            mlp_ratio=float(mlp_ratio),
            num_bins=_positive_int(config, "num_bins"),
            shuffle_orders=_bool(config, "shuffle_orders", False),
        )


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

    @property
    def reduced_grid_size(self) -> int:
        return int(self.num_bins / 2 ** (len(self.conv_layers) - 1))

    @classmethod
    def from_point_config(cls, config: Mapping[str, Any]) -> SceneScriptConfig:
        _check_keys(config, cls, "scenescript")
        layers = _int_list(config, "conv_layers")
        for c in layers:
            if c % min(8, c):
                raise ConfigError(f"conv_layers entry {c} is not divisible by its {min(8, c)} norm groups.")
        if (2 * layers[-1]) % 8:
            raise ConfigError(f"2 * conv_layers[-1] = {2 * layers[-1]} is not divisible by 8 norm groups.")
        mode = config.get("downsample_range", "valid")
        if mode not in ("valid", "full"):
            raise ConfigError(f"point_config['downsample_range'] must be 'valid' or 'full', got {mode!r}.")
        return cls(
            input_channels=_positive_int(config, "input_channels"),
            embed_channels=_positive_int(config, "embed_channels"),
            conv_layers=layers,
            num_bins=_positive_int(config, "num_bins"),
            downsample_range=mode,
        )
