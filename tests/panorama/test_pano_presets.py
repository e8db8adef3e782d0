"""`--pano_preset`: each shipped panollava set-up against values derived by hand from wooseungw/panollava's code.

panollava (`src/cora/processors/anyres_e2p.py`, `build_anyres_from_erp` with closed_loop_yaw): N =
ceil(360 / (hfov·(1 - overlap))) tiles, step 360/N, centres -180 + j·step folded into [-180, 180) and sorted by
(yaw + 360) % 360; square tiles (vfov = hfov) rendered at tile_render_size 672; the global view letter-boxed into a
base_size 336 square. `src/cora/baseline/panoadapt.py`: tile k (the k-th image after the global one) has its ids
(1-D: all; Qwen M-RoPE: the width row) shifted by int(round(k·(1 - overlap_ratio)·T)), T the tile's token count
(1-D) or merged columns (M-RoPE); the global view and the text keep their native ids.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.cli.infer_image import panorama_request
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.panorama.geometry import column_overlap, horizontal_fov_deg, plan_views
from spatialvlm_cli.panorama.image import Panorama, layout_images
from spatialvlm_cli.panorama.pano_presets import pano_preset_names, read_pano_preset
from spatialvlm_cli.panorama.positions import positions_1d, positions_mrope

# name -> (panollava config, tiles, fov, id ratio, family encoding), read off the config files by hand:
# e.g. e4d: hfov 45, overlap 0.25 -> ceil(360 / 33.75) = ceil(10.67) = 11 tiles.
PRESETS = {
    "panollava-internvl": ("panoadapt_internvl35_2b.yaml", 8, 45.0, 0.5, "PanoRoPE_1D"),
    "panollava-internvl-id25": ("panoadapt_vicreg_pairwise_internvl35_2b_25overlap.yaml", 8, 45.0, 0.25,
                                "PanoRoPE_1D"),
    "panollava-gemma3": ("panoadapt_gemma3_4b.yaml", 8, 45.0, 0.5, "PanoRoPE_1D"),
    "panollava-qwen2.5-vl": ("panoadapt_pe_qwen25_3b.yaml", 8, 45.0, 0.5, "PanoRoPE"),
    "panollava-e4a-fov90": ("e4a_internvl35-2b_fov90_v5.yaml", 4, 90.0, 0.5, "PanoRoPE_1D"),
    "panollava-e4b-fov60": ("e4b_internvl35-2b_fov60_v7.yaml", 6, 60.0, 0.5, "PanoRoPE_1D"),
    "panollava-e4c-fov30": ("e4c_internvl35-2b_fov30_v13.yaml", 12, 30.0, 0.5, "PanoRoPE_1D"),
    "panollava-e4d-overlap25": ("e4d_internvl35-2b_phyov25_v12.yaml", 11, 45.0, 0.25, "PanoRoPE_1D"),
}

# Tile yaws in prompt order, by hand. N = 8: centres -180, -135, …, 135 sorted from 0°: 0, 45, 90, 135, then 180
# (printed -180), 225 (-135), … For N = 11 (step 32.7273°) no centre is at 0: j = 6 gives -180 + 196.36 = 16.36.
YAWS = {
    8: [0, 45, 90, 135, -180, -135, -90, -45],
    4: [0, 90, -180, -90],
    6: [0, 60, 120, -180, -120, -60],
    12: [0, 30, 60, 90, 120, 150, -180, -150, -120, -90, -60, -30],
    11: [16.3636, 49.0909, 81.8182, 114.5455, 147.2727, -180.0, -147.2727, -114.5455, -81.8182, -49.0909, -16.3636],
}


def test_every_shipped_preset_is_checked_here():
    assert set(pano_preset_names()) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tiles_match_panollava(name: str):
    config, tiles, fov, _, encoding = PRESETS[name]
    preset = read_pano_preset(name)
    assert preset.source.endswith(config)
    request = preset.request("q", encoding)
    layout = request.layout
    assert [tile.index for tile in layout.tiles] == list(range(tiles))
    assert [tile.yaw_deg for tile in layout.tiles] == pytest.approx(YAWS[tiles], abs=1e-4)
    for tile in layout.tiles:
        assert (tile.hfov_deg, tile.vfov_deg, tile.pitch_deg) == (fov, fov, 0.0)
        assert (tile.width, tile.height) == (672, 672)
    assert layout.global_view and layout.letterbox_global
    assert layout.tile_of_image() == [None, *range(tiles)]
    assert request.global_height_px == 336
    # panollava locks Qwen's processor to image_size² = 224² pixels (min_pixels = max_pixels, models.py); the
    # InternVL and Gemma3 processors resize to their checkpoint's fixed size.
    assert request.image_pixels == (224 * 224 if encoding == "PanoRoPE" else None)


def test_e4d_column_overlap_follows_from_eleven_45_degree_tiles():
    """Δ = 360/11 = 32.727°, hfov - Δ = 12.273°: r = sin 12.273° / (sin 32.727° + sin 12.273°) = 0.21257 /
    (0.54064 + 0.21257) = 0.28221, while the ids use panollava's ratio 0.25."""
    request = read_pano_preset("panollava-e4d-overlap25").request("q", "PanoRoPE_1D")
    assert request.layout.overlap == pytest.approx(0.28221, abs=1e-5)
    assert horizontal_fov_deg(11, request.layout.overlap) == pytest.approx(45.0)
    assert request.scheme().overlap == 0.25
    assert column_overlap(8, 45.0) == 0.0


