"""Group normalisation over each cloud's voxels, as torchsparse's ``spnn.GroupNorm`` computes it."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SampleGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` applied per cloud to the (1, C, V_b) tensor of its voxels.

    Statistics are taken over all voxels of a cloud and the channels of a group (biased variance, as
    torch's GroupNorm). Parameters ``weight``/``bias`` (C,) as in torchsparse checkpoints.
    forward(feat (V, C) float, batch (V,) int64 cloud index, num_clouds) -> (V, C)."""

    def forward(self, feat: Tensor, batch: Tensor, num_clouds: int) -> Tensor:  # type: ignore[override]
        num_voxels, channels = feat.shape
        groups = self.num_groups
        x = feat.reshape(num_voxels, groups, channels // groups)
        count = torch.bincount(batch, minlength=num_clouds).to(feat.dtype) * (channels // groups)
        group_sum = feat.new_zeros(num_clouds, groups).index_add_(0, batch, x.sum(dim=2))
        mean = group_sum / count[:, None]  # (B, G)
        centred = x - mean.index_select(0, batch)[:, :, None]
        square_sum = feat.new_zeros(num_clouds, groups).index_add_(0, batch, centred.square().sum(dim=2))
        inv_std = torch.rsqrt(square_sum / count[:, None] + self.eps)
        out = (centred * inv_std.index_select(0, batch)[:, :, None]).view(num_voxels, channels)
        if self.affine:
            out = out * self.weight + self.bias
        return out
