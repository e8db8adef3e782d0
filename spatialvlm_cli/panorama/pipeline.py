"""One panorama through a VLM: views -> prompt -> (PanoRoPE) ids -> streamed generation -> a JSON-ready result.

`PanoramaRequest` is checked without loading anything (bad flags fail in milliseconds); `run_panorama` does the
rest with a loaded model. With `vlm_pe` None nothing is installed on the model: its ids are transformers' own.
`PanoramaRun` is one `infer --image` run: the request with the image, the output and the model to load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.generation import stream_generate
from spatialvlm_cli.panorama.families import PanoramaFamily, check_vlm_pe
from spatialvlm_cli.panorama.geometry import SPATIALVLM, ViewLayout, plan_views
from spatialvlm_cli.panorama.image import Panorama, layout_images
from spatialvlm_cli.panorama.positions import (
    PANO_MODES,
    PANO_ROPE_1D,
    PANO_ROPE_MROPE,
    PositionScheme,
    summarize_positions,
)

if TYPE_CHECKING:
    from spatialvlm_cli.generation import GenerationSettings
    from spatialvlm_cli.panorama.models import LoadedPanoramaModel

DEFAULT_PROMPT = "Describe this 360-degree panorama in detail."
DEFAULT_VIEW_HEIGHT_PX = 448


@dataclass(frozen=True)
class PanoramaRequest:
    """What to ask about a panorama and how to cut it (the `--image` flags).

    views: 0 (the panorama as one image) or 3 … 24 tiles; overlap: column overlap r of neighbouring tiles
    (convention 'spatialvlm'); fov_deg: vertical field of view of each tile ('spatialvlm') or both fovs of square
    tiles ('panollava'); global_view: also send the whole panorama first (always on with views 0).
    vlm_pe: None | 'PanoRoPE_1D' | 'PanoRoPE'; pano_mode: 'shared' | 'cora'. id_overlap: the overlap ratio the
    position ids use, [0, 1); None: the views' column overlap. convention: 'spatialvlm' | 'panollava' (geometry.py).
    view_height_px: tile height; None: the model's own image size (`PanoramaProcessor.view_height_px`), 448 px
    while validating. global_px: the global view's height (its side when letter-boxed); None: view_height_px.
    image_pixels: the area every image is resized to by a Qwen-VL processor (min_pixels = max_pixels; panollava's
    image_size²); None: the checkpoint's processor settings; other families refuse it.
    preset: the `--pano_preset` these settings came from (recorded in the JSON), or None."""

    prompt: str = DEFAULT_PROMPT
    views: int = 4
    overlap: float = 0.2
    fov_deg: float = 90.0
    global_view: bool = True
    vlm_pe: str | None = None
    pano_mode: str = "shared"
    id_overlap: float | None = None
    convention: str = SPATIALVLM
    view_height_px: int | None = None
    global_px: int | None = None
    image_pixels: int | None = None
    preset: str | None = None
    layout: ViewLayout = field(init=False)

    def __post_init__(self) -> None:
        if self.vlm_pe not in (None, PANO_ROPE_1D, PANO_ROPE_MROPE):
            raise ConfigError(
                f"--VLM_PE {self.vlm_pe} is not a panorama encoding; with --image use None, {PANO_ROPE_1D} "
                f"(InternVL3.5, Gemma3) or {PANO_ROPE_MROPE} (Qwen2.5-VL, Qwen3-VL)"
            )
        if self.pano_mode not in PANO_MODES:
            raise ConfigError(f"--pano_mode must be one of {', '.join(PANO_MODES)}, got '{self.pano_mode}'")
        if not self.prompt.strip():
            raise ConfigError("--prompt must not be empty")
        if self.id_overlap is not None and not 0 <= self.id_overlap < 1:
            raise ConfigError(f"--id_overlap must be in [0, 1), got {self.id_overlap}")
        if self.image_pixels is not None and self.image_pixels < 256:
            raise ConfigError(f"image_pixels must be at least 256 (16 × 16), got {self.image_pixels}")
        if self.global_px is not None and self.global_px < 16:
            raise ConfigError(f"the global view must be at least 16 pixels high, got {self.global_px}")
        height = self.view_height_px or DEFAULT_VIEW_HEIGHT_PX
        layout = plan_views(self.views, self.overlap, self.fov_deg, self.global_view, height, self.convention)
        object.__setattr__(self, "layout", layout)
        if self.vlm_pe is not None and not self.layout.tiles:
            raise ConfigError(f"--VLM_PE {self.vlm_pe} needs perspective views; --views 0 sends one image")

    @property
    def image_height_px(self) -> int:
        """Height of every image sent (tiles and the global view), pixels."""
        return self.view_height_px or DEFAULT_VIEW_HEIGHT_PX

    @property
    def global_height_px(self) -> int:
        """Height of the global view, pixels (its side when letter-boxed)."""
        return self.global_px or self.image_height_px

    @property
    def ids_overlap(self) -> float:
        """The overlap ratio r the position ids use: `id_overlap`, else the views' column overlap."""
        return self.layout.overlap if self.id_overlap is None else self.id_overlap

    def for_model(self, loaded: LoadedPanoramaModel) -> PanoramaRequest:
        """This request with views sized for `loaded`'s image processor (unless a height was given)."""
        if self.view_height_px is not None:
            return self
        return replace(self, view_height_px=loaded.processor.view_height_px)

    def scheme(self) -> PositionScheme:
        return PositionScheme(
            vlm_pe=self.vlm_pe,
            mode=self.pano_mode,
            overlap=self.ids_overlap,
            tile_of_image=tuple(self.layout.tile_of_image()),
        )

    def check_family(self, family: PanoramaFamily) -> None:
        check_vlm_pe(family, self.vlm_pe)
        if self.image_pixels is not None and not family.takes_image_pixels:
            raise ConfigError(f"a {family.model_type} model resizes images to its own fixed size; image_pixels "
                              "applies to Qwen-VL models only")