@pytest.mark.parametrize("name", sorted(name for name, setup in PRESETS.items() if setup[4] == "PanoRoPE_1D"))
def test_1d_ids_match_panollava(name: str):
    """A prompt of 5 text tokens, then per image `<img>` + T = 256 image tokens + `</img>` (InternVL3 at 448 px:
    (448/14)² / 4 = 256), global view first, then 3 text tokens. Native ids are 0 … L-1; tile k's 256 ids move by
    round(k·(1 - ratio)·256): 128·k for ratio 0.5, 192·k for ratio 0.25."""
    _, tiles, _, ratio, encoding = PRESETS[name]
    tokens = 256
    is_image = np.array([False] * 5 + ([False] + [True] * tokens + [False]) * (tiles + 1) + [False] * 3)
    scheme = read_pano_preset(name).request("q", encoding).scheme()
    ids = positions_1d(is_image, scheme)
    expected = np.arange(len(is_image))
    per_tile_shift = {0.5: 128, 0.25: 192}[ratio]
    for k in range(tiles):
        start = 5 + (k + 1) * (tokens + 2) + 1  # after the text, the global view's block and this tile's <img>
        expected[start : start + tokens] += per_tile_shift * k
    np.testing.assert_array_equal(ids, expected)
    native = read_pano_preset(name).request("q", None).scheme()
    np.testing.assert_array_equal(positions_1d(is_image, native), np.arange(len(is_image)))


def test_mrope_ids_match_panollava():
    """Qwen2.5-VL: 2 text tokens, then 9 images each a 16 × 16 patch grid (2 × 2 merge: 8 × 8 = 64 tokens) with a
    text token before it, then 2 text tokens. Native (get_rope_index): image i starts at p_i, t = p_i, h = p_i + row,
    w = p_i + col, text resumes at p_i + 8. panollava adds round(k·0.5·8) = 4k to tile k's width row only."""
    preset = read_pano_preset("panollava-qwen2.5-vl")
    images = 9
    is_image = np.array([False] * 2 + ([False] + [True] * 64) * images + [False] * 2)
    grids = np.tile([1, 16, 16], (images, 1))
    native = positions_mrope(is_image, grids, 2, preset.request("q", None).scheme())
    shifted = positions_mrope(is_image, grids, 2, preset.request("q", "PanoRoPE").scheme())
    difference = shifted - native
    assert not difference[:2].any()
    for image in range(images):
        start = 2 + image * 65 + 1
        assert (difference[2, start : start + 64] == 4 * max(image - 1, 0)).all()
    # Hand values of the native ids: image 0 starts at 3 (two text tokens, then one before it), its last token is
    # row 7, column 7; text after it resumes at 3 + 8 = 11.
    assert native[:, 3].tolist() == [3, 3, 3]
    assert native[:, 3 + 63].tolist() == [3, 10, 10]
    assert native[:, 3 + 64].tolist() == [11, 11, 11]
    assert (difference[2, -2:] == 0).all()


def test_letterboxed_global_view():
    """A 2:1 panorama in a 336 square: 336 × 168 of content between 84 black rows above and below."""
    pixels = np.full((64, 128, 3), 200, dtype=np.uint8)
    layout = plan_views(8, 0.0, 45.0, True, 32, convention="panollava")
    images = layout_images(Panorama(pixels=pixels, source=Path("p.png")), layout, global_height_px=336)
    assert images[0].shape == (336, 336, 3)
    assert not images[0][:84].any() and not images[0][252:].any()
    assert (images[0][84:252] == 200).all()
    assert all(image.shape == (32, 32, 3) for image in images[1:])


def test_our_convention_is_unchanged():
    """Ours: tile k at k·360/N for every N (0 for tile 0 even when N is odd), vertical fov as given, global view
    resized keeping the aspect."""
    layout = plan_views(5, 0.2, 90.0, True, 32)
    assert [tile.yaw_deg for tile in layout.tiles] == pytest.approx([0, 72, 144, -144, -72])
    assert layout.tiles[0].vfov_deg == 90.0 and not layout.letterbox_global
    assert layout.tiles[0].hfov_deg == pytest.approx(72 + math.degrees(math.asin(0.25 * math.sin(math.radians(72)))))


