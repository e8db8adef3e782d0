"""SceneScript sparse ResNet encoder as SpatialLM 1.0 uses it, in plain PyTorch (no torchsparse).

Pipeline (``point_backbone.`` parameter names in brackets, L = conv_layers, D = embed_channels):
  stem       conv k7 -> GroupNorm -> ReLU; ResBlock                        [sparse_resnet.stem.{0,1}]
  blocks.i   conv k2 stride 2 -> GroupNorm -> ReLU; ResBlock; ResBlock      [sparse_resnet.blocks.{i}.{0,1,2}]
  bottleneck Linear(L, 2L) -> per-token GroupNorm(8) -> ReLU -> Linear(2L, D)  [sparse_resnet.bottleneck]
  output     tokens ++ 63 Fourier features of their cell -> Linear; + extra_embedding   [input_proj]
A ResBlock is x + (conv k3 -> GN -> ReLU -> conv k3 -> GN -> ReLU)(x). Convolutions use torchsparse 2.1's
``kernel`` (k**3, C_in, C_out) layout and offset order; GroupNorm statistics run over each cloud's voxels.
Tokens come in the order of the last down-convolution's output: lexicographic (x, y, z) per cloud.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from .batch import EncodedPoints, VoxelBatch, batch_to_offset, check_features, check_voxels, restore_order, sort_voxels
from .config import SceneScriptConfig
from .conv import TorchsparseConv3d
from .fourier import FOURIER_DIM, fourier_encode
from .norm import SampleGroupNorm
from .voxels import (
    Downsampled,
    KernelMap,
    downsample,
    strided_kernel_map,
    submanifold_kernel_map,
    torchsparse_offsets,
)


class ConvNormReLU(nn.ModuleList):
    """Sparse conv -> per-cloud GroupNorm(min(8, C)) -> ReLU. Children ``0`` (conv) and ``1`` (norm)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(
            [
                TorchsparseConv3d(in_channels, out_channels, kernel_size, stride),
                SampleGroupNorm(min(8, out_channels), out_channels),
            ]
        )

    def forward(self, feat: Tensor, kernel_map: KernelMap, voxels: VoxelBatch) -> Tensor:
        conv, norm = self
        return torch.relu(norm(conv(feat, kernel_map), voxels.batch, voxels.num_clouds))


