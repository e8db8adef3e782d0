"""Batched voxel clouds: the encoders' input checks, the ``offset``/``batch`` conventions and the output type.

Clouds are concatenated along the first axis; ``offset`` (B,) int64 holds cumulative counts (Sonata's
convention, ``offset[-1] == N``) and ``batch`` (N,) int64 the cloud index of every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InputError
from .voxels import MAX_BATCH, MAX_COORD, pack_keys


@dataclass
class EncodedPoints:
    """Encoder output, one token per occupied cell of the encoder's output grid.

    features: (M, C_out) float32 token features, C_out = encoder.out_channels.
    grid_coord: (M, 3) int64 each token's cell in the OUTPUT grid (grid cells), in token order.
    offset: (B,) int64 cumulative token counts per cloud; offset[-1] == M."""

    features: Tensor
    grid_coord: Tensor
    offset: Tensor


def offset_to_batch(offset: Tensor) -> Tensor:
    """(B,) int64 cumulative counts -> (N,) int64 cloud index of every row."""
    counts = torch.diff(offset, prepend=offset.new_zeros(1))
    return torch.repeat_interleave(torch.arange(len(offset), device=offset.device), counts)


def batch_to_offset(batch: Tensor, num_clouds: int) -> Tensor:
    """(N,) int64 cloud indices (sorted) -> (B,) int64 cumulative counts; empty clouds count 0."""
    return torch.cumsum(torch.bincount(batch, minlength=num_clouds), dim=0)


@dataclass
class VoxelBatch:
    """Voxel positions of a batch at one resolution of an encoder.

    grid_coord: (V, 3) int64 grid cells; batch: (V,) int64 cloud index, non-decreasing;
    offset: (B,) int64 cumulative voxel counts."""

    grid_coord: Tensor
    batch: Tensor
    offset: Tensor

    @property
    def num_clouds(self) -> int:
        return self.offset.shape[0]


def check_voxels(grid_coord: Tensor, offset: Tensor, num_bins: int) -> VoxelBatch:
    """Validate input-grid voxels and return them as a :class:`VoxelBatch` (int64 tensors).

    grid_coord: (N, 3) integer grid cells in [0, num_bins); offset: (B,) integer cumulative counts, every
    cloud non-empty, offset[-1] == N; no cell may appear twice in one cloud. Raises InputError otherwise."""
    if not isinstance(grid_coord, Tensor) or not isinstance(offset, Tensor):
        raise InputError("grid_coord and offset must be torch tensors.")
    if grid_coord.dim() != 2 or grid_coord.shape[1] != 3:
        raise InputError(f"grid_coord must have shape (N, 3), got {tuple(grid_coord.shape)}.")
    if grid_coord.dtype.is_floating_point or grid_coord.dtype.is_complex or grid_coord.dtype == torch.bool:
        raise InputError(f"grid_coord must hold integer grid cells, got dtype {grid_coord.dtype}.")
    if offset.dim() != 1 or offset.dtype.is_floating_point or offset.dtype == torch.bool:
        raise InputError(f"offset must be a 1-D integer tensor, got {offset.dtype} {tuple(offset.shape)}.")
    num_points = grid_coord.shape[0]
    if num_points == 0:
        raise InputError("the point cloud is empty: an encoder needs at least one occupied voxel.")
    if offset.numel() == 0 or offset.numel() > MAX_BATCH:
        raise InputError(f"offset must list between 1 and {MAX_BATCH} clouds, got {offset.numel()}.")
    offset = offset.to(device=grid_coord.device, dtype=torch.long)
    counts = torch.diff(offset, prepend=offset.new_zeros(1))
    if int(offset[-1]) != num_points:
        raise InputError(f"offset[-1] is {int(offset[-1])} but grid_coord has {num_points} rows.")
    if bool((counts <= 0).any()):
        empty = int((counts <= 0).nonzero()[0])
        raise InputError(f"cloud {empty} of the batch is empty (offset must be strictly increasing).")
    grid_coord = grid_coord.long()
    limit = min(num_bins, MAX_COORD)
    if bool((grid_coord < 0).any()) or bool((grid_coord >= limit).any()):
        lo, hi = int(grid_coord.min()), int(grid_coord.max())
        raise InputError(
            f"grid coordinates span [{lo}, {hi}] but must lie in the grid [0, {limit - 1}] "
            f"(num_bins={num_bins}); shift the cloud to its minimum corner and clip as preprocessing does."
        )
    batch = offset_to_batch(offset)
    keys = pack_keys(batch, grid_coord)
    if torch.unique(keys).numel() != num_points:
        raise InputError("grid_coord holds the same voxel twice in one cloud; keep one point per voxel.")
    return VoxelBatch(grid_coord=grid_coord, batch=batch, offset=offset)


def sort_voxels(voxels: VoxelBatch) -> tuple[VoxelBatch, Tensor]:
    """Voxels reordered lexicographically by (batch, x, y, z), and the (V,) int64 permutation applied.

    Encoders run on sorted voxels because neighbours then sit close in memory: the gathers of a sparse
    convolution become nearly sequential (several times faster than on scanner/hash order). Clouds stay
    contiguous and in batch order, so ``offset`` is unchanged."""
    perm = torch.argsort(pack_keys(voxels.batch, voxels.grid_coord))
    return VoxelBatch(voxels.grid_coord[perm], voxels.batch[perm], voxels.offset), perm


def restore_order(perm: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Undo :func:`sort_voxels` on per-voxel tensors: returns each ``t`` reordered as ``out[perm] = t``."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return tuple(t[inverse] for t in tensors)


def check_features(feat: Tensor, num_points: int, in_channels: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Validate (N, in_channels) point features; return them on the encoder's ``device`` and ``dtype``."""
    if not isinstance(feat, Tensor) or not feat.dtype.is_floating_point:
        raise InputError("feat must be a floating-point torch tensor.")
    if feat.shape != (num_points, in_channels):
        raise InputError(f"feat must have shape ({num_points}, {in_channels}), got {tuple(feat.shape)}.")
    if not bool(torch.isfinite(feat).all()):
        bad = int((~torch.isfinite(feat)).any(dim=1).sum())
        raise InputError(f"feat has {bad} rows with NaN or infinite values; drop them before encoding.")
    return feat.to(device=device, dtype=dtype)
