"""Top-down floor-plan pictures of layouts (Pillow raster; no plotting library).

x to the right, y up, metres; the view spans every drawn wall, opening, box and point with a margin. Each layout is
drawn in its own colour family (ground truth first, prediction on top): walls as thick lines, doors as wide light
bars along their wall, windows as wide bars with a white centre line, boxes as their rotated footprint with a tick
from the centre towards local +x (the box's facing) and, optionally, the class name on a white patch, moved off
labels already placed. Points are drawn under everything as small squares (2 cm, at least a pixel) in their own
colours (dimmed) or grey. Below the plan: a 1 m scale bar and the layouts' colours, then a key to the shapes (wall,
door, window, box with its facing tick).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spatialvlm_cli.layout.entities import Layout, Wall
from spatialvlm_cli.layout.footprint import box_corners_xy

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont


@dataclass(frozen=True)
class Palette:
    """RGB colours of one layout."""

    wall: tuple[int, int, int]
    door: tuple[int, int, int]
    window: tuple[int, int, int]
    box: tuple[int, int, int]


PREDICTION = Palette(wall=(214, 84, 0), door=(255, 170, 90), window=(240, 120, 40), box=(200, 60, 20))
GROUND_TRUTH = Palette(wall=(20, 70, 180), door=(120, 170, 240), window=(60, 120, 220), box=(30, 110, 200))
BACKGROUND = (255, 255, 255)
POINT_GREY = (120, 120, 120)
KEY_GREY = (90, 90, 90)  # the shape key below the plan: shapes, not a layout's colour
POINT_SIZE_M = 0.02


@dataclass(frozen=True)
class _View:
    """World (x, y) metres -> pixel (column, row):
    column = margin + (x - x0) * scale, row = margin + (y1 - y) * scale (rows grow downwards, y grows upwards)."""

    x0: float
    y1: float
    scale: float  # pixels per metre
    margin: int

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) metres -> (..., 2) float pixels."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([self.margin + (xy[..., 0] - self.x0) * self.scale,
                         self.margin + (self.y1 - xy[..., 1]) * self.scale], axis=-1)


def box_footprint(layout: Layout) -> np.ndarray:
    """Footprint corners of every box: (B, 4, 2) metres, counter-clockwise from local (-x, -y)."""
    if not layout.bboxes:
        return np.zeros((0, 4, 2))
    rows = np.array([[b.position_x, b.position_y, b.angle_z, b.scale_x, b.scale_y] for b in layout.bboxes])
    return box_corners_xy(rows[:, :2], rows[:, 2], rows[:, 3:5])


def _opening_segments(layout: Layout) -> list[tuple[str, np.ndarray]]:
    """(label, (2, 2) segment in metres) for doors and windows whose wall exists, along the wall's direction."""
    lookup: dict[int, Wall] = {w.id: w for w in layout.walls}
    segments = []
    for label, group in (("door", layout.doors), ("window", layout.windows)):
        for opening in group:
            wall = lookup.get(opening.wall_id)
            if wall is None:
                continue
            direction = np.array([wall.bx - wall.ax, wall.by - wall.ay], dtype=np.float64)
            length = float(np.linalg.norm(direction))
            if length <= 1e-9:
                continue
            half = direction / length * opening.width / 2
            centre = np.array([opening.position_x, opening.position_y], dtype=np.float64)
            segments.append((label, np.stack([centre - half, centre + half])))
    return segments


def _layout_xy(layout: Layout) -> np.ndarray:
    walls = [(w.ax, w.ay) for w in layout.walls] + [(w.bx, w.by) for w in layout.walls]
    parts = [np.array(walls, dtype=np.float64).reshape(-1, 2), box_footprint(layout).reshape(-1, 2)]
    parts += [segment for _, segment in _opening_segments(layout)]
    return np.concatenate(parts)