@dataclass(frozen=True)
class PanoramaRun:
    """One `infer --image` run as its flags (and YAML config) ask for it.

    image: the jpg/png equirectangular panorama. output: a .json file or a folder; None: the working folder.
    request: what to ask and how to cut the panorama. generation: sampling settings. model: checkpoint folder, hub
    id or preset (tiny-internvl, tiny-gemma3, tiny-qwen2.5-vl, tiny-qwen3-vl); None: DEFAULT_PANORAMA_MODEL
    (OpenGVLab/InternVL3_5-1B-HF). device / dtype / attn_implementation: as `load_panorama_model` takes them.
    overwrite: replace an existing file this tool did not write for this image."""

    image: Path
    output: Path | None
    request: PanoramaRequest
    generation: GenerationSettings
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str | None = None
    overwrite: bool = False


@dataclass
class PanoramaResult:
    """text: the generated answer. positions: `summarize_positions` of the prompt's ids (rotary rows).
    images: one dict per image sent (global view or tile geometry)."""

    text: str
    num_new_tokens: int
    prompt_tokens: int
    seconds: float
    images: list[dict[str, Any]]
    positions: dict[str, Any]


def prepare_inputs(loaded: LoadedPanoramaModel, panorama: Panorama, request: PanoramaRequest) -> dict[str, Any]:
    """The model inputs (batch 1) for a request, on the model's device; pixel values in the model's dtype."""
    images = layout_images(panorama, request.layout, global_height_px=request.global_height_px)
    inputs = loaded.processor(images, request.prompt, request.image_pixels)
    model = loaded.model
    moved = {key: value.to(model.device) for key, value in inputs.items()}
    moved["pixel_values"] = moved["pixel_values"].to(model.dtype)
    return moved


