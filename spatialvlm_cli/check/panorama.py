"""`spatialvlm check` on a panorama VLM: `panorama_position_report` per PanoRoPE variant, as `CheckResult` rows.

    from spatialvlm_cli.check.panorama import check_panorama, load_check_panorama, panorama_family, panorama_variants
    family = panorama_family("tiny-internvl")                  # None for point-cloud specs and hub ids
    variants = panorama_variants(family, "all")                # [(None, 'shared'), ('PanoRoPE_1D', 'shared'), ...]
    results = check_panorama("tiny-internvl", variants, load_check_panorama(None).panorama)

Each report item becomes `CheckResult(mode, None, None, check, level != "error", detail)`: a warning (text after
the image reusing image ids under the cora shift, which is that scheme's design) passes, an error fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spatialvlm_cli
from spatialvlm_cli.check.results import CheckResult
from spatialvlm_cli.errors import ModelLoadError
from spatialvlm_cli.panorama.families import PanoramaFamily, check_vlm_pe
from spatialvlm_cli.panorama.image import Panorama, read_panorama
from spatialvlm_cli.panorama.models import peek_family
from spatialvlm_cli.panorama.positions import DEFAULT_PANO_MODE, PANO_MODES
from spatialvlm_cli.pe.spec import is_stock_spelling

SHIPPED_PANORAMA = Path("scenes") / "pano_room.png"
CHECK_VIEWS = 4  # perspective tiles at yaw 0, 90, 180, 270 degrees, plus the global view
CHECK_OVERLAP = 0.2  # column overlap of neighbouring tiles (the infer default)
CHECK_PROMPT = "Describe the room."

Variant = tuple[str | None, str]  # (--VLM_PE: None | 'PanoRoPE_1D' | 'PanoRoPE', pano mode: 'shared' | 'cora')


@dataclass(frozen=True)
class CheckPanorama:
    """panorama: the equirectangular image checked; source: its path or a description of the synthetic one."""

    panorama: Panorama
    source: str


def panorama_family(spec: str) -> PanoramaFamily | None:
    """The panorama family of a preset name or a local checkpoint whose config.json names a panorama model type;
    None for anything else (point-cloud presets and checkpoints, hub ids), which the point-cloud checks handle."""
    try:
        return peek_family(spec)
    except ModelLoadError:  # a local config of another model type: not a panorama model
        return None


def panorama_variants(family: PanoramaFamily, vlm_pe: str | None) -> list[Variant]:
    """The (vlm_pe, mode) pairs `--VLM_PE` asks for: None / 'None' -> native ids; 'all' -> native ids plus the
    family's PanoRoPE variant in every mode; a PanoRoPE name -> that variant in the default mode. ConfigError
    (one line) when the variant does not fit the family."""
    if vlm_pe is not None and vlm_pe.strip().lower() == "all":
        return [(None, DEFAULT_PANO_MODE)] + [(family.pano_pe, mode) for mode in PANO_MODES]
    chosen = None if is_stock_spelling(vlm_pe) else str(vlm_pe).strip()
    check_vlm_pe(family, chosen)
    return [(chosen, DEFAULT_PANO_MODE)]


def variant_label(variant: Variant) -> str:
    """'None', 'PanoRoPE_1D/shared', 'PanoRoPE/cora' (the table's mode column)."""
    vlm_pe, mode = variant
    return "None" if vlm_pe is None else f"{vlm_pe}/{mode}"


def synthetic_panorama(width: int = 256, height: int = 128, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 equirectangular image: colour bands that wrap around in yaw (so the tiles differ
    from each other and the 360-degree seam is continuous) plus seeded noise."""
    generator = np.random.default_rng(seed)
    yaw, pitch = np.meshgrid(np.linspace(0.0, 2 * np.pi, width, endpoint=False), np.linspace(0.0, np.pi, height))
    bands = np.stack([np.sin(yaw), np.cos(2 * yaw), np.cos(pitch)], axis=-1) * 90.0 + 128.0
    return np.clip(bands + generator.normal(0.0, 20.0, bands.shape), 0, 255).astype(np.uint8)


def default_panorama_path() -> Path | None:
    """`scenes/pano_room.png` in the working directory or next to the package's source tree, if either exists."""
    root = Path(spatialvlm_cli.__file__).resolve().parents[1]
    for candidate in (Path.cwd() / SHIPPED_PANORAMA, root / SHIPPED_PANORAMA):
        if candidate.is_file():
            return candidate
    return None


def load_check_panorama(image: Path | None = None) -> CheckPanorama:
    """The given image (InputError if unreadable), else the shipped panorama, else a synthetic one in memory."""
    path = image if image is not None else default_panorama_path()
    if path is not None:
        return CheckPanorama(read_panorama(path), str(path))
    description = "synthetic 256 x 128 panorama (scenes/pano_room.png not found)"
    return CheckPanorama(Panorama(pixels=synthetic_panorama(), source=Path("synthetic.png")), description)


def check_panorama(
    spec: str,
    variants: list[Variant],
    panorama: Panorama,
    *,
    device: str = "cpu",
    dtype: str = "auto",
    decode_steps: int = 1,
    on_mode: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Load `spec` once and run `panorama_position_report` on 4 tiles + the global view of `panorama` for each
    variant (the ids are installed and removed per variant). `variants` come from `panorama_variants` (already
    fitted to the family). Raises ModelLoadError (one line) when the checkpoint cannot be loaded."""
    from spatialvlm_cli.panorama.models import load_panorama_model
    from spatialvlm_cli.panorama.pipeline import PanoramaRequest, prepare_inputs
    from spatialvlm_cli.panorama.report import panorama_position_report

    loaded = load_panorama_model(spec, device=device, dtype=dtype)
    results: list[CheckResult] = []
    for variant in variants:
        label = variant_label(variant)
        if on_mode is not None:
            on_mode(label)
        vlm_pe, mode = variant
        request = PanoramaRequest(
            prompt=CHECK_PROMPT, views=CHECK_VIEWS, overlap=CHECK_OVERLAP, vlm_pe=vlm_pe, pano_mode=mode
        ).for_model(loaded)
        inputs = prepare_inputs(loaded, panorama, request)
        report = panorama_position_report(loaded, inputs, request.scheme(), decode_steps=decode_steps)
        results.extend(
            CheckResult(label, None, None, item["check"], item["level"] != "error", item["detail"]) for item in report
        )
    return results
