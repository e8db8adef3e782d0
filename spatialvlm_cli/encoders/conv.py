"""Sparse 3-D convolutions as gather -> matmul -> scatter, with the parameter layouts of the real checkpoints.

For each kernel offset k the convolution gathers the input rows named by the kernel map, multiplies them by
that offset's (C_in, C_out) weight and adds the products into the output rows (``index_add_``); offsets are
batched into chunks so that each chunk costs one gather and one scatter. The centre offset of a submanifold
convolution maps every voxel to itself, so it runs as one dense matmul that also initialises the output.
Everything is vectorised; the only Python loop is over the k**3 offsets.

Two layouts are provided, each named as the library whose checkpoints we load:
- :class:`SpconvSubMConv3d`: spconv >= 2.2 ``SubMConv3d``, ``weight`` (C_out, k, k, k, C_in) "KRSC",
  optional ``bias``; used by Sonata's conditional positional encoding.
- :class:`TorchsparseConv3d`: torchsparse 2.1 ``Conv3d``, ``kernel`` (k**3, C_in, C_out), no bias; stride 1
  (submanifold, odd k) or stride == k (down-convolution); used by SceneScript.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .voxels import KernelMap, spconv_offsets, torchsparse_offsets

CHUNK_ELEMENTS = 1 << 20  # gathered rows x channels per chunk: two 4 MB work buffers that stay in cache


def sparse_conv(feat: Tensor, kernel_map: KernelMap, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Apply a sparse convolution.

    feat: (V_in, C_in) float; kernel_map: pairs per offset; weight: (K, C_in, C_out), weight[k] used for
    offset k of the map; bias: (C_out,) or None. Returns (V_out, C_out) in feat's dtype.

    Offsets are processed in chunks: one gather of all the chunk's input rows, one matmul per offset on its
    slice, one scatter-add of all products. Few large ops instead of three per offset matter on a busy CPU,
    where every parallel region can wait for a time slice."""
    identity = [k for k, pairs in enumerate(kernel_map.pairs) if pairs is None]
    needs_grad = torch.is_grad_enabled() and (feat.requires_grad or weight.requires_grad)
    c_in, c_out = weight.shape[1], weight.shape[2]
    # the identity offset (if any) initialises the output with one dense matmul
    out = feat @ weight[identity[0]] if identity else feat.new_zeros(kernel_map.num_out, c_out)
    for chunk in kernel_map.chunks(max(1, CHUNK_ELEMENTS // max(c_in, c_out))):
        gathered = feat.index_select(0, chunk.in_idx)  # (P, C_in)
        slices = gathered.split(chunk.sizes)
        if needs_grad:
            products = torch.cat([rows @ weight[k] for k, rows in zip(chunk.offsets, slices, strict=True)])
        else:  # write the products in place: no extra copy
            products = feat.new_empty(gathered.shape[0], c_out)
            for k, rows, target in zip(chunk.offsets, slices, products.split(chunk.sizes), strict=True):
                torch.mm(rows, weight[k], out=target)
        out = out.index_add(0, chunk.out_idx, products) if needs_grad else out.index_add_(0, chunk.out_idx, products)
    if bias is not None:
        out = out + bias
    return out


class SpconvSubMConv3d(nn.Module):
    """Submanifold convolution with spconv's parameters: ``weight`` (C_out, k, k, k, C_in), ``bias`` (C_out,).

    Equals a dense ``conv3d`` (cross-correlation, padding k // 2) evaluated at the active voxels, with
    ``weight.permute(0, 4, 1, 2, 3)`` as the dense kernel. forward(feat (V, C_in), kernel_map) -> (V, C_out);
    the kernel map comes from ``submanifold_kernel_map(..., spconv_offsets(k))`` and is shared by all
    convolutions of a stage."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"submanifold kernels must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.offsets = spconv_offsets(kernel_size)
        self.weight = nn.Parameter(torch.empty(out_channels, *(kernel_size,) * 3, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def stacked_weight(self) -> Tensor:
        """The weight as (k**3, C_in, C_out), offsets in ``spconv_offsets`` order."""
        c_out, c_in = self.weight.shape[0], self.weight.shape[-1]
        return self.weight.reshape(c_out, -1, c_in).permute(1, 2, 0)

    def forward(self, feat: Tensor, kernel_map: KernelMap) -> Tensor:
        return sparse_conv(feat, kernel_map, self.stacked_weight(), self.bias)


class TorchsparseConv3d(nn.Module):
    """Sparse convolution with torchsparse 2.1's parameter ``kernel`` (k**3, C_in, C_out) and no bias.

    stride 1 needs an odd k (submanifold; map from ``submanifold_kernel_map(..., torchsparse_offsets(k))``);
    stride == k is a down-convolution (map from ``strided_kernel_map(..., torchsparse_offsets(k))``).
    forward(feat (V_in, C_in), kernel_map) -> (V_out, C_out)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        if stride == 1 and kernel_size % 2 != 1:
            raise ValueError(f"a stride-1 (submanifold) kernel must be odd, got {kernel_size}")
        if stride not in (1, kernel_size):
            raise ValueError(f"only stride 1 or stride == kernel size are supported, got {stride}")
        self.kernel_size = kernel_size
        self.stride = stride
        self.offsets = torchsparse_offsets(kernel_size)
        self.kernel = nn.Parameter(torch.empty(kernel_size**3, in_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torchsparse's own initialisation: uniform(+-1/sqrt(C_in * k**3))
        bound = 1.0 / math.sqrt(self.kernel.shape[1] * self.kernel.shape[0])
        nn.init.uniform_(self.kernel, -bound, bound)

    def forward(self, feat: Tensor, kernel_map: KernelMap) -> Tensor:
        return sparse_conv(feat, kernel_map, self.kernel)
