"""Floor-plan raster: where things land in pixels, and the colours of each layer."""

from __future__ import annotations

import numpy as np

from spatialvlm_cli.layout import Bbox, Door, Layout, Wall
from spatialvlm_cli.layout.floorplan import BACKGROUND, GROUND_TRUTH, POINT_GREY, PREDICTION, render_floor_plan

WALL = Wall(0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 3.0, 0.2)


def pixel(image, column: int, row: int) -> tuple[int, int, int]:
    return image.getpixel((column, row))


def test_wall_lands_where_the_view_puts_it():
    # size 440: margin 24 px, scale (440 - 48) / 4 m = 98 px/m; the wall at y = 0 is the top edge of the view.
    image = render_floor_plan(Layout(walls=[WALL]), size_px=440, labels=False)
    assert image.size == (440, 24 * 2 + 60)
    assert pixel(image, 24 + 2 * 98, 24) == PREDICTION.wall
    assert pixel(image, 24 + 2 * 98, 24 + 20) == BACKGROUND


def test_ground_truth_under_prediction_and_points_under_both():
    gt = Layout(walls=[WALL], doors=[Door(0, 0, 1.0, 0.0, 1.0, 1.0, 2.0)])
    pred = Layout(bboxes=[Bbox(0, "bed", 2.0, 2.0, 0.3, 0.0, 2.0, 2.0, 0.6)])
    points = np.array([[3.5, 3.5, 0.0], [0.5, 3.0, 0.0], [2.0, 4.0, 0.0]])
    image = render_floor_plan(pred, gt, points=points, size_px=440, labels=False)
    # view: x 0..4, y 0..4 (box corners reach y = 3, the points y = 4): scale 98, top row y = 4
    def at(x: float, y: float) -> tuple[int, int, int]:
        return pixel(image, round(24 + x * 98), round(24 + (4.0 - y) * 98))

    assert at(3.0, 0.0) == GROUND_TRUTH.wall
    assert at(1.0, 0.0) == GROUND_TRUTH.door  # the door bar covers its wall
    assert at(1.0, 2.0) == PREDICTION.box  # left edge of the 2 m box centred at (2, 2)
    assert at(2.0, 2.0) == PREDICTION.box  # facing tick from the centre towards +x
    assert at(3.5, 3.5) == POINT_GREY
    assert at(3.5, 2.5) == BACKGROUND


def test_point_colours_are_dimmed_and_an_empty_layout_still_renders():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    colors = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    image = render_floor_plan(Layout(), points=points, colors=colors, size_px=200, labels=True)
    # 1 m view: scale (200 - 48) / 1; red blended 55/45 with white -> (255, 114, 114)
    assert pixel(image, 24, 24 + 152) == (255, 114, 114)
    assert pixel(image, 24 + 152, 24) == (114, 114, 114)
    assert render_floor_plan(Layout(), size_px=100).size[0] > 0