class ResBlock(nn.Module):
    """x + block1(block0(x)) with two k3 ConvNormReLU on the same voxels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block0 = ConvNormReLU(channels, channels, 3)
        self.block1 = ConvNormReLU(channels, channels, 3)

    def forward(self, feat: Tensor, kernel_map: KernelMap, voxels: VoxelBatch) -> Tensor:
        return feat + self.block1(self.block0(feat, kernel_map, voxels), kernel_map, voxels)


class SparseResNet(nn.Module):
    """Stem, ``len(L) - 1`` down-sampling blocks, and the per-token bottleneck."""

    def __init__(self, config: SceneScriptConfig) -> None:
        super().__init__()
        layers = config.conv_layers
        self.valid_range = config.downsample_range == "valid"
        self.stem = nn.ModuleList([ConvNormReLU(config.input_channels, layers[0], 7), ResBlock(layers[0])])
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [ConvNormReLU(layers[i], layers[i + 1], 2, stride=2), ResBlock(layers[i + 1]), ResBlock(layers[i + 1])]
            )
            for i in range(len(layers) - 1)
        )
        self.bottleneck = nn.Sequential(
            nn.Linear(layers[-1], 2 * layers[-1]),
            nn.GroupNorm(8, 2 * layers[-1]),
            nn.ReLU(),
            nn.Linear(2 * layers[-1], config.embed_channels),
        )

    def forward(self, feat: Tensor, voxels: VoxelBatch) -> tuple[Tensor, VoxelBatch]:
        stem_conv, stem_res = self.stem
        feat = stem_conv(feat, _subm_map(voxels, 7), voxels)
        feat = stem_res(feat, _subm_map(voxels, 3), voxels)
        for down_conv, res0, res1 in self.blocks:
            down = strided_downsample(voxels, self.valid_range)
            coarse = VoxelBatch(down.grid_coord, down.batch, batch_to_offset(down.batch, voxels.num_clouds))
            feat = down_conv(feat, strided_kernel_map(voxels.grid_coord, down, 2, torchsparse_offsets(2)), coarse)
            voxels = coarse
            kernel_map = _subm_map(voxels, 3)
            feat = res1(res0(feat, kernel_map, voxels), kernel_map, voxels)
        return self.bottleneck(feat), voxels


def _subm_map(voxels: VoxelBatch, kernel_size: int) -> KernelMap:
    return submanifold_kernel_map(voxels.batch, voxels.grid_coord, torchsparse_offsets(kernel_size))


def strided_downsample(voxels: VoxelBatch, valid_range: bool) -> Downsampled:
    """The stride-2 cells a k2 s2 down-convolution outputs; InputError if a cloud keeps none."""
    down = downsample(voxels.batch, voxels.grid_coord, 2, voxels.num_clouds, valid_range=valid_range)
    kept = torch.bincount(down.batch, minlength=voxels.num_clouds)
    if bool((kept == 0).any()):
        cloud = int((kept == 0).nonzero()[0])
        raise InputError(
            f"cloud {cloud} is too small for SceneScript: a stride-2 convolution keeps none of its voxels "
            "(it must span at least 2 cells along every axis at every resolution)."
        )
    return down


class SceneScriptEncoder(nn.Module):
    """SpatialLM 1.0's point encoder. ``out_channels`` = embed_channels.

    forward(grid_coord (N, 3) int64 input-grid cells, feat (N, input_channels) float32, offset (B,) int64)
    -> EncodedPoints with tokens at the cells of the last down-convolution."""

    def __init__(self, config: SceneScriptConfig) -> None:
        super().__init__()
        self.config = config
        self.out_channels = config.embed_channels
        self.sparse_resnet = SparseResNet(config)
        self.input_proj = nn.Linear(config.embed_channels + FOURIER_DIM, config.embed_channels)
        self.extra_embedding = nn.Parameter(torch.empty(config.embed_channels).normal_(std=0.02))

    def forward(self, grid_coord: Tensor, feat: Tensor, offset: Tensor) -> EncodedPoints:
        device, dtype = self.input_proj.weight.device, self.input_proj.weight.dtype
        voxels = check_voxels(grid_coord.to(device), offset.to(device), self.config.num_bins)
        feat = check_features(feat, voxels.grid_coord.shape[0], self.config.input_channels, dtype, device)
        voxels, perm = sort_voxels(voxels)  # the result does not depend on the order; speed does
        feat, voxels = self.sparse_resnet(feat[perm], voxels)
        position = voxels.grid_coord.to(dtype) / (self.config.reduced_grid_size - 1)
        tokens = self.input_proj(torch.cat([feat, fourier_encode(position)], dim=1)) + self.extra_embedding
        grid = voxels.grid_coord
        if len(self.config.conv_layers) == 1:  # no down-convolution: give the input voxels back in input order
            tokens, grid = restore_order(perm, tokens, grid)
        return EncodedPoints(features=tokens, grid_coord=grid, offset=voxels.offset)


def scenescript_output_grid(config: SceneScriptConfig, voxels: VoxelBatch) -> VoxelBatch:
    """The last down-convolution's voxels, exactly as :class:`SceneScriptEncoder` produces them."""
    for _ in range(len(config.conv_layers) - 1):
        down = strided_downsample(voxels, config.downsample_range == "valid")
        voxels = VoxelBatch(down.grid_coord, down.batch, batch_to_offset(down.batch, voxels.num_clouds))
    return voxels
