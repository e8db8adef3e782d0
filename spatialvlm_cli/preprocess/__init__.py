"""Preprocessing: a user's scan made ready (units, crop, alignment: scan.py, align.py), then SpatialLM's cleanup,
shift, colour normalisation and grid sampling. No torch here."""

from spatialvlm_cli.preprocess.pointcloud import (
    PreparedCloud,
    cleanup,
    colors_to_255,
    fnv64_hash,
    grid_sample,
    grid_size_m,
    prepare_point_cloud,
)
from spatialvlm_cli.preprocess.scan import (
    Scan,
    ScanOptions,
    ScanTransform,
    condition_scan,
    detect_units,
    extent_warning,
    parse_crop,
    read_scan,
    read_scan_under_layout,
)

__all__ = [
    "PreparedCloud",
    "Scan",
    "ScanOptions",
    "ScanTransform",
    "cleanup",
    "colors_to_255",
    "condition_scan",
    "detect_units",
    "extent_warning",
    "fnv64_hash",
    "grid_sample",
    "grid_size_m",
    "parse_crop",
    "prepare_point_cloud",
    "read_scan",
    "read_scan_under_layout",
]
