"""Sparse voxel sets and their neighbour maps: the integer half of the sparse-convolution core.

A voxel set is a (V, 3) int64 tensor of grid cells plus a (V,) int64 batch column. Each voxel is packed into
one int64 key ``batch << 51 | (x + pad) << 34 | (y + pad) << 17 | (z + pad)``: sorting keys sorts voxels
lexicographically by (batch, x, y, z), and adding a packed offset to a key gives the key of the neighbour
(each 17-bit field has room for the padding, so no carry crosses fields). Neighbours are found by binary
search (``torch.searchsorted``) in the sorted keys: no hash table, no Python loop over voxels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import Tensor

FIELD_BITS = 17
FIELD_MASK = (1 << FIELD_BITS) - 1
MAX_COORD = 1 << 16  # grid cells must lie in [0, MAX_COORD): room for a padding of up to 3 cells
MAX_BATCH = 1 << (63 - 3 * FIELD_BITS)  # 4096 clouds per batch keep keys non-negative
KEY_PAD = 4  # coordinate padding inside a key: covers offsets of kernels up to 7 (radius 3)


def pack_keys(batch: Tensor, grid_coord: Tensor, pad: int = KEY_PAD) -> Tensor:
    """Pack (V,) batch indices and (V, 3) int64 grid cells (each in [-pad, MAX_COORD)) into (V,) int64 keys."""
    g = grid_coord.long() + pad
    return (batch.long() << (3 * FIELD_BITS)) | (g[:, 0] << (2 * FIELD_BITS)) | (g[:, 1] << FIELD_BITS) | g[:, 2]


def unpack_keys(keys: Tensor, pad: int = KEY_PAD) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack_keys`: (V,) int64 keys -> batch (V,) int64 and grid cells (V, 3) int64."""
    coords = torch.stack(
        [(keys >> (2 * FIELD_BITS)) & FIELD_MASK, (keys >> FIELD_BITS) & FIELD_MASK, keys & FIELD_MASK],
        dim=1,
    )
    return keys >> (3 * FIELD_BITS), coords - pad


def offset_key(delta: tuple[int, int, int]) -> int:
    """Key increment that moves a packed voxel by ``delta`` grid cells (may be negative)."""
    return (delta[0] << (2 * FIELD_BITS)) + (delta[1] << FIELD_BITS) + delta[2]


def spconv_offsets(kernel_size: int) -> list[tuple[int, int, int]]:
    """Neighbour offsets in spconv's KRSC weight order: index = (dx + r) * k*k + (dy + r) * k + (dz + r)."""
    r = kernel_size // 2
    span = range(-r, r + 1)
    return [(dx, dy, dz) for dx, dy, dz in itertools.product(span, span, span)]


def torchsparse_offsets(kernel_size: int) -> list[tuple[int, int, int]]:
    """Offsets in torchsparse 2.1's kernel order (``kernel`` parameter of shape (k**3, C_in, C_out)).

    Odd kernels: x varies fastest, offsets in [-r, r]. Even kernels (the stride-2 k=2 down-convolution):
    z varies fastest, offsets in [0, k) from the input voxel ``2 * out`` (torchsparse's CUDA kernel maps,
    ``lookup_coords_kernel`` / ``downsample_hashmap_kmap_stage3``, agree on this order)."""
    if kernel_size % 2 == 1:
        r = kernel_size // 2
        span = range(-r, r + 1)
        return [(dx, dy, dz) for dz, dy, dx in itertools.product(span, span, span)]
    span = range(kernel_size)
    return [(dx, dy, dz) for dx, dy, dz in itertools.product(span, span, span)]


@dataclass
class PairChunk:
    """Consecutive kernel offsets whose pairs are gathered and scattered in one go.

    offsets: kernel indices k; sizes: their pair counts; in_idx / out_idx: (P,) int64, the offsets' pairs
    concatenated in that order."""

    offsets: list[int]
    sizes: list[int]
    in_idx: Tensor
    out_idx: Tensor


@dataclass
class KernelMap:
    """Which input voxel feeds which output voxel through which kernel weight.

    pairs[k] is ``(out_idx, in_idx)``, two (P_k,) int64 tensors: output voxel out_idx[j] receives
    ``feat[in_idx[j]] @ weight[k]``. ``None`` marks the identity map (every voxel feeds itself), which the
    convolution runs as one dense matmul. num_out is the number of output voxels."""

    pairs: list[tuple[Tensor, Tensor] | None]
    num_out: int
    _chunks: dict[int, list[PairChunk]] = field(default_factory=dict, repr=False)

    def chunks(self, max_pairs: int) -> list[PairChunk]:
        """The non-identity offsets grouped into chunks of at most ``max_pairs`` pairs (an offset with more
        pairs gets a chunk of its own). Cached: all convolutions of a stage share the map."""
        if max_pairs not in self._chunks:
            groups: list[list[int]] = []
            rows = 0
            for k, pairs in enumerate(self.pairs):
                if pairs is None or pairs[0].numel() == 0:
                    continue
                size = pairs[0].numel()
                if not groups or rows + size > max_pairs:
                    groups.append([])
                    rows = 0
                groups[-1].append(k)
                rows += size
            self._chunks[max_pairs] = [
                PairChunk(
                    offsets=group,
                    sizes=[self.pairs[k][0].numel() for k in group],
                    in_idx=torch.cat([self.pairs[k][1] for k in group]),
                    out_idx=torch.cat([self.pairs[k][0] for k in group]),
                )
                for group in groups
            ]
        return self._chunks[max_pairs]


