"""What the model knows about token positions at prefill, and how point coordinates become rotation units.

Units: `PointPositions.point_coords` are the *grid cells* of the point encoder's output tokens (e.g. Sonata's stage-4
`grid_coord`, SceneScript's sparse-tensor coordinates), one row per point token, not the raw points. Before a
variant uses them they are normalised per sequence with ONE scale for all three axes, so a room keeps its aspect
ratio (fork bug: per-axis normalisation turned a hallway into a cube):

    grid  (default)  c - min(c)                          grid cells from the scene's min corner; one cell of the
                                                          encoder grid is one unit, so the highest rotary frequency
                                                          (1 rad per unit) separates neighbouring cells.
    unit  (fork)    (c - min(c)) / max_axis(max - min)   the longest axis spans [0, 1]; with theta 10000 the largest
                                                          angle is 1 rad, i.e. little spatial resolution.

min/max are taken per axis over the point tokens of that sequence only (padding and text are ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from spatialvlm_cli.errors import ConfigError, InputError

COORD_UNITS = ("grid", "unit")


@dataclass(frozen=True)
class PointPositions:
    """Positions of every token of a prefill forward.

    position_ids: (B, S) int64 1-D sequence positions of all tokens; point tokens take ordinary sequential ids and
        text after the point block continues after them, so ids never collide (use `sequential_position_ids`).
    point_mask: (B, S) bool, True at point tokens.
    point_coords: (B, S, 3) float32 grid cells (x, y, z) of each point token; values at other tokens are ignored.
    """

    position_ids: Tensor
    point_mask: Tensor
    point_coords: Tensor

    def __post_init__(self) -> None:
        if self.position_ids.ndim != 2:
            raise InputError(f"position_ids must be (B, S), got shape {tuple(self.position_ids.shape)}")
        if self.point_mask.shape != self.position_ids.shape or self.point_mask.dtype != torch.bool:
            raise InputError(f"point_mask must be a bool tensor of shape {tuple(self.position_ids.shape)}, got "
                             f"{self.point_mask.dtype} {tuple(self.point_mask.shape)}")
        if self.point_coords.shape != (*self.position_ids.shape, 3):
            raise InputError(f"point_coords must have shape {(*self.position_ids.shape, 3)}, got "
                             f"{tuple(self.point_coords.shape)}")

    @classmethod
    def from_point_blocks(cls, point_mask: Tensor, coords: Sequence[Tensor], attention_mask: Tensor | None = None,
                          position_ids: Tensor | None = None) -> PointPositions:
        """Build positions from the point-token mask and one coordinate array per sequence.

        point_mask: (B, S) bool; coords: B tensors (N_b, 3) of grid cells where N_b = point_mask[b].sum();
        attention_mask: (B, S) 0/1 (left padding allowed) or None for all ones; position_ids: (B, S) int64 the
        caller already has (e.g. from generate()), else `sequential_position_ids` of the mask.
        Raises InputError when a sequence's point-token count differs from its coordinate count (fork bug: the
        coordinates of 106328 raw points given for 556 encoder tokens).
        """
        if len(coords) != point_mask.shape[0]:
            raise InputError(f"got coordinates for {len(coords)} sequences but the batch has {point_mask.shape[0]}")
        point_coords = torch.zeros(*point_mask.shape, 3, dtype=torch.float32, device=point_mask.device)
        for b, sample in enumerate(coords):
            n_tokens = int(point_mask[b].sum())
            if sample.ndim != 2 or sample.shape[1] != 3 or sample.shape[0] != n_tokens:
                raise InputError(f"sequence {b} has {n_tokens} point tokens but coordinates of shape "
                                 f"{tuple(sample.shape)} (expected ({n_tokens}, 3))")
            point_coords[b, point_mask[b]] = sample.to(device=point_mask.device, dtype=torch.float32)
        if position_ids is None:
            position_ids = sequential_position_ids(point_mask.shape, attention_mask, point_mask.device)
        return cls(position_ids, point_mask, point_coords)


def sequential_position_ids(shape: tuple[int, int] | torch.Size, attention_mask: Tensor | None = None,
                            device: torch.device | str | None = None) -> Tensor:
    """(B, S) int64 ids 0, 1, 2, ... over the unpadded tokens; padding gets 0. Same convention as `generate()`
    (`cumsum(mask) - 1`), so its decode steps continue at `last + 1` with no bookkeeping."""
    if attention_mask is None:
        return torch.arange(shape[1], device=device).expand(shape[0], -1).clone()
    mask = attention_mask.long()
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


def normalize_coords(point_coords: Tensor, point_mask: Tensor, unit: str) -> Tensor:
    """Grid cells -> rotation units, per sequence, one scale for all axes (see the module docstring).

    point_coords: (B, S, 3) float grid cells; point_mask: (B, S) bool. Returns (B, S, 3) float32, 0 at non-point
    tokens and in sequences without point tokens.
    """
    if unit not in COORD_UNITS:
        raise ConfigError(f"unknown coordinate unit '{unit}' (valid: {', '.join(COORD_UNITS)})")
    coords = point_coords.float()
    mask = point_mask[..., None]
    lowest = torch.where(mask, coords, torch.inf).amin(dim=1, keepdim=True)  # (B, 1, 3)
    lowest = torch.where(lowest.isfinite(), lowest, 0.0)
    shifted = torch.where(mask, coords - lowest, 0.0)
    if unit == "grid":
        return shifted
    extent = shifted.amax(dim=(1, 2), keepdim=True)  # (B, 1, 1) the longest axis, shared by all three
    return shifted / torch.where(extent > 0, extent, 1.0)
