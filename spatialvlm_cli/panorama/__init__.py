"""Panorama VLMs: equirectangular geometry, view cutting, PanoRoPE position ids, model loading and inference.

Importing this package is cheap (numpy and Pillow only); torch and transformers are imported inside the functions
that need them.

    from spatialvlm_cli.panorama import (PanoramaRequest, load_panorama_model, read_panorama, run_panorama,
                                         panorama_position_report)
    loaded = load_panorama_model("tiny-internvl")                # or a checkpoint folder / hub id
    request = PanoramaRequest(views=4, overlap=0.2, vlm_pe="PanoRoPE_1D")
    result = run_panorama(loaded, read_panorama("scenes/pano_room.png"), request, GenerationSettings(greedy=True))
"""

from spatialvlm_cli.versions import warn_untested_versions

warn_untested_versions()  # one warning line per dependency outside its tested window

from spatialvlm_cli.panorama.families import FAMILIES, PanoramaFamily, check_vlm_pe
from spatialvlm_cli.panorama.geometry import ViewLayout, ViewSpec, horizontal_fov_deg, plan_views, render_view
from spatialvlm_cli.panorama.image import Panorama, layout_images, read_panorama
from spatialvlm_cli.panorama.models import DEFAULT_PANORAMA_MODEL, LoadedPanoramaModel, load_panorama_model
from spatialvlm_cli.panorama.pipeline import (
    DEFAULT_PROMPT,
    PanoramaRequest,
    PanoramaResult,
    prepare_inputs,
    result_json,
    run_panorama,
)
from spatialvlm_cli.panorama.position_ids import PanoramaPositions, continue_ids, record_rotary_positions
from spatialvlm_cli.panorama.positions import (
    DEFAULT_PANO_MODE,
    PANO_MODES,
    PANO_ROPE_1D,
    PANO_ROPE_MROPE,
    PositionScheme,
    summarize_positions,
)
from spatialvlm_cli.panorama.presets import PRESETS, save_tiny_checkpoint
from spatialvlm_cli.panorama.report import panorama_position_report

__all__ = [
    "DEFAULT_PANORAMA_MODEL",
    "DEFAULT_PANO_MODE",
    "DEFAULT_PROMPT",
    "FAMILIES",
    "PANO_MODES",
    "PANO_ROPE_1D",
    "PANO_ROPE_MROPE",
    "PRESETS",
    "LoadedPanoramaModel",
    "Panorama",
    "PanoramaFamily",
    "PanoramaPositions",
    "PanoramaRequest",
    "PanoramaResult",
    "PositionScheme",
    "ViewLayout",
    "ViewSpec",
    "check_vlm_pe",
    "continue_ids",
    "horizontal_fov_deg",
    "layout_images",
    "load_panorama_model",
    "panorama_position_report",
    "plan_views",
    "prepare_inputs",
    "read_panorama",
    "record_rotary_positions",
    "render_view",
    "result_json",
    "run_panorama",
    "save_tiny_checkpoint",
    "summarize_positions",
]
