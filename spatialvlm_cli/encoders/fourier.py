"""Fourier features of normalised output-grid positions, appended to the tokens before ``input_proj``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

NUM_BANDS = 10
SAMPLE_RATE = 60
FOURIER_DIM = 3 * (2 * NUM_BANDS + 1)  # 63 for 3-D positions


def fourier_encode(position: Tensor) -> Tensor:
    """position: (M, 3) float, grid cells divided by (grid size - 1), so roughly in [0, 1].

    Returns (M, 63): [x, y, z, sin(f1 p), cos(f1 p), ..., sin(f10 p), cos(f10 p)] with each sin/cos a block
    of 3 (one per axis) and frequencies f = linspace(1, 30, 10) * pi radians per unit, as SceneScript."""
    freqs = torch.linspace(1.0, SAMPLE_RATE / 2, NUM_BANDS, device=position.device) * math.pi
    angles = freqs[None, :, None] * position[:, None, :]  # (M, bands, 3)
    bands = torch.stack([angles.sin(), angles.cos()], dim=2).reshape(position.shape[0], 2 * NUM_BANDS, 3)
    return torch.cat([position[:, None, :], bands], dim=1).flatten(1)
