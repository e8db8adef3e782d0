"""Equirectangular geometry: panorama pixel <-> (yaw, pitch) <-> ray, and perspective views cut by gnomonic projection.

Conventions (numpy only, no torch):
- Yaw (longitude) in radians in [-π, π): 0 is the panorama's centre column, positive to the right; the left and
  right image edges are the seam at ±π. Pitch (latitude) in [-π/2, π/2]: positive up, 0 is the middle row.
- Panorama pixel coordinates are continuous with pixel centres at integers: column u in [-0.5, W - 0.5), row v in
  [-0.5, H - 0.5). Column u = (yaw / 2π + 1/2)·W - 1/2, row v = (1/2 - pitch / π)·H - 1/2.
- World frame: x right, y up, z forward (yaw 0, pitch 0). A camera looking at (yaw ψ, pitch θ) is the identity
  camera pitched up by θ (about x) and then turned right by ψ (about y).

How `--views N --overlap r --fov deg` fit together (our convention, `VIEW_CONVENTIONS[0]` 'spatialvlm'): view k
looks at yaw k·360°/N (pitch 0), so tile 0 faces the panorama's centre column for every N. The vertical field of
view is `--fov`; the horizontal one is derived so that exactly a fraction r of a view's pixel columns shows the
same rays as its neighbour's (the last r·width columns of view k and the first r·width columns of view k+1 span the
same yaw interval). On the gnomonic image plane the column of yaw offset α is proportional to tan α, which gives
    hfov = Δ + arcsin(r·sin Δ / (1 - r)),   Δ = 360°/N,
and back, for a given hfov ≥ Δ, r = sin(hfov - Δ) / (sin Δ + sin(hfov - Δ)).
r = 0 gives hfov = Δ (views just touch); N = 8, r = 0.5 gives eight 90°-wide views at a 45° stride. That is *not*
panollava's (CORA's) published set-up: its eight tiles are 45° wide with no pixel overlap (r = 0), and only its
position ids use a ratio of 0.5 (`--id_overlap`, `pano_presets.py`). The global view is the whole panorama
resized to the tile height, keeping its aspect.

panollava's convention ('panollava', `wooseungw/panollava`'s `anyres_e2p.py`): tiles are square, horizontal fov =
vertical fov = `fov_deg`; N tiles sit at yaw -180° + k·360°/N wrapped into [-180°, 180°) and sorted by yaw in
[0°, 360°), so tile 0 is at yaw 0 for even N and at 180°/N for odd N; the global view is letter-boxed into a square
(longest side resized, black bars). The column overlap r then follows from hfov and N by the inverse formula above.
Not reproduced: py360convert's sampling grid puts the edge pixels' centres *on* ±tan(hfov/2) (`linspace`, pitch
2·tan(hfov/2)/(W - 1)) where ours puts them half a pixel inside (pitch 2·tan(hfov/2)/W), so at W = 672 its tiles
reach 1/671 (0.15 %) further out on the image plane.

A view's column overlap is what PanoRoPE turns into shared position ids (`positions.py`) unless `--id_overlap`
gives the id ratio apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spatialvlm_cli.errors import ConfigError

MAX_VIEWS = 24
MAX_HFOV_DEG = 160.0  # gnomonic views stretch without bound towards 180°
MIN_VFOV_DEG = 10.0
MAX_VFOV_DEG = 150.0
SPATIALVLM = "spatialvlm"
PANOLLAVA = "panollava"
VIEW_CONVENTIONS = (SPATIALVLM, PANOLLAVA)


@dataclass(frozen=True)
class ViewSpec:
    """One perspective view: where it looks, how wide it is and its size in pixels.

    index: tile number k (0 … N-1) in yaw order. yaw_deg / pitch_deg: the optical axis, degrees (conventions above).
    hfov_deg / vfov_deg: full fields of view, degrees. width / height: pixels."""

    index: int
    yaw_deg: float
    pitch_deg: float
    hfov_deg: float
    vfov_deg: float
    width: int
    height: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "index": self.index,
            "yaw_deg": round(self.yaw_deg, 4),
            "pitch_deg": round(self.pitch_deg, 4),
            "hfov_deg": round(self.hfov_deg, 4),
            "vfov_deg": round(self.vfov_deg, 4),
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True)
class ViewLayout:
    """The images a panorama is sent as: an optional global view (the whole panorama, resized) then the tiles.

    tiles: perspective views in yaw order (empty for `--views 0`, where the panorama is sent as one image).
    overlap: fraction r of a tile's columns shared with each neighbour. global_view: True when the whole panorama
    is sent before the tiles (always True when there are no tiles). convention: 'spatialvlm' (the global view
    keeps the panorama's aspect) or 'panollava' (square tiles, the global view letter-boxed into a square)."""

    tiles: tuple[ViewSpec, ...]
    overlap: float
    global_view: bool
    convention: str = SPATIALVLM

    @property
    def letterbox_global(self) -> bool:
        """True when the global view is letter-boxed into a square (panollava) rather than resized."""
        return self.convention == PANOLLAVA

    @property
    def num_images(self) -> int:
        return len(self.tiles) + int(self.global_view)

    def tile_of_image(self) -> list[int | None]:
        """For each image in prompt order: its tile index, or None for the global view."""
        return ([None] if self.global_view else []) + [tile.index for tile in self.tiles]


def horizontal_fov_deg(num_views: int, overlap: float) -> float:
    """Horizontal field of view (degrees) giving N views at a 360°/N yaw stride a column overlap of `overlap`."""
    step = 2 * math.pi / num_views
    ratio = overlap * math.sin(step) / (1 - overlap)
    if ratio > 1:
        return math.inf
    return math.degrees(step + math.asin(ratio))


def column_overlap(num_views: int, hfov_deg: float) -> float:
    """The column overlap r of N views `hfov_deg` wide at a 360°/N stride (inverse of `horizontal_fov_deg`); 0 when
    they just touch. Raises ConfigError when they leave gaps (hfov < 360°/N)."""
    step = 2 * math.pi / num_views
    excess = math.radians(hfov_deg) - step
    if excess < -1e-9:
        raise ConfigError(
            f"{num_views} views {hfov_deg:g}° wide leave gaps: they need at least {360 / num_views:g}° each"
        )
    excess = max(excess, 0.0)
    return math.sin(excess) / (math.sin(step) + math.sin(excess))


def first_yaw_deg(num_views: int, convention: str) -> float:
    """Yaw of tile 0 in degrees: 0 (spatialvlm), or panollava's: -180° + k·360°/N sorted from 0°, i.e. 0 for even N
    and 180°/N for odd N (in general 180° mod 360°/N)."""
    return 0.0 if convention == SPATIALVLM else 180.0 % (360.0 / num_views)


def plan_views(
    num_views: int,
    overlap: float,
    vfov_deg: float,
    global_view: bool,
    view_height_px: int = 448,
    convention: str = SPATIALVLM,
) -> ViewLayout:
    """The view layout for `--views N --overlap r --fov deg [--global_view]`.

    num_views: 0 (the panorama as one image) or 3 … 24 tiles. overlap: [0, 1), column fraction shared by
    neighbours ('spatialvlm' convention; ignored by 'panollava', where it follows from N and the fov).
    vfov_deg: vertical fov ('spatialvlm') or both fovs of the square tiles ('panollava'), degrees.
    view_height_px: tile height; the width follows from the two fields of view (square pixels).
    Raises ConfigError naming the flag when the combination is impossible."""
    if convention not in VIEW_CONVENTIONS:
        raise ConfigError(f"view convention must be one of {', '.join(VIEW_CONVENTIONS)}, got '{convention}'")
    if num_views == 0:
        return ViewLayout(tiles=(), overlap=0.0, global_view=True, convention=convention)
    if not 3 <= num_views <= MAX_VIEWS:
        raise ConfigError(
            f"--views must be 0 (the whole panorama as one image) or between 3 and {MAX_VIEWS}, got {num_views} "
            "(fewer than 3 views would each need a horizontal field of view of 180° or more)"
        )
    if not 0 <= overlap < 1:
        raise ConfigError(f"--overlap must be in [0, 1), got {overlap}")
    if not MIN_VFOV_DEG <= vfov_deg <= MAX_VFOV_DEG:
        raise ConfigError(
            f"--fov (vertical, degrees) must be between {MIN_VFOV_DEG:g} and {MAX_VFOV_DEG:g}, got {vfov_deg}"
        )
    if view_height_px < 16:
        raise ConfigError(f"view height must be at least 16 pixels, got {view_height_px}")
    if convention == PANOLLAVA:
        hfov = vfov_deg
        overlap = column_overlap(num_views, hfov)
    else:
        hfov = horizontal_fov_deg(num_views, overlap)
    if hfov > MAX_HFOV_DEG:
        raise ConfigError(
            f"--views {num_views} with --overlap {overlap} needs a horizontal field of view over {MAX_HFOV_DEG:g}° "
            "per view; use more views or less overlap"
        )
    aspect = math.tan(math.radians(hfov) / 2) / math.tan(math.radians(vfov_deg) / 2)
    width = max(16, round(view_height_px * aspect))
    first = first_yaw_deg(num_views, convention)
    tiles = tuple(
        ViewSpec(
            index=k,
            yaw_deg=wrap_yaw_deg(first + 360.0 * k / num_views),
            pitch_deg=0.0,
            hfov_deg=hfov,
            vfov_deg=vfov_deg,
            width=width,
            height=view_height_px,
        )
        for k in range(num_views)
    )
    return ViewLayout(tiles=tiles, overlap=overlap, global_view=global_view, convention=convention)


def wrap_yaw_deg(yaw_deg: float) -> float:
    """Yaw folded into [-180, 180) degrees."""
    return (yaw_deg + 180.0) % 360.0 - 180.0


def angles_to_pixel(yaw: np.ndarray, pitch: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """yaw, pitch: radians (any shape). Returns continuous panorama coordinates (u column, v row), u wrapped into
    [-0.5, W - 0.5)."""
    u = (np.asarray(yaw) / (2 * np.pi) + 0.5) * width - 0.5
    u = np.mod(u + 0.5, width) - 0.5
    v = (0.5 - np.asarray(pitch) / np.pi) * height - 0.5
    return u, v


def pixel_to_angles(u: np.ndarray, v: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `angles_to_pixel`: panorama coordinates -> (yaw, pitch) radians, yaw in [-π, π)."""
    yaw = ((np.asarray(u) + 0.5) / width - 0.5) * 2 * np.pi
    yaw = np.mod(yaw + np.pi, 2 * np.pi) - np.pi
    pitch = (0.5 - (np.asarray(v) + 0.5) / height) * np.pi
    return yaw, pitch


def angles_to_rays(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(yaw, pitch) radians, shape S -> unit rays (*S, 3) in the world frame (x right, y up, z forward)."""
    cos_pitch = np.cos(pitch)
    return np.stack([np.sin(yaw) * cos_pitch, np.sin(pitch), np.cos(yaw) * cos_pitch], axis=-1)


def rays_to_angles(rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays (*S, 3), any length > 0 -> (yaw, pitch) radians of shape S."""
    x, y, z = rays[..., 0], rays[..., 1], rays[..., 2]
    return np.arctan2(x, z), np.arctan2(y, np.hypot(x, z))


def _camera_to_world(view: ViewSpec) -> np.ndarray:
    """(3, 3) rotation taking camera-frame rays (x right, y up, z along the optical axis) to the world frame."""
    yaw, pitch = math.radians(view.yaw_deg), math.radians(view.pitch_deg)
    pitch_up = np.array([[1, 0, 0], [0, math.cos(pitch), math.sin(pitch)], [0, -math.sin(pitch), math.cos(pitch)]])
    turn_right = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    return turn_right @ pitch_up


def _half_extent(view: ViewSpec) -> tuple[float, float]:
    """tan of the half fields of view: the image plane at distance 1 spans [-tx, tx] × [-ty, ty]."""
    return math.tan(math.radians(view.hfov_deg) / 2), math.tan(math.radians(view.vfov_deg) / 2)


def view_rays(view: ViewSpec) -> np.ndarray:
    """World rays through the pixel centres of a view: (height, width, 3) float64, not normalised."""
    tan_x, tan_y = _half_extent(view)
    x = ((np.arange(view.width) + 0.5) / view.width * 2 - 1) * tan_x
    y = (1 - (np.arange(view.height) + 0.5) / view.height * 2) * tan_y  # image rows go down, camera y goes up
    grid_x, grid_y = np.meshgrid(x, y)
    camera = np.stack([grid_x, grid_y, np.ones_like(grid_x)], axis=-1)
    return camera @ _camera_to_world(view).T


def view_pixel_angles(view: ViewSpec) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) radians seen by every pixel centre of a view, each (height, width)."""
    return rays_to_angles(view_rays(view))


def project_to_view(yaw: np.ndarray, pitch: np.ndarray, view: ViewSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where directions (yaw, pitch radians, shape S) land in a view: continuous (column, row) pixel coordinates
    with pixel centres at integers, and a mask of directions in front of the camera. Points outside the image
    keep their (out-of-range) coordinates."""
    rays = angles_to_rays(np.asarray(yaw, dtype=np.float64), np.asarray(pitch, dtype=np.float64))
    camera = rays @ _camera_to_world(view)  # world -> camera: multiply by the rotation's transpose
    depth = camera[..., 2]
    in_front = depth > 1e-12
    safe = np.where(in_front, depth, 1.0)
    tan_x, tan_y = _half_extent(view)
    column = (camera[..., 0] / safe / tan_x + 1) / 2 * view.width - 0.5
    row = (1 - camera[..., 1] / safe / tan_y) / 2 * view.height - 0.5
    return column, row, in_front


def sample_bilinear(panorama: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of an equirectangular image at continuous coordinates.

    panorama: (H, W, C) any numeric dtype. u, v: column/row coordinates of shape S. Columns wrap around the 360°
    seam; rows are clamped at the poles. Returns (*S, C) float32."""
    height, width, channels = panorama.shape
    u = np.asarray(u, dtype=np.float64)
    v = np.clip(np.asarray(v, dtype=np.float64), 0, height - 1)
    u0 = np.floor(u)
    v0 = np.floor(v)
    fu = (u - u0)[..., None].astype(np.float32)
    fv = (v - v0)[..., None].astype(np.float32)
    c0 = np.mod(u0, width).astype(np.int64)
    c1 = np.mod(u0 + 1, width).astype(np.int64)
    r0 = v0.astype(np.int64)
    r1 = np.minimum(r0 + 1, height - 1)
    # Flat gathers of the four neighbours (np.take on a (H·W, C) view is several times faster than 2-D fancy
    # indexing), converted to float only after gathering.
    pixels = panorama.reshape(-1, channels)
    top_left, top_right, bottom_left, bottom_right = (
        np.take(pixels, row * width + column, axis=0).astype(np.float32)
        for row, column in ((r0, c0), (r0, c1), (r1, c0), (r1, c1))
    )
    top = top_left + (top_right - top_left) * fu
    bottom = bottom_left + (bottom_right - bottom_left) * fu
    return top + (bottom - top) * fv


def render_view(panorama: np.ndarray, view: ViewSpec) -> np.ndarray:
    """Gnomonic (equirectangular -> perspective) projection of one view.

    panorama: (H, W, 3) uint8 RGB, equirectangular. Returns (view.height, view.width, 3) uint8."""
    height, width = panorama.shape[:2]
    yaw, pitch = view_pixel_angles(view)
    u, v = angles_to_pixel(yaw, pitch, width, height)
    return np.clip(np.rint(sample_bilinear(panorama, u, v)), 0, 255).astype(np.uint8)
