"""Space-filling-curve codes that order voxels for Sonata's patch attention.

Four orders, as PTv3/Sonata define them: ``z`` (Morton, x the most significant axis of every bit triple),
``z-trans`` (Morton of (y, x, z)), ``hilbert`` (Skilling's 3-D Hilbert index, x the most significant axis) and
``hilbert-trans`` (Hilbert of (y, x, z)). Codes are computed with integer bit tricks on whole tensors; the
only Python loops run over the ``depth`` bit levels (at most 16) and the three axes.

The curve depth is ``bit_length(max_coord + 1)`` of the cloud, as upstream measures it: the Hilbert curve of
depth d is not a prefix of the curve of depth d + 1, so the depth changes the order and must match.
"""

from __future__ import annotations

import torch
from torch import Tensor

ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")
MAX_DEPTH = 16  # 3 * 16 = 48 code bits; the batch index goes above them


def curve_depth(grid_coord: Tensor) -> int:
    """Bits per axis that upstream uses for a cloud: ``int(max + 1).bit_length()``.

    grid_coord: (V, 3) int64 non-negative grid cells of one cloud."""
    return int(grid_coord.max().item() + 1).bit_length()


def _spread_bits(v: Tensor) -> Tensor:
    """Move bit i of each value to bit 3i (values < 2**21). v: int64 tensor, returns the same shape."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    v = (v | (v << 2)) & 0x1249249249249249
    return v


def interleave3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Morton interleave: bit i of ``a`` -> bit 3i+2, of ``b`` -> 3i+1, of ``c`` -> 3i. int64 tensors (V,)."""
    return (_spread_bits(a) << 2) | (_spread_bits(b) << 1) | _spread_bits(c)


def z_order_code(grid_coord: Tensor) -> Tensor:
    """Morton code of (V, 3) int64 grid cells, x most significant. Returns (V,) int64."""
    g = grid_coord.long()
    return interleave3(g[:, 0], g[:, 1], g[:, 2])


def hilbert_code(grid_coord: Tensor, depth: int) -> Tensor:
    """Hilbert index (Skilling 2004, "Programming the Hilbert curve") of (V, 3) int64 grid cells.

    Each coordinate must be < 2**depth. Axis 0 is the most significant axis of every bit triple.
    Returns (V,) int64 in [0, 2**(3*depth))."""
    axes = [grid_coord[:, i].long().clone() for i in range(3)]
    # Undo the excess work of Skilling's "axes to transpose", from the top bit level down.
    for level in range(depth - 1, 0, -1):
        q = 1 << level
        lower = q - 1
        for i in range(3):
            bit_set = (axes[i] & q) != 0
            swap = (axes[0] ^ axes[i]) & lower
            # bit set: invert the lower bits of axis 0; bit clear: exchange the lower bits of axes 0 and i
            new_first = torch.where(bit_set, axes[0] ^ lower, axes[0] ^ swap)
            if i > 0:
                axes[i] = torch.where(bit_set, axes[i], axes[i] ^ swap)
            axes[0] = new_first
    gray = interleave3(axes[0], axes[1], axes[2])
    # The interleaved transpose is the Gray code of the index: decode it with a prefix XOR.
    binary = gray
    shift = 1
    while shift < 3 * depth:
        binary = binary ^ (binary >> shift)
        shift <<= 1
    return binary


def serialization_code(grid_coord: Tensor, order: str, depth: int) -> Tensor:
    """Code of one order for (V, 3) int64 grid cells of one cloud; (V,) int64 below 2**(3*depth)."""
    if order not in ORDERS:
        raise ValueError(f"unknown serialization order {order!r}; expected one of {ORDERS}")
    if order.endswith("-trans"):
        grid_coord = grid_coord[:, [1, 0, 2]]
    if order.startswith("z"):
        return z_order_code(grid_coord)
    return hilbert_code(grid_coord, depth)


def serialize(grid_coord: Tensor, offset: Tensor, orders: tuple[str, ...]) -> Tensor:
    """Sort each cloud's voxels along every order, clouds kept in batch order.

    grid_coord: (V, 3) int64 grid cells; offset: (B,) int64 cumulative voxel counts.
    The depth is measured per cloud (as upstream does for its batch of one), so batching does not change
    any cloud's order. Returns ``order`` (k, V) int64: position -> voxel index, for k = len(orders).
    """
    num_voxels = grid_coord.shape[0]
    starts = torch.cat([offset.new_zeros(1), offset[:-1]])
    codes = torch.empty(len(orders), num_voxels, dtype=torch.long, device=grid_coord.device)
    for start, end in zip(starts.tolist(), offset.tolist(), strict=True):
        cloud = grid_coord[start:end]
        depth = curve_depth(cloud)
        for k, name in enumerate(orders):
            codes[k, start:end] = serialization_code(cloud, name, depth)
    batch = torch.repeat_interleave(torch.arange(len(offset), device=grid_coord.device), offset - starts)
    codes = codes | (batch << (3 * MAX_DEPTH))
    return torch.argsort(codes, dim=1)
