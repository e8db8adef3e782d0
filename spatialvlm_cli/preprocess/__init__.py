"""Preprocessing: SpatialLM's cleanup, shift, colour normalisation and grid sampling. No torch here."""

from spatialvlm_cli.preprocess.pointcloud import (
    PreparedCloud,
    cleanup,
    colors_to_255,
    fnv64_hash,
    grid_sample,
    grid_size_m,
    prepare_point_cloud,
)

__all__ = [
    "PreparedCloud",
    "cleanup",
    "colors_to_255",
    "fnv64_hash",
    "grid_sample",
    "grid_size_m",
    "prepare_point_cloud",
]
