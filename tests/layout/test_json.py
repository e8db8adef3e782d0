"""The JSON form of a layout: lossless round trip and clear errors on malformed input."""

from __future__ import annotations

import json

import pytest

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout import CATEGORIES, layout_from_json, layout_to_json, parse_layout

TEXT = """wall_0=Wall(1.0,1.0,0.0,6.0,1.0,0.0,2.8000000000000003,0.2)
door_0=Door(wall_0,3.0,1.0,1.0,0.9,2.0)
window_4=Window(wall_0,5.0,1.0,1.5,1.2,1.0)
bbox_0=Bbox(sofa,2.375,3.1,0.45,-1.5707963267948966,2.0,0.9,0.9)"""


def test_json_round_trip_through_text():
    layout, _ = parse_layout(TEXT)
    data = json.loads(json.dumps(layout_to_json(layout)))
    assert data["doors"][0] == {"id": 0, "wall_id": 0, "position_x": 3.0, "position_y": 1.0, "position_z": 1.0,
                                "width": 0.9, "height": 2.0}
    assert data["bboxes"][0]["class_name"] == "sofa"
    assert layout_from_json(data) == layout


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be an object"),
        ({"rooms": []}, "unknown layout JSON key"),
        ({"walls": {}}, "must be a list"),
        ({"walls": [{"id": 0}]}, "exactly the fields"),
        ({"doors": [{"id": 0, "wall_id": "0", "position_x": 1, "position_y": 1, "position_z": 1, "width": 1,
                     "height": 1}]}, "doors[0].wall_id"),
        ({"bboxes": [{"id": 0, "class_name": "bed", "position_x": 1, "position_y": 1, "position_z": True,
                      "angle_z": 0, "scale_x": 1, "scale_y": 1, "scale_z": 1}]}, "bboxes[0].position_z"),
    ],
)
def test_json_errors(data, fragment: str):
    with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        layout_from_json(data)


def test_categories():
    assert len(CATEGORIES) == 59 and len(set(CATEGORIES)) == 59
    assert CATEGORIES[0] == "sofa" and CATEGORIES[-1] == "multifunctional_combination_bed"
    assert "micro-wave_oven" in CATEGORIES and "floor-standing_lamp" in CATEGORIES
