"""Panorama VLMs: equirectangular geometry, view cutting, PanoRoPE position ids, model loading and inference.

`geometry`, `image` and `positions` are numpy-only (no torch at import); `models`, `processing`, `hooks`,
`report` and `pipeline` import torch/transformers inside their functions.
"""

from spatialvlm_cli.panorama.geometry import ViewLayout, ViewSpec, horizontal_fov_deg, plan_views, render_view
from spatialvlm_cli.panorama.image import Panorama, layout_images, read_panorama

__all__ = [
    "Panorama",
    "ViewLayout",
    "ViewSpec",
    "horizontal_fov_deg",
    "layout_images",
    "plan_views",
    "read_panorama",
    "render_view",
]
