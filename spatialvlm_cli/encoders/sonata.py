"""Sonata / Point Transformer V3 encoder as SpatialLM 1.1 uses it, in plain PyTorch.

Pipeline (``point_backbone.`` parameter names in brackets):
  embedding  Linear -> LayerNorm -> GELU                                   [embedding.stem.{linear,norm}]
  stage s    (s > 0) grid pooling: Linear, max over each 2x cell, LayerNorm, GELU   [enc.enc{s}.down.*]
             blocks: x += CPE(x); x += Attn(LN(x)); x += MLP(LN(x))       [enc.enc{s}.block{i}.*]
             CPE = submanifold conv k3 (spconv layout) -> Linear -> LayerNorm
  output     tokens of the last stage ++ 63 Fourier features of their cell -> Linear   [input_proj]

Voxels are re-serialized after every pooling; block i of a stage attends along order ``i % len(order)``.
After the first pooling the voxels of every stage are in lexicographic (batch, x, y, z) order, which is the
token order SpatialLM feeds the language model.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from .attention import SerializedAttention, WindowGroup, window_groups
from .batch import EncodedPoints, VoxelBatch, batch_to_offset, check_features, check_voxels, restore_order, sort_voxels
from .config import SonataConfig
from .conv import SpconvSubMConv3d
from .fourier import FOURIER_DIM, fourier_encode
from .serialization import serialize
from .voxels import KernelMap, downsample, spconv_offsets, submanifold_kernel_map


class StageContext:
    """What every block of a stage shares: the voxels, the conv neighbour map, the serialization orders
    and the attention windows. Built once per stage."""

    def __init__(self, voxels: VoxelBatch, orders: tuple[str, ...], patch_size: int, shuffle: bool) -> None:
        self.voxels = voxels
        self.kernel_map: KernelMap = submanifold_kernel_map(voxels.batch, voxels.grid_coord, spconv_offsets(3))
        order = serialize(voxels.grid_coord, voxels.offset, orders)  # (k, V)
        if shuffle:
            order = order[torch.randperm(order.shape[0], device=order.device)]
        self.order = order
        self.windows: list[WindowGroup] = window_groups(voxels.offset, patch_size)


class MLP(nn.Module):
    """fc1 -> GELU -> fc2 on (V, C) features."""

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden_channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm PTv3 block on (V, C) features of one stage."""

    def __init__(self, channels: int, num_heads: int, mlp_ratio: float, order_index: int) -> None:
        super().__init__()
        self.order_index = order_index
        self.cpe = nn.ModuleList(
            [SpconvSubMConv3d(channels, channels, 3, bias=True), nn.Linear(channels, channels), nn.LayerNorm(channels)]
        )
        self.norm1 = nn.Sequential(nn.LayerNorm(channels))
        self.attn = SerializedAttention(channels, num_heads)
        self.norm2 = nn.Sequential(nn.LayerNorm(channels))
        self.mlp = nn.Sequential(MLP(channels, int(channels * mlp_ratio)))

    def forward(self, feat: Tensor, context: StageContext) -> Tensor:
        conv, linear, norm = self.cpe
        feat = feat + norm(linear(conv(feat, context.kernel_map)))
        order = context.order[self.order_index % context.order.shape[0]]
        feat = feat + self.attn(self.norm1(feat), order, context.windows)
        return feat + self.mlp(self.norm2(feat))


