"""Named panorama set-ups (`--pano_preset NAME` or a YAML path): view geometry and position-id settings as a whole.

The shipped ones, `assets/pano_presets/panollava-*.yaml`, reproduce wooseungw/panollava's published configs
(`configs/baseline/panoadapt_*.yaml`, `e4*_*.yaml`): N square tiles `fov` degrees wide at panollava's yaws with a
letter-boxed global view (`geometry.py`, convention 'panollava'), rendered at 672 px (its `tile_render_size`; the
model's image processor resizes them) with a 336 px global view (`base_size`), and the `cora` id shift with
panollava's `overlap_ratio` as `id_overlap`, independent of the tiles' pixel overlap. N comes from panollava's
closed-loop rule, N = ceil(360 / (hfov·(1 - overlap))), stated in each file.

`vlm_pe` is the encoding the set-up was trained with: the ids are applied only when `--VLM_PE` names it. panollava
evaluates its checkpoints with native ids (`finetune.py` shifts ids in training only), which is `--VLM_PE None` on
the same tiles. Read with `presets.read_settings_file` (torch-free: `infer` checks a preset before a model loads).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.panorama.geometry import SPATIALVLM, VIEW_CONVENTIONS
from spatialvlm_cli.panorama.pipeline import PanoramaRequest
from spatialvlm_cli.panorama.positions import PANO_MODES, PANO_ROPE_1D, PANO_ROPE_MROPE
from spatialvlm_cli.presets import read_settings_file, shipped_settings

FOLDER = "pano_presets"
KEYS: dict[str, Any] = {
    "description": str,
    "source": str,
    "vlm_pe": Literal[PANO_ROPE_1D, PANO_ROPE_MROPE],
    "pano_mode": Literal[PANO_MODES],
    "id_overlap": float | None,
    "convention": Literal[VIEW_CONVENTIONS],
    "views": int,
    "fov": float,
    "overlap": float,
    "global_view": bool,
    "tile_px": int | None,
    "global_px": int | None,
    "image_pixels": int | None,
}
REQUIRED = ("description", "vlm_pe", "pano_mode", "views", "fov")

# `infer` flag -> PanoramaRequest field a preset sets; a flag left at the field's default takes the preset's value.
PRESET_FLAGS = {"views": "views", "overlap": "overlap", "fov": "fov_deg", "global_view": "global_view",
                "pano_mode": "pano_mode", "id_overlap": "id_overlap"}


@dataclass(frozen=True)
class PanoPreset:
    """One set-up. name: the preset's name or path. description / source: what it reproduces (source: the
    panollava config file). vlm_pe: the PanoRoPE variant its ids belong to. pano_mode / id_overlap: the id scheme
    (positions.py). convention: 'spatialvlm' | 'panollava' (geometry.py). views: tile count; fov: degrees
    (vertical, or both fovs for 'panollava'); overlap: column overlap ('spatialvlm' only). tile_px / global_px:
    tile and global-view height in pixels; None: the model's image size. image_pixels: the area a Qwen-VL
    processor resizes every image to (panollava's image_size², min_pixels = max_pixels); None: the checkpoint's."""

    name: str
    description: str
    vlm_pe: str
    pano_mode: str
    views: int
    fov: float
    source: str | None = None
    id_overlap: float | None = None
    convention: str = SPATIALVLM
    overlap: float = 0.0
    global_view: bool = True
    tile_px: int | None = None
    global_px: int | None = None
    image_pixels: int | None = None

    def request(self, prompt: str, vlm_pe: str | None) -> PanoramaRequest:
        """The request this set-up makes for `prompt`; vlm_pe None keeps the model's native ids (panollava's
        evaluation), this preset's `vlm_pe` applies its ids. ConfigError for any other encoding."""
        if vlm_pe is not None and vlm_pe != self.vlm_pe:
            raise ConfigError(f"--pano_preset {self.name} sets {self.vlm_pe} ids; use --VLM_PE {self.vlm_pe} or "
                              "--VLM_PE None (native ids)")
        return PanoramaRequest(prompt=prompt, views=self.views, overlap=self.overlap, fov_deg=self.fov,
                               global_view=self.global_view, vlm_pe=vlm_pe, pano_mode=self.pano_mode,
                               id_overlap=self.id_overlap, convention=self.convention, view_height_px=self.tile_px,
                               global_px=self.global_px, image_pixels=self.image_pixels, preset=self.name)

    def flag_value(self, flag: str) -> Any:
        """The value this preset gives an `infer` flag of PRESET_FLAGS (None for `overlap` under 'panollava', where
        the column overlap follows from views and fov)."""
        if flag == "overlap" and self.convention != SPATIALVLM:
            return None
        return getattr(self, flag)


def read_pano_preset(spec: str) -> PanoPreset:
    """A shipped set-up by name (`pano_preset_names()`) or a YAML file of the same keys. ConfigError when missing or
    malformed."""
    data = read_settings_file(spec, FOLDER, KEYS, required=REQUIRED, what="panorama preset")
    return PanoPreset(name=spec, **data)


def pano_preset_names() -> list[str]:
    """The shipped set-ups, sorted."""
    return shipped_settings(FOLDER)


def request_with_preset(preset: PanoPreset, flags: dict[str, Any], prompt: str, vlm_pe: str | None) -> PanoramaRequest:
    """The request for `preset` where `flags` (PRESET_FLAGS names -> the values `infer` got) may only repeat the
    preset: a flag at PanoramaRequest's default takes the preset's value, any other value that differs from the
    preset's is a ConfigError (edit a copy of the preset's YAML file instead)."""
    defaults = {item.name: item.default for item in fields(PanoramaRequest)}
    for flag, value in flags.items():
        if value == defaults[PRESET_FLAGS[flag]] or value == preset.flag_value(flag):
            continue
        spelled = f"--{flag} {value}" if not isinstance(value, bool) else f"--{'' if value else 'no_'}{flag}"
        raise ConfigError(f"{spelled} conflicts with --pano_preset {preset.name} ({flag}: "
                          f"{preset.flag_value(flag)}); copy the preset's YAML file, edit it and pass its path")
    return preset.request(prompt, vlm_pe)
