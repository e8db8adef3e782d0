"""Serialized patch attention (PTv3 / Sonata): multi-head attention inside windows of consecutive voxels.

Voxels of each cloud are laid out along a space-filling curve and cut into windows of ``patch_size``. A cloud
with at most ``patch_size`` voxels is one window. For a larger cloud whose count is not a multiple of the
patch size, upstream pads the last window with the voxels just before it; its voxels therefore attend to the
last ``patch_size`` voxels of the cloud, and the overlapping voxels keep the output of their own (earlier)
window. This is the flash-attention path of Sonata, the one SpatialLM runs; it treats every cloud alone, so
a batch gives the same result as separate runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class WindowGroup:
    """Windows of one length L over serialized positions.

    positions: (W, L) int64 positions in the serialized sequence; writes: (W, L) bool, which window slots
    deliver their output (False for the padding slots of a tail window), or None when all do."""

    positions: Tensor
    writes: Tensor | None


def window_groups(offset: Tensor, patch_size: int) -> list[WindowGroup]:
    """Windows of every cloud, grouped by length. offset: (B,) int64 cumulative voxel counts.

    Loops over clouds only (B is small); the windows themselves are built as tensors."""
    device = offset.device
    ends = offset.tolist()
    starts = [0, *ends[:-1]]
    full_starts: list[int] = []
    tail_starts: list[int] = []
    tail_keep: list[int] = []
    short: dict[int, list[int]] = {}
    for start, end in zip(starts, ends, strict=True):
        count = end - start
        if count <= patch_size:
            short.setdefault(count, []).append(start)
            continue
        num_full, remainder = divmod(count, patch_size)
        full_starts.extend(range(start, start + num_full * patch_size, patch_size))
        if remainder:
            tail_starts.append(end - patch_size)
            tail_keep.append(remainder)
    slots = torch.arange(patch_size, device=device)
    groups: list[WindowGroup] = []
    if full_starts or tail_starts:
        window_starts = torch.tensor(full_starts + tail_starts, dtype=torch.long, device=device)
        positions = window_starts[:, None] + slots
        writes = None
        if tail_starts:
            keep = torch.tensor([patch_size] * len(full_starts) + tail_keep, device=device)
            writes = slots[None, :] >= (patch_size - keep)[:, None]
        groups.append(WindowGroup(positions=positions, writes=writes))
    for length, cloud_starts in sorted(short.items()):
        window_starts = torch.tensor(cloud_starts, dtype=torch.long, device=device)
        positions = window_starts[:, None] + torch.arange(length, device=device)
        groups.append(WindowGroup(positions=positions, writes=None))
    return groups


class SerializedAttention(nn.Module):
    """Multi-head self-attention inside serialized windows. Parameters ``qkv`` (3C, C) and ``proj`` (C, C).

    forward(feat (V, C), order (V,) int64 serialized position -> voxel index, windows) -> (V, C)."""

    def __init__(self, channels: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if channels % num_heads != 0:
            raise ValueError(f"channels {channels} not divisible by heads {num_heads}")
        self.channels = channels
        self.num_heads = num_heads
        self.scale = (channels // num_heads) ** -0.5
        self.qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias)
        self.proj = nn.Linear(channels, channels)

    def forward(self, feat: Tensor, order: Tensor, windows: list[WindowGroup]) -> Tensor:
        num_voxels, channels = feat.shape
        heads, head_dim = self.num_heads, channels // self.num_heads
        qkv = self.qkv(feat)  # (V, 3C)
        out = feat.new_empty(num_voxels, channels)
        for group in windows:
            voxels = order[group.positions]  # (W, L)
            num_windows, length = voxels.shape
            q, k, v = (
                qkv.index_select(0, voxels.flatten())
                .view(num_windows, length, 3, heads, head_dim)
                .permute(2, 0, 3, 1, 4)
                .unbind(0)
            )  # each (W, H, L, D)
            attended = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
            attended = attended.transpose(1, 2).reshape(num_windows, length, channels)
            if group.writes is None:
                out.index_copy_(0, voxels.flatten(), attended.reshape(-1, channels))
            else:
                out.index_copy_(0, voxels[group.writes], attended[group.writes])
        return self.proj(out)