def submanifold_kernel_map(batch: Tensor, grid_coord: Tensor, offsets: list[tuple[int, int, int]]) -> KernelMap:
    """Neighbour pairs of a submanifold convolution (outputs at the input voxels).

    batch: (V,) int64; grid_coord: (V, 3) int64 unique per cloud; offsets: the kernel's offset table.
    Output voxel i gathers input voxel j for offset d when coord[j] == coord[i] + d. Only half of the
    offsets are searched: the pairs of -d are those of d with input and output swapped."""
    keys = pack_keys(batch, grid_coord)
    sorted_keys, perm = torch.sort(keys)
    num_voxels = keys.shape[0]
    index = {d: k for k, d in enumerate(offsets)}
    pairs: list[tuple[Tensor, Tensor] | None] = [None] * len(offsets)
    for k, d in enumerate(offsets):
        if d == (0, 0, 0) or pairs[k] is not None:
            continue
        query = keys + offset_key(d)
        pos = torch.searchsorted(sorted_keys, query).clamp_(max=num_voxels - 1)
        found = sorted_keys[pos] == query
        out_idx = found.nonzero().squeeze(1)
        in_idx = perm[pos[found]]
        pairs[k] = (out_idx, in_idx)
        mirror = index.get((-d[0], -d[1], -d[2]))
        if mirror is not None:
            pairs[mirror] = (in_idx, out_idx)
    return KernelMap(pairs=pairs, num_out=num_voxels)


@dataclass
class Downsampled:
    """Result of merging voxels into 2x coarser cells (``unique(c // stride)`` per cloud).

    batch: (V', ) int64 and grid_coord: (V', 3) int64 of the coarse cells, lexicographic (batch, x, y, z);
    inverse: (V,) int64 coarse cell of every fine voxel, -1 for a voxel that was dropped."""

    batch: Tensor
    grid_coord: Tensor
    inverse: Tensor


def downsample(
    batch: Tensor, grid_coord: Tensor, stride: int, num_clouds: int, valid_range: bool = False
) -> Downsampled:
    """Coarse cells ``unique(floor(c / stride))`` in lexicographic order, per cloud.

    valid_range=True reproduces torchsparse 2.1's default ("hashmap_on_the_fly") strided convolution
    without a ``spatial_range``: the extent is inferred as max + 1 per axis and only windows that fit it
    entirely are kept, so a coarse cell must satisfy ``c <= (max - stride + 1) // stride`` on every axis.
    Voxels on the last row of an axis whose size is not a multiple of the stride are dropped. The extent
    is taken per cloud (torchsparse takes it over its batch; SpatialLM always runs a batch of one)."""
    coarse = torch.div(grid_coord, stride, rounding_mode="floor")
    keep = None
    if valid_range:
        cloud_max = torch.full((num_clouds, 3), -1, dtype=torch.long, device=grid_coord.device)
        cloud_max.scatter_reduce_(0, batch[:, None].expand(-1, 3), grid_coord, reduce="amax")
        limit = torch.div(cloud_max - (stride - 1), stride, rounding_mode="floor")
        keep = (coarse <= limit[batch]).all(dim=1)
        batch, coarse = batch[keep], coarse[keep]
    keys, inverse = torch.unique(pack_keys(batch, coarse), sorted=True, return_inverse=True)
    out_batch, out_coord = unpack_keys(keys)
    if keep is not None:
        full_inverse = torch.full(keep.shape, -1, dtype=torch.long, device=keep.device)
        full_inverse[keep] = inverse
        inverse = full_inverse
    return Downsampled(batch=out_batch, grid_coord=out_coord, inverse=inverse)


def strided_kernel_map(
    grid_coord: Tensor, down: Downsampled, stride: int, offsets: list[tuple[int, int, int]]
) -> KernelMap:
    """Pairs of a kernel == stride convolution: each kept fine voxel feeds exactly its coarse cell,
    through the weight of its offset ``c - stride * coarse`` (looked up in ``offsets``).

    grid_coord: (V, 3) int64 fine voxels; down: their coarse cells from :func:`downsample`."""
    kept = (down.inverse >= 0).nonzero().squeeze(1)
    out_idx = down.inverse[kept]
    delta = grid_coord[kept] - stride * down.grid_coord[out_idx]  # (P, 3) in [0, stride)
    table = torch.full((stride, stride, stride), -1, dtype=torch.long, device=grid_coord.device)
    for k, (dx, dy, dz) in enumerate(offsets):
        table[dx, dy, dz] = k
    kernel_idx = table[delta[:, 0], delta[:, 1], delta[:, 2]]
    sort = torch.argsort(kernel_idx, stable=True)
    counts = torch.bincount(kernel_idx, minlength=len(offsets)).tolist()
    pairs: list[tuple[Tensor, Tensor] | None] = list(
        zip(out_idx[sort].split(counts), kept[sort].split(counts), strict=True)
    )
    return KernelMap(pairs=pairs, num_out=down.grid_coord.shape[0])
