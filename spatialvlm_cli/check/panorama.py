"""`spatialvlm check` on a panorama VLM: the facts of `panorama_position_report` per PanoRoPE variant, judged by a
table of invariants (`PANORAMA_CHECKS`) into `CheckResult` rows.

    from spatialvlm_cli.check.panorama import check_panorama, load_check_panorama, panorama_family, panorama_variants
    family = panorama_family("tiny-internvl")                  # None for point-cloud specs and hub ids
    variants = panorama_variants(family, "all")                # [(None, 'shared'), ('PanoRoPE_1D', 'shared'), ...]
    results = check_panorama("tiny-internvl", variants, load_check_panorama(None).panorama)

Text after the image reusing image ids passes under the cora shift with a PanoRoPE variant (that scheme's design:
the measured collisions still show in the detail); anywhere else it fails. When the prompt's image runs do not match
the view layout only that check is reported: no ids can be computed for such a prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spatialvlm_cli
from spatialvlm_cli.check.results import Check, CheckResult, Invariant, Measurement
from spatialvlm_cli.errors import ModelLoadError
from spatialvlm_cli.flags import is_stock_spelling
from spatialvlm_cli.panorama.families import PanoramaFamily, check_vlm_pe
from spatialvlm_cli.panorama.image import Panorama, read_panorama
from spatialvlm_cli.panorama.models import load_panorama_model
from spatialvlm_cli.panorama.pipeline import PanoramaRequest, prepare_inputs
from spatialvlm_cli.panorama.positions import DEFAULT_PANO_MODE, PANO_MODES
from spatialvlm_cli.panorama.report import PanoramaPositionFacts, PanoramaRunFacts, panorama_position_report
from spatialvlm_cli.panorama.source import peek_family

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
    """Load `spec` once and judge `panorama_position_report` on 4 tiles + the global view of `panorama` for each
    variant (the ids are installed and removed per variant). `variants` come from `panorama_variants` (already
    fitted to the family). Raises ModelLoadError (one line) when the checkpoint cannot be loaded."""
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
        facts = panorama_position_report(loaded, inputs, request.scheme(), decode_steps=decode_steps)
        results += judge_panorama(facts, label)
    return results


def _run(facts: PanoramaPositionFacts) -> PanoramaRunFacts:
    if facts.run is None:
        raise ValueError("the prompt's image runs do not match the layout: no run facts to judge")
    return facts.run


def image_runs_match_layout(facts: PanoramaPositionFacts) -> Measurement:
    images = len(facts.scheme.tile_of_image)
    return Measurement(facts.image_runs == images, {"runs": facts.image_runs, "images": images})


def text_after_image_uses_fresh_ids(facts: PanoramaPositionFacts) -> Measurement:
    """Text after the image and decoded tokens do not reuse image ids, except under the cora shift of a PanoRoPE
    variant, which moves text back into the image ids by design."""
    run = _run(facts)
    by_design = facts.scheme.mode == "cora" and facts.scheme.vlm_pe is not None
    fresh = run.collisions == 0 and run.next_after_images
    return Measurement(fresh or by_design, {"collisions": run.collisions, "next": run.next_position,
                                            "max": run.max_position, "by_design": by_design})


def prefill_rotary_sees_scheme_ids(facts: PanoramaPositionFacts) -> Measurement:
    run = _run(facts)
    holds = run.calls_per_forward > 0 and run.prefill_matching == run.calls_per_forward
    return Measurement(holds, {"calls": run.calls_per_forward, "matching": run.prefill_matching,
                               "shape": run.ids_shape})


def decode_rotary_continues_ids(facts: PanoramaPositionFacts) -> Measurement:
    """Every rotary call of every cached step sees the last prompt id + step on every axis."""
    run = _run(facts)
    holds = run.decode_matching == run.decode_calls and (run.decode_steps == 0 or run.calls_per_forward > 0)
    return Measurement(holds, {"steps": run.decode_steps, "calls": run.decode_calls, "matching": run.decode_matching})


def prompt_and_cache_lengths_agree(facts: PanoramaPositionFacts) -> Measurement:
    """Prompt ids, mask and position ids have one length; the cache holds the prompt plus the decoded tokens."""
    run = _run(facts)
    holds = (run.cache_length == run.prompt_length + run.decode_steps
             and run.mask_length == run.prompt_length == run.position_ids_length)
    return Measurement(holds, {"ids": run.prompt_length, "mask": run.mask_length, "positions": run.position_ids_length,
                               "cache": run.cache_length, "steps": run.decode_steps})


def cached_logits_equal_recompute(facts: PanoramaPositionFacts) -> Measurement:
    """max |cached - recomputed logit| <= 1e-4 (float32) or 2e-2 (otherwise) x the largest logit."""
    run = _run(facts)
    tolerance = 1e-4 if run.dtype == "torch.float32" else 2e-2
    holds = run.logit_difference <= tolerance * (run.logit_scale or 1.0)
    return Measurement(holds, {"difference": run.logit_difference, "steps": run.decode_steps + 1, "dtype": run.dtype})


LENGTHS = ("prompt: {ids} ids, {mask} mask entries, {positions} position ids; the cache holds {cache} tokens after "
           "{steps} decode step(s)")
DIFFERENCE = "max |cached - recomputed logit| {difference:.3g} over {steps} steps (model in {dtype})"
COLLISIONS = "{collisions} text tokens after the image reuse image ids; first decoded id {next}, largest id {max}"
PANORAMA_CHECKS: tuple[Check[PanoramaPositionFacts], ...] = (
    Check(None, "image_runs", (Invariant(image_runs_match_layout, "{runs} image token runs for {images} images",
                                         "{runs} image token runs for {images} images"),)),
    Check(None, "text_image_collisions", (Invariant(text_after_image_uses_fresh_ids, COLLISIONS, COLLISIONS),)),
    Check(None, "rotary_prefill", (Invariant(prefill_rotary_sees_scheme_ids,
                                             "{calls} rotary call(s) saw the scheme's {shape} ids",
                                             "the rotary embedding saw other ids than the scheme's at prefill "
                                             "({matching} of {calls} call(s) per forward matched)"),)),
    Check(None, "rotary_decode", (Invariant(decode_rotary_continues_ids,
                                            "{steps} decode step(s) continue at last id + 1 on every axis",
                                            "decode steps did not continue at the last prompt id + 1 ({matching} of "
                                            "{calls} rotary call(s) did)"),)),
    Check(None, "cache_mask_lengths", (Invariant(prompt_and_cache_lengths_agree, LENGTHS, LENGTHS),)),
    Check(None, "cache_equals_recompute", (Invariant(cached_logits_equal_recompute, DIFFERENCE, DIFFERENCE),)),
)


def judge_panorama(facts: PanoramaPositionFacts, mode: str) -> list[CheckResult]:
    """The panorama verdicts of one variant's facts; only `image_runs` when the prompt does not match its layout."""
    checks = PANORAMA_CHECKS if facts.run is not None else PANORAMA_CHECKS[:1]
    return [check.judge(facts, mode) for check in checks]