def render_floor_plan(
    pred: Layout,
    gt: Layout | None = None,
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    size_px: int = 1200,
    labels: bool = True,
) -> Image.Image:
    """Draw `pred` (and `gt`) from above over optional points.

    points: (N, 3) or (N, 2) float metres, same frame as the layouts; colors: (N, 3) float in [0, 1] or None.
    size_px: length of the longer image side. Returns an RGB PIL image."""
    # Pillow loads when a plan is drawn: importing layout/ (eval, infer's flag checks) stays free of it
    # (tests/evaluation/test_imports.py).
    from PIL import Image, ImageDraw

    layers = [(gt, GROUND_TRUTH, "ground truth")] if gt is not None else []
    layers.append((pred, PREDICTION, "prediction"))
    xy = [_layout_xy(layout) for layout, _, _ in layers]
    if points is not None and len(points):
        # Large scans: bounds from the 0.5-99.5 percentiles, so a few stray points do not shrink the plan.
        lo, hi = np.percentile(points[:, :2], [0.5, 99.5] if len(points) >= 1000 else [0, 100], axis=0)
        xy.append(np.stack([lo, hi]))
    everything = np.concatenate(xy) if xy else np.zeros((0, 2))
    everything = everything[np.isfinite(everything).all(axis=1)]
    if len(everything) == 0:
        everything = np.array([[0.0, 0.0], [1.0, 1.0]])
    (x0, y0), (x1, y1) = everything.min(axis=0), everything.max(axis=0)
    margin = max(24, size_px // 25)
    scale = (size_px - 2 * margin) / max(x1 - x0, y1 - y0, 1.0)
    view = _View(float(x0), float(y1), float(scale), margin)
    width, height = int(np.ceil((x1 - x0) * scale)) + 2 * margin, int(np.ceil((y1 - y0) * scale)) + 2 * margin + 60

    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    if points is not None and len(points):
        _draw_points(canvas, view(points[:, :2]), colors, radius=int(scale * POINT_SIZE_M / 2))
    image = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(image)
    font = _font(max(11, size_px // 90))
    placed: list[tuple[float, float, float, float]] = []  # label boxes already drawn, so labels never overlap
    for layout, palette, _ in layers:
        _draw_layout(draw, layout, palette, view, font if labels else None, placed)
    _draw_legend(draw, [(palette, name) for _, palette, name in layers], scale, height, margin, font)
    return image


def _draw_points(canvas: np.ndarray, pixels: np.ndarray, colors: np.ndarray | None, radius: int = 0) -> None:
    """Each point as a (2 radius + 1)-pixel square centred on its pixel."""
    centre_columns = np.round(pixels[:, 0]).astype(np.int64)
    centre_rows = np.round(pixels[:, 1]).astype(np.int64)
    if colors is None:
        rgb_all = np.broadcast_to(np.array(POINT_GREY, dtype=np.uint8), (len(pixels), 3))
    else:
        # Blend towards white so the layout lines stay readable over a coloured scan.
        rgb_all = (np.clip(colors, 0.0, 1.0) * 255 * 0.55 + 255 * 0.45).astype(np.uint8)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            columns, rows = centre_columns + dx, centre_rows + dy
            inside = (columns >= 0) & (columns < canvas.shape[1]) & (rows >= 0) & (rows < canvas.shape[0])
            canvas[rows[inside], columns[inside]] = rgb_all[inside]


def _draw_layout(draw: ImageDraw.ImageDraw, layout: Layout, palette: Palette, view: _View,
                 font: ImageFont.ImageFont | None, placed: list[tuple[float, float, float, float]]) -> None:
    line = max(2, round(view.scale * 0.06))
    for wall in layout.walls:
        ends = view(np.array([[wall.ax, wall.ay], [wall.bx, wall.by]]))
        draw.line([tuple(p) for p in ends], fill=palette.wall, width=line)
    for label, segment in _opening_segments(layout):
        ends = [tuple(p) for p in view(segment)]
        if label == "door":
            draw.line(ends, fill=palette.door, width=line * 3)
        else:
            draw.line(ends, fill=palette.window, width=line * 3)
            draw.line(ends, fill=BACKGROUND, width=max(1, line // 2))
    for box, corners in zip(layout.bboxes, box_footprint(layout), strict=True):
        pixels = [tuple(p) for p in view(corners)]
        draw.polygon(pixels, outline=palette.box, width=max(1, line // 2 + 1))
        centre = view(np.array([box.position_x, box.position_y]))
        front = view((corners[1] + corners[2]) / 2)  # middle of the local +x face
        draw.line([tuple(centre), tuple(front)], fill=palette.box, width=max(1, line // 2))
        if font is not None:
            _draw_label(draw, tuple(centre), box.class_name, palette.box, font, placed)


def _draw_label(draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour: tuple[int, int, int],
                font: ImageFont.ImageFont, placed: list[tuple[float, float, float, float]]) -> None:
    """`text` on a white patch at `at`, or the nearest spot above or below it that overlaps no placed label."""
    left, top, right, bottom = draw.textbbox(at, text, font=font, anchor="mm")
    step = bottom - top + 4
    for shift in (0, step, -step, 2 * step, -2 * step, 3 * step, -3 * step):
        box = (left - 2, top - 2 + shift, right + 2, bottom + 2 + shift)
        if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            break
    placed.append(box)
    draw.rectangle(box, fill=BACKGROUND)
    draw.text((at[0], at[1] + box[1] - top + 2), text, fill=colour, font=font, anchor="mm")


def _draw_legend(draw: ImageDraw.ImageDraw, entries: list[tuple[Palette, str]], scale: float, height: int,
                 margin: int, font: ImageFont.ImageFont) -> None:
    """First row: the 1 m bar and each layout's colour; second row: what each shape means, drawn as the plan
    draws it."""
    x, y = margin, height - 45
    draw.line([(x, y), (x + scale, y)], fill=(0, 0, 0), width=3)  # 1 m
    draw.text((x + scale + 6, y), "1 m", fill=(0, 0, 0), font=font, anchor="lm")
    x += int(scale) + 60
    for palette, name in entries:
        draw.line([(x, y), (x + 30, y)], fill=palette.wall, width=5)
        draw.text((x + 36, y), name, fill=palette.wall, font=font, anchor="lm")
        x += 60 + int(draw.textlength(name, font=font))
    x, y = margin, height - 20
    for kind, name in (("wall", "wall"), ("door", "door"), ("window", "window"), ("box", "box, tick = its front")):
        _draw_key_symbol(draw, kind, x, y)
        draw.text((x + 36, y), name, fill=KEY_GREY, font=font, anchor="lm")
        x += 60 + int(draw.textlength(name, font=font))


def _draw_key_symbol(draw: ImageDraw.ImageDraw, kind: str, x: int, y: int) -> None:
    """A 30-pixel sample of how the plan draws `kind`, in KEY_GREY."""
    ends = [(x, y), (x + 30, y)]
    if kind == "wall":
        draw.line(ends, fill=KEY_GREY, width=4)
    elif kind == "door":
        draw.line(ends, fill=tuple(c + (255 - c) // 2 for c in KEY_GREY), width=10)
    elif kind == "window":
        draw.line(ends, fill=KEY_GREY, width=10)
        draw.line(ends, fill=BACKGROUND, width=2)
    else:
        draw.rectangle((x + 6, y - 8, x + 24, y + 8), outline=KEY_GREY, width=2)
        draw.line([(x + 15, y), (x + 24, y)], fill=KEY_GREY, width=2)


def _font(size: int) -> ImageFont.ImageFont:
    from PIL import ImageFont  # as in render_floor_plan: Pillow only when drawing

    return ImageFont.load_default(size=size)