class GridPooling(nn.Module):
    """Merge voxels into ``stride``-times coarser cells: Linear, channel-wise max, LayerNorm, GELU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.proj = nn.Linear(in_channels, out_channels)
        self.norm = nn.Sequential(nn.LayerNorm(out_channels))
        self.act = nn.GELU()

    def forward(self, feat: Tensor, voxels: VoxelBatch) -> tuple[Tensor, VoxelBatch]:
        """feat: (V, C_in). Returns (V', C_out) features and the coarse voxels, lexicographic per cloud."""
        down = downsample(voxels.batch, voxels.grid_coord, self.stride, voxels.num_clouds)
        projected = self.proj(feat)
        pooled = projected.new_zeros(down.grid_coord.shape[0], projected.shape[1])
        index = down.inverse[:, None].expand_as(projected)
        pooled.scatter_reduce_(0, index, projected, reduce="amax", include_self=False)
        coarse = VoxelBatch(
            grid_coord=down.grid_coord, batch=down.batch, offset=batch_to_offset(down.batch, voxels.num_clouds)
        )
        return self.act(self.norm(pooled)), coarse


class Stage(nn.Module):
    """Optional pooling (``down``) followed by blocks ``block0``..``block{n-1}``."""

    def __init__(self, config: SonataConfig, s: int) -> None:
        super().__init__()
        channels = config.enc_channels[s]
        self.orders = config.order
        self.shuffle_orders = config.shuffle_orders
        self.patch_size = config.enc_patch_size[s]
        self.down = GridPooling(config.enc_channels[s - 1], channels, config.stride[s - 1]) if s > 0 else None
        self.block_names = [f"block{i}" for i in range(config.enc_depths[s])]
        for i, name in enumerate(self.block_names):
            block = Block(channels, config.enc_num_head[s], config.mlp_ratio, order_index=i % len(config.order))
            self.add_module(name, block)

    def forward(self, feat: Tensor, voxels: VoxelBatch) -> tuple[Tensor, VoxelBatch]:
        if self.down is not None:
            feat, voxels = self.down(feat, voxels)
        context = StageContext(voxels, self.orders, self.patch_size, self.shuffle_orders)
        for name in self.block_names:
            feat = getattr(self, name)(feat, context)
        return feat, voxels


class Embedding(nn.Module):
    """Per-point Linear -> LayerNorm -> GELU stem."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(linear=nn.Linear(in_channels, channels), norm=nn.LayerNorm(channels), act=nn.GELU())
        )

    def forward(self, feat: Tensor) -> Tensor:
        return self.stem(feat)


class SonataEncoder(nn.Module):
    """SpatialLM 1.1's point encoder. ``out_channels`` = enc_channels[-1].

    forward(grid_coord (N, 3) int64 input-grid cells, feat (N, in_channels) float32 [xyz metres, rgb in
    [-1, 1]], offset (B,) int64) -> EncodedPoints with tokens at cells ``c // prod(stride)`` (lexicographic
    per cloud once any pooling ran)."""

    def __init__(self, config: SonataConfig) -> None:
        super().__init__()
        self.config = config
        self.out_channels = config.enc_channels[-1]
        self.embedding = Embedding(config.in_channels, config.enc_channels[0])
        self.enc = nn.ModuleDict({f"enc{s}": Stage(config, s) for s in range(config.num_stages)})
        self.input_proj = nn.Linear(self.out_channels + FOURIER_DIM, self.out_channels)

    def forward(self, grid_coord: Tensor, feat: Tensor, offset: Tensor) -> EncodedPoints:
        device, dtype = self.input_proj.weight.device, self.input_proj.weight.dtype
        voxels = check_voxels(grid_coord.to(device), offset.to(device), self.config.num_bins)
        feat = check_features(feat, voxels.grid_coord.shape[0], self.config.in_channels, dtype, device)
        voxels, perm = sort_voxels(voxels)  # the result does not depend on the order; speed does
        feat = self.embedding(feat[perm])
        for stage in self.enc.values():
            feat, voxels = stage(feat, voxels)
        position = voxels.grid_coord.to(dtype) / (self.config.reduced_grid_size - 1)
        tokens = self.input_proj(torch.cat([feat, fourier_encode(position)], dim=1))
        grid = voxels.grid_coord
        if not self.config.stride:  # no pooling: tokens are the input voxels, give them back in input order
            tokens, grid = restore_order(perm, tokens, grid)
        return EncodedPoints(features=tokens, grid_coord=grid, offset=voxels.offset)


def sonata_output_grid(config: SonataConfig, voxels: VoxelBatch) -> VoxelBatch:
    """The last stage's voxels, exactly as :class:`SonataEncoder` produces them, without any weights."""
    for stride in config.stride:
        down = downsample(voxels.batch, voxels.grid_coord, stride, voxels.num_clouds)
        voxels = VoxelBatch(down.grid_coord, down.batch, batch_to_offset(down.batch, voxels.num_clouds))
    return voxels
