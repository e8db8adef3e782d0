"""restrict_layout: the part of a layout that answers SpatialLM's detect types and category prompts."""

from __future__ import annotations

import pytest

from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window
from spatialvlm_cli.layout.request import ALL, Request, restrict_layout


def room() -> Layout:
    """One wall with a door and a window in it; a bed, a chair and a sofa with ids 3, 5, 7 (as a model may number
    them)."""
    return Layout(
        walls=[Wall(0, 0.0, 0.1, 0.0, 4.0, 0.1, 0.0, 2.5, 0.2)],
        doors=[Door(0, 0, 2.0, 0.1, 1.0, 0.9, 2.0)],
        windows=[Window(0, 0, 3.0, 0.1, 1.5, 1.0, 1.2)],
        bboxes=[Bbox(3, "bed", 2.0, 2.0, 0.25, 0.0, 2.0, 1.6, 0.5),
                Bbox(5, "chair", 3.5, 3.5, 0.45, 0.0, 0.5, 0.5, 0.9),
                Bbox(7, "sofa", 1.0, 3.0, 0.4, 0.0, 2.0, 0.9, 0.8)],
    )


@pytest.mark.parametrize(("request_", "counts", "dropped"), [
    (ALL, (1, 1, 1, 3), 0),
    (Request("arch"), (1, 1, 1, 0), 3),
    (Request("object"), (0, 0, 0, 3), 3),
    (Request("object", ("chair",)), (0, 0, 0, 1), 5),
    (Request("all", ("bed", "sofa")), (1, 1, 1, 2), 1),
    (Request("arch", ("bed",)), (1, 1, 1, 0), 3),  # categories are ignored for arch, as upstream
    (Request("all", ("table",)), (1, 1, 1, 0), 3),
])
def test_restrict_layout_keeps_what_the_request_asks_for(request_, counts, dropped):
    layout, left_out = restrict_layout(room(), request_)
    assert (len(layout.walls), len(layout.doors), len(layout.windows), len(layout.bboxes)) == counts
    assert left_out == dropped
    assert all(request_.wants_box(box.class_name) for box in layout.bboxes)


def test_ids_stay_unless_boxes_are_left_out():
    assert [box.id for box in restrict_layout(room(), ALL)[0].bboxes] == [3, 5, 7]
    assert [box.id for box in restrict_layout(room(), Request("object"))[0].bboxes] == [3, 5, 7]
    kept = restrict_layout(room(), Request("all", ("bed", "sofa")))[0].bboxes
    assert [(box.id, box.class_name) for box in kept] == [(0, "bed"), (1, "sofa")]
