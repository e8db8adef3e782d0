"""Point-cloud rows and point tokens: input normalisation, the point-token mask, default 1-D positions.

A point cloud reaches the model as rows [grid_coord (3, input-grid cells), xyz (3, metres, positive-shifted),
rgb (3, in [-1, 1])], SpatialLM's `point_clouds` format (see `spatialvlm_cli.preprocess`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.pe.positions import sequential_position_ids

if TYPE_CHECKING:
    from spatialvlm_cli.model.config import PointCloudFields

POINT_ROW_CHANNELS = 9


def split_point_clouds(point_clouds: Tensor | list[Tensor] | tuple[Tensor, ...]) -> list[Tensor]:
    """Normalise the accepted point-cloud inputs to a list of (N_i, 9) float32 tensors without NaN rows.

    point_clouds: a list of (N_i, 9) tensors, a (B, N, 9) tensor padded with NaN rows (SpatialLM's training
    convention), or one (N, 9) tensor. Rows are [grid_coord (input-grid cells), xyz (m), rgb ([-1, 1])]."""
    if isinstance(point_clouds, Tensor):
        if point_clouds.dim() == 2:
            point_clouds = point_clouds.unsqueeze(0)
        if point_clouds.dim() != 3:
            raise InputError(f"point_clouds must be (B, N, 9) or a list of (N, 9), got {tuple(point_clouds.shape)}")
        point_clouds = list(point_clouds.unbind(0))
    if len(point_clouds) == 0:
        raise InputError("no point clouds given")
    clouds = []
    for index, cloud in enumerate(point_clouds):
        if not isinstance(cloud, Tensor) or cloud.dim() != 2 or cloud.shape[-1] != POINT_ROW_CHANNELS:
            shape = tuple(cloud.shape) if isinstance(cloud, Tensor) else type(cloud).__name__
            raise InputError(f"point cloud {index} must be an (N, 9) tensor, got {shape}")
        if cloud.dtype not in (torch.float32, torch.float64):
            # bfloat16 holds integers exactly only up to 256: grid cells up to num_bins-1 would be corrupted.
            raise InputError(f"point cloud {index} must be float32, got {cloud.dtype}")
        cloud = cloud[~torch.isnan(cloud).any(dim=1)].float()
        if cloud.shape[0] == 0:
            raise InputError(f"point cloud {index} has no points (all rows empty or NaN)")
        clouds.append(cloud)
    return clouds


def point_token_mask(input_ids: Tensor, config: PointCloudFields) -> Tensor:
    """(B, S) bool: the `<|point_pad|>` ids lying between each row's first `<|point_start|>` and the `<|point_end|>`
    after it. Pad ids elsewhere (e.g. sampled by a random model) are ordinary text."""
    started = (input_ids == config.point_start_token_id).cumsum(dim=1) > 0
    not_ended = (input_ids == config.point_end_token_id).cumsum(dim=1) == 0
    return (input_ids == config.point_token_id) & started & not_ended


def default_position_ids(
    attention_mask: Tensor | None, past_length: int, batch: int, length: int, device: torch.device
) -> Tensor:
    """(B, S) int64 1-D positions as generate() makes them: `cumsum(mask) - 1` (pads 0), else `arange + past`."""
    if attention_mask is not None and attention_mask.dim() == 2:
        return sequential_position_ids(attention_mask.shape, attention_mask)[:, -length:]
    return torch.arange(past_length, past_length + length, device=device).unsqueeze(0).expand(batch, length)


def pad_point_clouds(clouds: list[Tensor]) -> Tensor:
    """B clouds (N_i, 9) -> (B, max N_i, 9) float32 padded with NaN rows (SpatialLM's batch convention, which
    `split_point_clouds` undoes)."""
    padded = torch.full((len(clouds), max(len(cloud) for cloud in clouds), POINT_ROW_CHANNELS), float("nan"),
                        dtype=torch.float32, device=clouds[0].device)
    for index, cloud in enumerate(clouds):
        padded[index, : len(cloud)] = cloud
    return padded
