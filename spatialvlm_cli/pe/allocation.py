"""Which rotary pair (or sinusoid channel pair) carries which position: the 1-D sequence position `t` or an axis.

Everything here is in *pairs*. With transformers' `rotate_half` convention a head of `head_dim` D has P = D/2 rotary
pairs and pair i rotates dims (i, i + P); pair i of the stock 1-D RoPE turns at `theta^(-2i/D)` rad per position, so
low pair indices are the high frequencies. The same pairing is used for the sinusoid channels of `3D_Sinusoidal`
(channel i = sin, channel i + C/2 = cos).

Merge rules (`--PCD_PE_Merge_Rule`):
    3D_only     every pair of a point token carries x, y or z.
    3D_with_1D  half of the pairs (rounded down) keep the 1-D sequence position, the other half carry x, y, z.

Default split of the spatial pairs n: x = y = n // 3, z = n - 2 * (n // 3). This reproduces every valid split the fork
used (3D_with_1D of head_dim 64: 16 | 5/5/6 pairs; 3D_Sinusoidal of 896 channels: 149/149/150 and 224 | 74/74/76
pairs). Their 21/21/22 "dims" for 3D_only of 64 is not a whole number of pairs; ours is 10/10/12.

Layouts:
    chunked      contiguous blocks in the order t | x | y | z (the fork's). Spatial pair k of the block order gets the
                 k-th frequency of one spectrum, so x only sees the highest and z only the lowest frequencies
                 (as Qwen2-VL's M-RoPE sections).
    interleaved  every role's pairs are spread evenly over the whole index range (x, y, z, x, y, z, ... with t
                 in between), so every axis sees high and low frequencies (as Qwen3-VL's interleaved M-RoPE).

Pure Python, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from spatialvlm_cli.errors import ConfigError

MERGE_RULES = ("3D_only", "3D_with_1D")
LAYOUTS = ("chunked", "interleaved")
AXES = ("x", "y", "z")
ROLE_1D = "t"
ROLES = (ROLE_1D, *AXES)


@dataclass(frozen=True)
class PairAllocation:
    """The role of every pair: `roles[i]` in {"t", "x", "y", "z"} for pair i (0 <= i < n_pairs)."""

    roles: tuple[str, ...]

    @property
    def n_pairs(self) -> int:
        return len(self.roles)

    def pairs_of(self, role: str) -> tuple[int, ...]:
        """Pair indices (ascending) that carry `role`."""
        return tuple(i for i, r in enumerate(self.roles) if r == role)

    @property
    def spatial_pairs(self) -> tuple[int, ...]:
        """Pair indices (ascending) that carry x, y or z. Their rank in this tuple is their spatial frequency bin."""
        return tuple(i for i, r in enumerate(self.roles) if r != ROLE_1D)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Axis (0 x, 1 y, 2 z) of each spatial pair, in the order of `spatial_pairs`."""
        return tuple(AXES.index(self.roles[i]) for i in self.spatial_pairs)

    def counts(self) -> dict[str, int]:
        return {role: self.roles.count(role) for role in ROLES}


def split_pairs(n_pairs: int, merge_rule: str, axis_pairs: tuple[int, int, int] | None = None,
                pairs_1d: int | None = None) -> dict[str, int]:
    """Number of pairs per role. Explicit `axis_pairs` / `pairs_1d` override the defaults; they must add up."""
    if merge_rule not in MERGE_RULES:
        raise ConfigError(f"unknown merge rule '{merge_rule}' (valid: {', '.join(MERGE_RULES)})")
    if merge_rule == "3D_only":
        if pairs_1d not in (None, 0):
            raise ConfigError(f"merge rule 3D_only keeps no 1-D pairs, but pairs_1d={pairs_1d} was given")
        n_1d = 0
    else:
        n_1d = n_pairs // 2 if pairs_1d is None else pairs_1d
        if n_1d < 1:
            raise ConfigError(f"merge rule 3D_with_1D needs at least one 1-D pair, got pairs_1d={n_1d}")
    n_spatial = n_pairs - n_1d
    if axis_pairs is None:
        third = n_spatial // 3
        axis_pairs = (third, third, n_spatial - 2 * third)
    if len(axis_pairs) != 3 or any(n < 1 for n in axis_pairs):
        raise ConfigError(f"axis_pairs must be three positive pair counts (x, y, z), got {tuple(axis_pairs)}")
    if n_1d + sum(axis_pairs) != n_pairs:
        raise ConfigError(f"pair split {n_1d} (1-D) + {'/'.join(map(str, axis_pairs))} (x/y/z) = "
                          f"{n_1d + sum(axis_pairs)} does not add up to the {n_pairs} available pairs")
    return {ROLE_1D: n_1d, **dict(zip(AXES, axis_pairs, strict=True))}


def allocate_pairs(n_pairs: int, merge_rule: str, layout: str, axis_pairs: tuple[int, int, int] | None = None,
                   pairs_1d: int | None = None) -> PairAllocation:
    """Assign a role to each of `n_pairs` pairs (see the module docstring for the rules and layouts)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout '{layout}' (valid: {', '.join(LAYOUTS)})")
    counts = split_pairs(n_pairs, merge_rule, axis_pairs, pairs_1d)
    if layout == "chunked":
        return PairAllocation(tuple(role for role in ROLES for _ in range(counts[role])))
    # Role r's j-th pair ideally sits at j * n_pairs / count_r; sorting these slots (ties in role order t, x, y, z)
    # spreads every role evenly over the spectrum. Fractions keep the ordering exact.
    slots = sorted((Fraction(j * n_pairs, counts[role]), order, role)
                   for order, role in enumerate(ROLES) for j in range(counts[role]))
    return PairAllocation(tuple(role for _, _, role in slots))


def spectrum(n: int, theta: float) -> list[float]:
    """Geometric frequencies theta^(-k/n) for k = 0..n-1 (radians per unit), from 1 down to just above 1/theta."""
    return [theta ** (-k / n) for k in range(n)]
