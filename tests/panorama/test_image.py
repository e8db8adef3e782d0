"""Reading panoramas: formats Pillow decodes, one-line errors for bad files, a warning for non-2:1 images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.panorama.geometry import plan_views
from spatialvlm_cli.panorama.image import layout_images, read_panorama


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_reads_rgb_png_and_jpg_and_converts_other_modes(tmp_path: Path):
    rgb = np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8)
    png = read_panorama(save(tmp_path / "a.png", rgb))
    assert png.pixels.dtype == np.uint8 and png.pixels.shape == (64, 128, 3)
    np.testing.assert_array_equal(png.pixels, rgb)
    assert png.aspect_warning is None
    assert read_panorama(save(tmp_path / "a.jpg", rgb)).pixels.shape == (64, 128, 3)
    grey = read_panorama(save(tmp_path / "g.png", rgb[..., 0]))
    np.testing.assert_array_equal(grey.pixels[..., 1], rgb[..., 0])
    rgba = np.concatenate([rgb, np.full((64, 128, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(read_panorama(save(tmp_path / "a4.png", rgba)).pixels, rgb)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.jpg", "does not exist"),
        (lambda d: d, "is a folder"),
        (lambda d: (d / "text.jpg").write_text("not an image") and d / "text.jpg", "not an image Pillow can read"),
        (lambda d: save(d / "tiny.png", np.zeros((20, 40, 3), np.uint8)), "at least 64×32"),
    ],
)
def test_bad_files_raise_one_line_input_errors(tmp_path: Path, make, fragment: str):
    with pytest.raises(InputError) as info:
        read_panorama(make(tmp_path))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_truncated_file_is_an_input_error(tmp_path: Path):
    path = save(tmp_path / "t.png", np.zeros((64, 128, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(InputError):
        read_panorama(path)


def test_non_equirectangular_aspect_warns_but_loads(tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        pano = read_panorama(save(tmp_path / "wide.png", np.zeros((64, 200, 3), np.uint8)))
    assert pano.aspect_warning is not None and "not 2:1" in pano.aspect_warning
    assert any("not 2:1" in record.message for record in caplog.records)
    assert read_panorama(save(tmp_path / "ok.png", np.zeros((100, 204, 3), np.uint8))).aspect_warning is None


def test_layout_images_order_and_sizes(tmp_path: Path):
    pano = read_panorama(save(tmp_path / "p.png", np.zeros((128, 256, 3), np.uint8)))
    layout = plan_views(4, 0.2, 90.0, global_view=True, view_height_px=40)
    images = layout_images(pano, layout, global_height_px=48)
    assert [image.shape for image in images] == [(48, 96, 3)] + [(40, layout.tiles[0].width, 3)] * 4
    only = layout_images(pano, plan_views(0, 0.0, 90.0, global_view=False), global_height_px=448)
    assert [image.shape for image in only] == [(128, 256, 3)]  # never upsampled
