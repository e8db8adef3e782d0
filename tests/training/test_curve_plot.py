"""The learning-curve PNG: data land where the axes say, in the colour of their series."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from spatialvlm_cli.training.curve_plot import (
    EXTENT_COLOUR,
    HEIGHT,
    LOSS_COLOUR,
    WALL_COLOUR,
    WIDTH,
    Axes,
    write_curve_png,
)


def test_axes_map_data_corners_to_the_plot_box():
    axes = Axes((10, 20, 110, 220), (0, 100), (0.0, 2.0))
    assert axes.pixel(0, 0.0) == (10, 220) and axes.pixel(100, 2.0) == (110, 20)
    assert axes.pixel(50, 1.5) == (60, 70)


def write_run(run: Path) -> None:
    run.mkdir()
    (run / "progress.jsonl").write_text("".join(json.dumps({"step": s, "loss": 4.0 / s ** 0.5}) + "\n"
                                                for s in (25, 50, 100, 200, 400)))
    (run / "curve.jsonl").write_text("".join(json.dumps({"step": s, "wall": w, "extent_median_m": e}) + "\n"
                                             for s, w, e in ((200, 20.0, 1.6), (400, 60.0, 0.4))))


def near(image: Image.Image, at: tuple[float, float], colour: tuple[int, int, int], radius: int = 3) -> bool:
    """Whether a pixel of `colour` lies within `radius` pixels of `at`."""
    column, row = round(at[0]), round(at[1])
    return any(image.getpixel((c, r)) == colour for c in range(column - radius, column + radius + 1)
               for r in range(row - radius, row + radius + 1))


def test_curve_png_draws_each_series_where_its_axes_put_it(tmp_path):
    run = tmp_path / "run"
    write_run(run)
    image = Image.open(write_curve_png(run)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    colours = {colour for _, colour in image.getcolors(maxcolors=WIDTH * HEIGHT)}
    assert {LOSS_COLOUR, WALL_COLOUR, EXTENT_COLOUR} <= colours
    # The loss panel spans 0..400 steps and 0..max loss (+5 %): its first and last points lie on the blue line.
    loss_axes = Axes((70, 40, WIDTH // 2 - 70, HEIGHT - 50), (0, 400), (0.0, 4.0 / 5 + 0.05 * 4.0 / 5))
    assert near(image, loss_axes.pixel(25, 0.8), LOSS_COLOUR) and near(image, loss_axes.pixel(400, 0.2), LOSS_COLOUR)
    wall_axes = Axes((WIDTH // 2 + 70, 40, WIDTH - 70, HEIGHT - 50), (0, 400), (0.0, 100.0))
    assert near(image, wall_axes.pixel(200, 20.0), WALL_COLOUR) and near(image, wall_axes.pixel(400, 60.0), WALL_COLOUR)
    assert not near(image, wall_axes.pixel(200, 90.0), WALL_COLOUR)


def test_a_run_without_files_still_gets_a_picture(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    assert Image.open(write_curve_png(run)).size == (WIDTH, HEIGHT)