def describe_images(panorama: Panorama, request: PanoramaRequest) -> list[dict[str, Any]]:
    """JSON descriptions of the images sent, in prompt order."""
    described: list[dict[str, Any]] = []
    if request.layout.global_view:
        if request.layout.letterbox_global:
            side = request.global_height_px
            described.append({"kind": "global", "width": side, "height": side, "letterboxed": True})
        else:
            height = min(request.global_height_px, panorama.height)
            width = max(1, round(panorama.width * height / panorama.height))
            described.append({"kind": "global", "width": width, "height": height})
    described.extend({"kind": "tile", **tile.to_dict()} for tile in request.layout.tiles)
    return described


def run_panorama(
    loaded: LoadedPanoramaModel,
    panorama: Panorama,
    request: PanoramaRequest,
    generation: GenerationSettings,
    on_text: Callable[[str], None] | None = None,
) -> PanoramaResult:
    """Generate an answer about `panorama`, streaming text pieces to `on_text`.

    Raises ConfigError when `request.vlm_pe` does not fit the model family."""
    # Here, not at the top: `infer` checks a PanoramaRequest before torch loads (tests/test_layering.py).
    from spatialvlm_cli.panorama.position_ids import PanoramaPositions

    request.check_family(loaded.family)
    request = request.for_model(loaded)
    scheme = request.scheme()
    inputs = prepare_inputs(loaded, panorama, request)
    positions = PanoramaPositions(loaded.model, loaded.family, scheme, loaded.processor.image_token_id)
    ids = positions.for_inputs(inputs)
    rotary_ids = loaded.family.rotary_rows(ids)[..., 0, :]
    is_image = (inputs["input_ids"][0] == loaded.processor.image_token_id).cpu().numpy()
    summary = summarize_positions(rotary_ids.cpu().numpy(), is_image, scheme.tile_of_image)
    started = time.perf_counter()
    # Native ids stay transformers' own; a panorama scheme's ids go in explicitly and generate() continues them.
    model_inputs = inputs if scheme.vlm_pe is None else {**inputs, "position_ids": ids}
    result = stream_generate(loaded.model, loaded.processor.tokenizer, model_inputs, generation, on_text)
    return PanoramaResult(
        text=result.text,
        num_new_tokens=result.num_new_tokens,
        prompt_tokens=int(inputs["input_ids"].shape[1]),
        seconds=time.perf_counter() - started,
        images=describe_images(panorama, request),
        positions=summary,
    )


def result_json(result: PanoramaResult, panorama: Panorama, request: PanoramaRequest,
                loaded: LoadedPanoramaModel) -> dict[str, Any]:
    """The JSON document `infer --image` writes."""
    layout = request.layout
    return {
        "image": str(panorama.source),
        "image_size": [panorama.width, panorama.height],
        "model": loaded.spec,
        "model_type": loaded.family.model_type,
        "random_weights": loaded.random_weights,
        "vlm_pe": request.vlm_pe or "None",
        "pano_mode": request.pano_mode if request.vlm_pe else None,
        "pano_preset": request.preset,
        "prompt": request.prompt,
        "text": result.text,
        "views": {
            "tiles": len(layout.tiles),
            "overlap": round(layout.overlap, 6),
            "id_overlap": request.ids_overlap if request.vlm_pe else None,
            "convention": layout.convention,
            "hfov_deg": round(layout.tiles[0].hfov_deg, 4) if layout.tiles else 360.0,
            "vfov_deg": request.fov_deg if layout.tiles else 180.0,
            "global_view": layout.global_view,
            "image_pixels": request.image_pixels,
            "images": result.images,
        },
        "positions": result.positions,
        "prompt_tokens": result.prompt_tokens,
        "num_new_tokens": result.num_new_tokens,
        "seconds": round(result.seconds, 3),
        "warnings": [panorama.aspect_warning] if panorama.aspect_warning else [],
    }
