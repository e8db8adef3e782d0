"""The learning curve of a run as a PNG (`<run>/curve.png`), redrawn after every held-out evaluation.

Two panels over the training step: the training loss (nats per target token, from `progress.jsonl`) and the
held-out scores (from `curve.jsonl`): exact wall F1@.25 (x100, left axis, 0-100) and the median room-extent error
(metres, right axis). Drawn with Pillow, which the package needs anyway: a learning curve needs no plotting library.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from spatialvlm_cli.io import write_bytes_atomic

CURVE_PNG = "curve.png"
WIDTH, HEIGHT = 1200, 440
_MARGIN = (70, 40, 70, 50)  # left, top, right, bottom of each panel's plot area, pixels
LOSS_COLOUR, WALL_COLOUR, EXTENT_COLOUR, AXIS_COLOUR = (40, 90, 200), (30, 150, 60), (210, 90, 30), (60, 60, 60)


@dataclass(frozen=True)
class Axes:
    """A plot area (pixel box left, top, right, bottom) with its data ranges: x (steps) and y, bottom to top."""

    box: tuple[int, int, int, int]
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def pixel(self, x: float, y: float) -> tuple[float, float]:
        """Data (x, y) to pixel (column, row); rows grow downwards."""
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return (left + (x - x0) / ((x1 - x0) or 1.0) * (right - left),
                bottom - (y - y0) / ((y1 - y0) or 1.0) * (bottom - top))


def _read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _range(values: list[float], floor: float | None = None) -> tuple[float, float]:
    low, high = min(values), max(values)
    if floor is not None:
        low = min(low, floor)
    pad = 0.05 * ((high - low) or 1.0)
    return (low if floor is not None else low - pad, high + pad)


def _frame(draw: ImageDraw.ImageDraw, axes: Axes, title: str, font: ImageFont.ImageFont) -> None:
    left, top, right, bottom = axes.box
    draw.rectangle(axes.box, outline=AXIS_COLOUR)
    draw.text(((left + right) / 2, top - 14), title, fill=AXIS_COLOUR, font=font, anchor="mm")
    for fraction in (0.0, 0.5, 1.0):
        step = axes.x_range[0] + fraction * (axes.x_range[1] - axes.x_range[0])
        column = left + fraction * (right - left)
        draw.line([(column, bottom), (column, bottom + 4)], fill=AXIS_COLOUR)
        draw.text((column, bottom + 14), f"{step:.0f}", fill=AXIS_COLOUR, font=font, anchor="mm")
    draw.text(((left + right) / 2, bottom + 32), "step", fill=AXIS_COLOUR, font=font, anchor="mm")


def _y_labels(draw: ImageDraw.ImageDraw, axes: Axes, side: str, colour: tuple[int, int, int], digits: int,
              font: ImageFont.ImageFont) -> None:
    left, top, right, bottom = axes.box
    for fraction in (0.0, 0.5, 1.0):
        value = axes.y_range[0] + fraction * (axes.y_range[1] - axes.y_range[0])
        row = bottom - fraction * (bottom - top)
        at, anchor = ((left - 6, row), "rm") if side == "left" else ((right + 6, row), "lm")
        draw.text(at, f"{value:.{digits}f}", fill=colour, font=font, anchor=anchor)


def _polyline(draw: ImageDraw.ImageDraw, axes: Axes, points: list[tuple[float, float]], colour: tuple[int, int, int],
              marks: bool) -> None:
    pixels = [axes.pixel(x, y) for x, y in points]
    if len(pixels) > 1:
        draw.line(pixels, fill=colour, width=2)
    if marks:
        for column, row in pixels:
            draw.ellipse([column - 3, row - 3, column + 3, row + 3], fill=colour)


def render_curve(run: Path) -> Image.Image:
    """The run's learning curve (see the module docstring); empty panels say what they wait for."""
    progress = [(line["step"], line["loss"]) for line in _read_lines(run / "progress.jsonl")]
    heldout = _read_lines(run / "curve.jsonl")
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    half = WIDTH // 2
    left_box = (_MARGIN[0], _MARGIN[1], half - _MARGIN[2], HEIGHT - _MARGIN[3])
    right_box = (half + _MARGIN[0], _MARGIN[1], WIDTH - _MARGIN[2], HEIGHT - _MARGIN[3])
    last_step = max([step for step, _ in progress] + [line["step"] for line in heldout] + [1])
    if progress:
        loss_axes = Axes(left_box, (0, last_step), _range([loss for _, loss in progress], floor=0.0))
        _polyline(draw, loss_axes, progress, LOSS_COLOUR, marks=False)
        _y_labels(draw, loss_axes, "left", LOSS_COLOUR, 2, font)
    else:
        loss_axes = Axes(left_box, (0, last_step), (0, 1))
        draw.text(((left_box[0] + left_box[2]) / 2, HEIGHT / 2), "no progress.jsonl yet", fill=AXIS_COLOUR,
                  font=font, anchor="mm")
    _frame(draw, loss_axes, "training loss (nats per target token)", font)
    walls = [(line["step"], line["wall"]) for line in heldout if line.get("wall") is not None]
    extents = [(line["step"], line["extent_median_m"]) for line in heldout if line.get("extent_median_m") is not None]
    wall_axes = Axes(right_box, (0, last_step), (0.0, 100.0))
    extent_axes = Axes(right_box, (0, last_step), _range([e for _, e in extents] or [1.0], floor=0.0))
    if heldout:
        _polyline(draw, wall_axes, walls, WALL_COLOUR, marks=True)
        _polyline(draw, extent_axes, extents, EXTENT_COLOUR, marks=True)
        _y_labels(draw, wall_axes, "left", WALL_COLOUR, 0, font)
        _y_labels(draw, extent_axes, "right", EXTENT_COLOUR, 2, font)
    else:
        draw.text(((right_box[0] + right_box[2]) / 2, HEIGHT / 2), "no held-out evaluation yet (--eval_every)",
                  fill=AXIS_COLOUR, font=font, anchor="mm")
    _frame(draw, wall_axes, "held-out: wall F1@.25 x100 (green), median extent error m (orange)", font)
    return image


def write_curve_png(run: Path) -> Path:
    """Draw the run's curve into run/curve.png (replaced atomically); returns the path."""
    buffer = io.BytesIO()
    render_curve(run).save(buffer, format="PNG")
    path = run / CURVE_PNG
    write_bytes_atomic(path, buffer.getvalue())
    return path
