"""SpatialLM's normalisation preset: metres/radians <-> integer bins of the model's text.

Each field of an entity is normalised with one range of `NORMALIZATION_PRESET` (`FIELD_RANGES` says which):

    encode: clip(int((v - lo) / (hi - lo) * num_bins), 0, num_bins - 1)     int() truncates towards zero
    decode: v_bin / num_bins * (hi - lo) + lo                               the lower bin edge, no +0.5

The arithmetic is written in SpatialLM's operation order, so decoded floats are bit-identical to its output
(e.g. 'height' bin 7 at 1280 bins -> 0.13999999999999999 m). Decoding then encoding is not always the identity:
that value encodes back to bin 6, as in SpatialLM. num_bins is 1280 for SpatialLM 1.1, 640 for 1.0.
"""

from __future__ import annotations

import math

from spatialvlm_cli.errors import ConfigError, InputError

# (lo, hi) per range name: metres for world/height/width/scale, radians for angle.
NORMALIZATION_PRESET: dict[str, tuple[float, float]] = {
    "world": (0.0, 32.0),
    "height": (0.0, 25.6),
    "width": (0.0, 25.6),
    "scale": (0.0, 20.0),
    "angle": (-6.2832, 6.2832),
}

# Which range each numeric field of each entity uses (SpatialLM's entity.py).
FIELD_RANGES: dict[str, dict[str, str]] = {
    "wall": {
        "ax": "world", "ay": "world", "az": "world", "bx": "world", "by": "world", "bz": "world",
        "height": "height", "thickness": "height",
    },
    "door": {
        "position_x": "world", "position_y": "world", "position_z": "world", "width": "width", "height": "height",
    },
    "bbox": {
        "position_x": "world", "position_y": "world", "position_z": "world", "angle_z": "angle",
        "scale_x": "scale", "scale_y": "scale", "scale_z": "scale",
    },
}
FIELD_RANGES["window"] = FIELD_RANGES["door"]


def check_num_bins(num_bins: int) -> int:
    """Raise ConfigError unless num_bins is a positive integer."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins <= 0:
        raise ConfigError(f"num_bins must be a positive integer, got {num_bins!r}")
    return num_bins


def encode_value(value: float, range_name: str, num_bins: int) -> int:
    """Metres/radians -> bin index in [0, num_bins - 1]. Raises InputError for NaN or infinite values."""
    if not math.isfinite(value):
        raise InputError(f"cannot discretize a non-finite value ({value!r})")
    lo, hi = NORMALIZATION_PRESET[range_name]
    return min(max(int((value - lo) / (hi - lo) * num_bins), 0), num_bins - 1)


def decode_value(value_bin: float, range_name: str, num_bins: int) -> float:
    """Bin index -> metres/radians at the lower edge of the bin (SpatialLM's decode, same operation order)."""
    lo, hi = NORMALIZATION_PRESET[range_name]
    return value_bin / num_bins * (hi - lo) + lo


def bin_size(range_name: str, num_bins: int) -> float:
    """Width of one bin of `range_name` in metres/radians, e.g. 0.025 m for 'world' at 1280 bins."""
    lo, hi = NORMALIZATION_PRESET[range_name]
    return (hi - lo) / num_bins