def flags(**given) -> dict:
    """`infer --image`'s panorama values with the CLI defaults, updated by `given`."""
    return {"prompt": None, "vlm_pe": None, "views": 4, "overlap": 0.2, "fov": 90.0, "global_view": True,
            "pano_mode": "shared", "id_overlap": None, "pano_preset": None, **given}


def test_id_overlap_is_separate_from_the_view_overlap():
    """--overlap 0 --fov 45 --views 8 cuts panollava-wide tiles; --id_overlap 0.5 gives them ids at a T/2 stride."""
    request = panorama_request(flags(views=8, overlap=0.0, fov=45.0, vlm_pe="PanoRoPE_1D", pano_mode="cora",
                                     id_overlap=0.5))
    assert request.layout.tiles[0].hfov_deg == pytest.approx(45.0)
    assert request.layout.overlap == 0.0 and request.scheme().overlap == 0.5
    default = panorama_request(flags(vlm_pe="PanoRoPE_1D"))
    assert default.scheme().overlap == default.layout.overlap == 0.2
    with pytest.raises(ConfigError, match="--id_overlap"):
        panorama_request(flags(id_overlap=1.0))


def test_preset_flags_may_only_repeat_the_preset():
    request = panorama_request(flags(pano_preset="panollava-internvl", views=8, vlm_pe="PanoRoPE_1D"))
    assert request.preset == "panollava-internvl" and request.vlm_pe == "PanoRoPE_1D"
    assert panorama_request(flags(pano_preset="panollava-internvl", vlm_pe="None")).vlm_pe is None
    with pytest.raises(ConfigError, match="--views 6 conflicts with --pano_preset panollava-internvl"):
        panorama_request(flags(pano_preset="panollava-internvl", views=6))
    with pytest.raises(ConfigError, match=r"--overlap 0\.3 conflicts"):
        panorama_request(flags(pano_preset="panollava-internvl", overlap=0.3))
    with pytest.raises(ConfigError, match="--VLM_PE PanoRoPE_1D or --VLM_PE None"):
        panorama_request(flags(pano_preset="panollava-internvl", vlm_pe="PanoRoPE"))
    with pytest.raises(ConfigError, match="no panorama preset named 'cora8'; shipped: panollava-e4a-fov90"):
        panorama_request(flags(pano_preset="cora8"))


def test_a_preset_file_by_path(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("description: eight 45° tiles, ids at ratio 0.5\nvlm_pe: PanoRoPE_1D\npano_mode: cora\n"
                    "views: 8\nfov: 45\nid_overlap: 0.5\nconvention: panollava\n", encoding="utf-8")
    request = panorama_request(flags(pano_preset=str(path), vlm_pe="PanoRoPE_1D"))
    assert len(request.layout.tiles) == 8 and request.scheme().overlap == 0.5
    assert request.view_height_px is None  # the model's own image size
    path.write_text("description: x\nvlm_pe: PanoRoPE_1D\npano_mode: cora\nviews: 8\nfov: 45\ntiles: 3\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="tiles"):
        read_pano_preset(str(path))


def test_image_pixels_lock_the_qwen_grid(loaded_models, synthetic_panorama):
    """tiny-qwen2.5-vl: patch 4, merge 2. With image_pixels 64² every square image, panollava's letter-boxed 336-px
    global view and its 672-px tiles alike, becomes 64 × 64 pixels: a 16 × 16 patch grid, 8 × 8 = 64 tokens."""
    loaded = loaded_models["tiny-qwen2.5-vl"]
    layout = plan_views(8, 0.0, 45.0, True, 672, convention="panollava")
    images = layout_images(Panorama(pixels=synthetic_panorama(128, 64), source=Path("p.png")), layout, 336)[:2]
    assert [image.shape for image in images] == [(336, 336, 3), (672, 672, 3)]
    inputs = loaded.processor(images, "Describe the room.", 64 * 64)
    assert inputs["image_grid_thw"].tolist() == [[1, 16, 16], [1, 16, 16]]
    assert int((inputs["mm_token_type_ids"] == 1).sum()) == 128
    native = loaded.processor(images, "Describe the room.")
    assert native["image_grid_thw"].tolist() != inputs["image_grid_thw"].tolist()
    preset = read_pano_preset("panollava-qwen2.5-vl")
    with pytest.raises(ConfigError, match="image_pixels applies to Qwen-VL models only"):
        preset.request("q", None).check_family(loaded_models["tiny-gemma3"].family)
