"""Equirectangular <-> perspective geometry: view directions, the 360° seam, overlap between neighbouring views."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.panorama.geometry import (
    ViewSpec,
    angles_to_pixel,
    horizontal_fov_deg,
    pixel_to_angles,
    plan_views,
    project_to_view,
    render_view,
    sample_bilinear,
    view_pixel_angles,
)


def smooth_panorama(width: int = 512, height: int = 256) -> np.ndarray:
    """A low-frequency RGB field of the viewing direction, continuous across the seam (uint8)."""
    yaw, pitch = pixel_to_angles(*np.meshgrid(np.arange(width), np.arange(height)), width, height)
    return np.clip(np.rint(np.stack(field(yaw, pitch), axis=-1)), 0, 255).astype(np.uint8)


def field(yaw: np.ndarray, pitch: np.ndarray) -> list[np.ndarray]:
    return [
        127.5 + 100 * np.sin(yaw) * np.cos(pitch),
        127.5 + 100 * np.cos(2 * yaw) * np.cos(pitch),
        127.5 + 100 * np.sin(pitch),
    ]


@pytest.mark.parametrize(
    ("views", "overlap", "expected"),
    [(4, 0.0, 90.0), (8, 0.5, 90.0), (3, 0.0, 120.0), (4, 0.2, 90.0 + math.degrees(math.asin(0.25)))],
)
def test_horizontal_fov_hand_values(views: int, overlap: float, expected: float):
    assert horizontal_fov_deg(views, overlap) == pytest.approx(expected, abs=1e-9)


def test_pixel_angle_round_trip_and_seam():
    width, height = 400, 200
    u, v = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    yaw, pitch = pixel_to_angles(u, v, width, height)
    back_u, back_v = angles_to_pixel(yaw, pitch, width, height)
    np.testing.assert_allclose(back_u, u, atol=1e-9)
    np.testing.assert_allclose(back_v, v, atol=1e-9)
    # The centre column looks at yaw 0; the two image edges meet at yaw ±180°.
    assert pixel_to_angles(width / 2 - 0.5, height / 2 - 0.5, width, height) == pytest.approx((0.0, 0.0))
    left_edge, _ = pixel_to_angles(-0.5, 0, width, height)
    assert left_edge == pytest.approx(-math.pi)
    assert angles_to_pixel(math.pi, 0, width, height)[0] == pytest.approx(-0.5)


@pytest.mark.parametrize(("yaw_deg", "pitch_deg"), [(0.0, 0.0), (90.0, 0.0), (-135.0, 20.0), (180.0, -30.0)])
def test_view_centre_pixel_sees_the_view_direction(yaw_deg: float, pitch_deg: float):
    view = ViewSpec(index=0, yaw_deg=yaw_deg, pitch_deg=pitch_deg, hfov_deg=100, vfov_deg=80, width=33, height=31)
    yaw, pitch = view_pixel_angles(view)
    assert math.degrees(yaw[15, 16]) % 360 == pytest.approx(yaw_deg % 360, abs=1e-9)
    assert math.degrees(pitch[15, 16]) == pytest.approx(pitch_deg, abs=1e-9)
    # Right of centre is more yaw, above centre is more pitch.
    assert (yaw[15, 17] - yaw[15, 16]) % (2 * math.pi) < 0.1
    assert pitch[14, 16] > pitch[15, 16]


def test_rendered_centre_pixel_comes_from_the_expected_panorama_pixel():
    width, height = 512, 256
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    coded = np.stack([u % 256, u // 256 * 100 + v % 50, v], axis=-1).astype(np.uint8)
    for column, row in [(100, 128), (511, 60), (0, 200), (300, 10)]:
        yaw, pitch = pixel_to_angles(column, row, width, height)
        view = ViewSpec(0, math.degrees(yaw), math.degrees(pitch), 90, 90, width=21, height=21)
        assert render_view(coded, view)[10, 10].tolist() == coded[row, column].tolist()


def test_render_matches_the_field_everywhere_including_across_the_seam():
    panorama = smooth_panorama()
    for yaw_deg in (180.0, -170.0, 45.0):
        view = ViewSpec(0, yaw_deg, 10.0, 110, 90, width=96, height=80)
        yaw, pitch = view_pixel_angles(view)
        expected = np.stack(field(yaw, pitch), axis=-1)
        error = np.abs(render_view(panorama, view).astype(float) - expected)
        assert error.max() < 3.0, yaw_deg


def test_a_disk_on_the_seam_is_one_round_blob_in_the_seam_view():
    width, height = 720, 360
    yaw, pitch = pixel_to_angles(*np.meshgrid(np.arange(width), np.arange(height)), width, height)
    # Angular distance to the direction (yaw 180°, pitch 0) is below 10°: half the disk on each image edge.
    cos_distance = np.cos(pitch) * np.cos(yaw - math.pi)
    panorama = np.zeros((height, width, 3), np.uint8)
    panorama[cos_distance > math.cos(math.radians(10))] = 255
    assert panorama[:, 0].any() and panorama[:, -1].any() and not panorama[:, width // 2].any()

    layout = plan_views(4, 0.2, 90.0, global_view=False, view_height_px=101)
    seam_view = layout.tiles[2]
    assert seam_view.yaw_deg == -180.0
    mask = render_view(panorama, seam_view)[..., 0] > 127
    rows, columns = np.nonzero(mask)
    assert columns.mean() == pytest.approx((seam_view.width - 1) / 2, abs=0.6)
    assert rows.mean() == pytest.approx(50, abs=0.6)
    # One contiguous run of columns, as wide as tan(10°) on the image plane says.
    assert np.all(np.diff(np.unique(columns)) == 1)
    focal_x = seam_view.width / 2 / math.tan(math.radians(seam_view.hfov_deg) / 2)
    assert (columns.max() - columns.min() + 1) == pytest.approx(2 * focal_x * math.tan(math.radians(10)), abs=2)


@pytest.mark.parametrize(("views", "overlap"), [(4, 0.2), (8, 0.5), (6, 0.0), (3, 0.3)])
def test_neighbouring_views_overlap_by_the_requested_column_fraction(views: int, overlap: float):
    layout = plan_views(views, overlap, 90.0, global_view=True, view_height_px=64)
    for k, view in enumerate(layout.tiles):
        neighbour = layout.tiles[(k + 1) % views]
        # The neighbour's left edge (at the equator) lands (1 - r) of the way across this view ...
        left_edge = math.radians(neighbour.yaw_deg - neighbour.hfov_deg / 2)
        column, row, in_front = project_to_view(left_edge, 0.0, view)
        assert in_front
        assert (column + 0.5) / view.width == pytest.approx(1 - overlap, abs=1e-9)
        assert row == pytest.approx((view.height - 1) / 2)
        # ... and this view's right edge lands r of the way across the neighbour.
        right_edge = math.radians(view.yaw_deg + view.hfov_deg / 2)
        column, _, _ = project_to_view(right_edge, 0.0, neighbour)
        assert (column + 0.5) / neighbour.width == pytest.approx(overlap, abs=1e-9)


def test_overlap_columns_sample_the_same_panorama_pixels():
    panorama = smooth_panorama()
    layout = plan_views(4, 0.25, 80.0, global_view=False, view_height_px=96)
    for k in range(4):
        view, neighbour = layout.tiles[k], layout.tiles[(k + 1) % 4]
        first = math.ceil((1 - layout.overlap) * view.width)
        yaw, pitch = view_pixel_angles(view)
        column, row, in_front = project_to_view(yaw[:, first:], pitch[:, first:], neighbour)
        inside = in_front & (row >= 0) & (row <= neighbour.height - 1)
        assert inside.mean() > 0.8  # the corners of the overlap leave the neighbour's top and bottom
        assert column[inside].min() >= -0.5 and column[inside].max() <= layout.overlap * neighbour.width
        # Both views see the same panorama there: view k's pixels equal the neighbour resampled at the same rays.
        mine = render_view(panorama, view)[:, first:][inside].astype(float)
        theirs = sample_bilinear(render_view(panorama, neighbour), column[inside], row[inside])
        assert np.abs(mine - theirs).max() < 4.0
        # Outside the overlap the rays miss the neighbour.
        column, _, in_front = project_to_view(yaw[:, : first - 2], pitch[:, : first - 2], neighbour)
        assert np.all(~in_front | (column < -0.5))


def test_sample_bilinear_wraps_columns_and_clamps_rows():
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    assert sample_bilinear(image, np.array(3.5), np.array(0.0))[0] == pytest.approx((3 + 0) / 2)
    assert sample_bilinear(image, np.array(-0.5), np.array(0.0))[0] == pytest.approx((3 + 0) / 2)
    assert sample_bilinear(image, np.array(1.0), np.array(-3.0))[0] == pytest.approx(1.0)
    assert sample_bilinear(image, np.array(1.0), np.array(9.0))[0] == pytest.approx(9.0)


def test_plan_views_layout():
    layout = plan_views(4, 0.2, 90.0, global_view=True, view_height_px=448)
    assert [tile.yaw_deg for tile in layout.tiles] == [0.0, 90.0, -180.0, -90.0]
    assert layout.tile_of_image() == [None, 0, 1, 2, 3]
    tile = layout.tiles[0]
    assert tile.height == 448
    assert tile.width == round(448 * math.tan(math.radians(tile.hfov_deg / 2)))
    whole = plan_views(0, 0.7, 200.0, global_view=False)
    assert whole.tiles == () and whole.global_view and whole.tile_of_image() == [None]


@pytest.mark.parametrize(
    ("views", "overlap", "fov", "fragment"),
    [
        (1, 0.2, 90, "--views must be 0"),
        (2, 0.0, 90, "--views must be 0"),
        (25, 0.2, 90, "--views must be 0"),
        (4, -0.1, 90, "--overlap must be in [0, 1)"),
        (4, 1.0, 90, "--overlap must be in [0, 1)"),
        (4, 0.6, 90, "use more views or less overlap"),
        (3, 0.45, 90, "use more views or less overlap"),
        (4, 0.2, 5, "--fov"),
        (4, 0.2, 170, "--fov"),
    ],
)
def test_plan_views_rejects_impossible_layouts(views: int, overlap: float, fov: float, fragment: str):
    with pytest.raises(ConfigError) as info:
        plan_views(views, overlap, fov, global_view=True)
    assert fragment in str(info.value)
