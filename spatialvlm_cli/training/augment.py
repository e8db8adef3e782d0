"""Scene augmentation as SpatialLM's fine-tuning applies it: each example turned about the vertical axis through its
centre and scaled, the layout with it, then prepared again.

SpatialLM (`spatiallm/tuner/data/mm_plugin.py`) draws a yaw from {0°, 90°, 180°, 270°}, or uniformly in [0, 360°)
with `random_rotation` (its ARKitScenes recipe, for scans whose x and y axes are not aligned), and a scale in
[0.75, 1.25], for every example of every epoch. Here a draw is a function of (seed, step, example), so a resumed run
sees the same scenes. The turned cloud is voxelised again (no second outlier cleanup) and its answer is re-binned
from the new min corner, exactly as `infer` would see the turned scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.io import PointCloud
from spatialvlm_cli.layout import parse_layout
from spatialvlm_cli.training.data import ExampleBuilder, LayoutExample

ROTATIONS = ("none", "right", "uniform")  # no yaw; a multiple of 90°; any yaw


@dataclass(frozen=True)
class Augmentation:
    """rotation: one of ROTATIONS; scale: the largest relative size change (0.25: a factor in [0.75, 1.25])."""

    rotation: str = "none"
    scale: float = 0.0

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS:
            raise ConfigError(f"rotation must be one of {', '.join(ROTATIONS)}, got '{self.rotation}'")
        if not 0.0 <= self.scale < 1.0:
            raise ConfigError(f"the scale augmentation must be in [0, 1), got {self.scale}")

    @property
    def active(self) -> bool:
        return self.rotation != "none" or self.scale > 0

    def draw(self, seed: int, step: int, index: int) -> tuple[float, float]:
        """(yaw in radians, scale factor) for example `index` at `step`: a function of its arguments."""
        generator = torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_000_033 + index)
        u, v = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        yaw = {"none": 0.0, "right": math.floor(u * 4) * math.pi / 2, "uniform": u * 2 * math.pi}[self.rotation]
        return yaw, 1.0 + self.scale * (2 * v - 1)


def augment_example(example: LayoutExample, yaw: float, factor: float, builder: ExampleBuilder) -> LayoutExample:
    """The example's scene turned by `yaw` radians about the vertical axis through its centre and scaled by
    `factor` about it, prepared again with its answer re-binned (see the module docstring)."""
    xyz = example.rows[:, 3:6].astype(np.float64)  # metres from the prepared cloud's min corner
    centre = (xyz.min(0) + xyz.max(0)) / 2
    cos, sin = math.cos(yaw), math.sin(yaw)
    rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    turned = centre + factor * (xyz - centre) @ rotation.T
    # Back from [-1, 1] to unit range, half a level up: preprocessing's truncation to 0..255 gives each level back.
    colours = (np.rint((example.rows[:, 6:9].astype(np.float64) + 1.0) * 127.5) + 0.5) / 255.0
    answer, _ = parse_layout(builder.processor.tokenizer.decode(example.target_ids[:-1].tolist()))
    layout = answer.undiscretize(builder.num_bins).turned(yaw, factor, tuple(float(v) for v in centre))
    return builder.from_cloud(PointCloud(points=turned, colors=colours), layout, example.seed, example.request,
                              clean=False)
