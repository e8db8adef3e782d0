"""A synthetic equirectangular panorama of a box room, ray-cast from its inside (for `spatialvlm infer --image`).

The camera stands 1.5 m above the floor of a 6 m × 6 m × 2.7 m room, off centre. Walls have different colours
(front: yaw 0 at the image centre; right: +90°; back: the 360° seam at the image edges; left: -90°), with a door
on the front wall, a window on the right wall, a red picture on the back wall straddling the seam, a tiled floor
and a white ceiling. Shading falls off with distance. 2×2 supersampling.

    python scripts/make_panorama.py --out scenes/pano_room.png --width 1024
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from spatialvlm_cli.panorama.geometry import angles_to_rays, pixel_to_angles

ROOM_MIN = np.array([-2.5, -1.5, -2.0])  # metres, world frame: x right, y up (camera at y = 0), z forward
ROOM_MAX = np.array([3.5, 1.2, 4.0])
FACE_COLOURS = {
    ("x", 0): (150, 170, 200),  # left wall
    ("x", 1): (205, 190, 150),  # right wall
    ("y", 0): (135, 100, 70),  # floor
    ("y", 1): (240, 240, 236),  # ceiling
    ("z", 0): (170, 200, 165),  # back wall (the seam)
    ("z", 1): (215, 205, 195),  # front wall
}
DOOR = {"face": ("z", 1), "x": (0.4, 1.3), "y": (-1.5, 0.6), "colour": (95, 60, 40)}
WINDOW = {"face": ("x", 1), "z": (0.6, 2.2), "y": (-0.4, 0.7), "colour": (170, 215, 245)}
PICTURE = {"face": ("z", 0), "x": (-0.45, 0.45), "y": (-0.25, 0.45), "colour": (200, 40, 40)}


def shade_rays(rays: np.ndarray) -> np.ndarray:
    """Colour of the first room surface each ray hits. rays: (N, 3) unit vectors. Returns (N, 3) float64."""
    safe = np.where(np.abs(rays) < 1e-12, 1e-12, rays)
    # Leaving a box from inside: per axis the wall in the ray's direction; the nearest of the three is hit.
    bound = np.where(rays > 0, ROOM_MAX, ROOM_MIN)
    distances = bound / safe  # (N, 3) positive
    axis = np.argmin(distances, axis=1)
    distance = distances[np.arange(len(rays)), axis]
    hit = rays * distance[:, None]
    colour = np.zeros((len(rays), 3))
    names = "xyz"
    for (axis_name, side), rgb in FACE_COLOURS.items():
        on_face = (axis == names.index(axis_name)) & ((rays[:, names.index(axis_name)] > 0) == bool(side))
        colour[on_face] = rgb
    for feature in (DOOR, WINDOW, PICTURE):
        axis_name, side = feature["face"]
        on_face = (axis == names.index(axis_name)) & ((rays[:, names.index(axis_name)] > 0) == bool(side))
        inside = on_face.copy()
        for coordinate in "xyz":
            if coordinate in feature:
                low, high = feature[coordinate]
                inside &= (hit[:, names.index(coordinate)] >= low) & (hit[:, names.index(coordinate)] <= high)
        colour[inside] = feature["colour"]
    floor = (axis == 1) & (rays[:, 1] < 0)
    tiles = ((np.floor(hit[:, 0] / 0.5) + np.floor(hit[:, 2] / 0.5)) % 2 == 0) & floor
    colour[tiles] *= 0.85
    return colour * np.clip(1.15 - 0.06 * distance, 0.6, 1.0)[:, None]


def render_room(width: int, supersample: int = 2) -> np.ndarray:
    """(width / 2, width, 3) uint8 equirectangular panorama of the room."""
    height = width // 2
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    total = np.zeros((height, width, 3))
    columns, rows = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    for dv in offsets:
        for du in offsets:
            yaw, pitch = pixel_to_angles(columns + du, rows + dv, width, height)
            total += shade_rays(angles_to_rays(yaw, pitch).reshape(-1, 3)).reshape(height, width, 3)
    return np.clip(np.rint(total / supersample**2), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("scenes/pano_room.png"), help="Output .png or .jpg.")
    parser.add_argument("--width", type=int, default=1024, help="Panorama width in pixels (height = width / 2).")
    args = parser.parse_args()
    if args.width < 64 or args.width % 2:
        parser.error("--width must be an even number of at least 64")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_room(args.width)).save(args.out)
    print(f"wrote {args.out} ({args.width}×{args.width // 2})")


if __name__ == "__main__":
    main()
