"""Parsing SpatialLM layout text: round trips and the diagnostics of every kind of skipped line."""

from __future__ import annotations

from spatialvlm_cli.layout import Bbox, Door, Layout, ParseIssue, Wall, Window, format_layout, parse_layout

MODEL_TEXT = """wall_0=Wall(40,40,0,240,40,0,140,10)
wall_1=Wall(240,40,0,240,200,0,140,10)
door_0=Door(wall_0,120,40,50,45,100)
window_0=Window(wall_1,240,120,70,60,50)
bbox_0=Bbox(dining_table,140,120,20,640,96,64,48)
bbox_1=Bbox(chair,110,120,15,320,32,32,60)"""

METRE_TEXT = """wall_0=Wall(1.0,1.0,0.0,6.0,1.0,0.0,2.8000000000000003,0.2)
door_0=Door(wall_0,3.0,1.0,1.0,0.9,2.0)
bbox_0=Bbox(sofa,2.3750000000000004,3.1,0.45,-1.5707963267948966,2.0,0.9,0.9)"""


def test_model_text_round_trip_is_exact():
    layout, issues = parse_layout(MODEL_TEXT)
    assert issues == []
    assert [len(layout.walls), len(layout.doors), len(layout.windows), len(layout.bboxes)] == [2, 1, 1, 2]
    assert layout.walls[0] == Wall(0, 40, 40, 0, 240, 40, 0, 140, 10)
    assert layout.doors[0] == Door(0, 0, 120, 40, 50, 45, 100)
    assert layout.windows[0] == Window(0, 1, 240, 120, 70, 60, 50)
    assert layout.bboxes[0] == Bbox(0, "dining_table", 140, 120, 20, 640, 96, 64, 48)
    assert all(isinstance(v, int) for v in (layout.walls[0].ax, layout.bboxes[1].scale_z))
    assert format_layout(layout) == MODEL_TEXT


def test_metre_text_round_trip_keeps_float_repr():
    layout, issues = parse_layout(METRE_TEXT)
    assert issues == []
    assert layout.walls[0].height == 2.8000000000000003
    assert layout.bboxes[0].position_x == 2.3750000000000004
    assert layout.bboxes[0].angle_z == -1.5707963267948966
    assert format_layout(layout) == METRE_TEXT


def test_format_orders_groups_and_wraps_ids_like_spatiallm():
    layout = Layout(
        walls=[Wall(1234, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.5, 0.1)],
        doors=[Door(1002, 1234, 0.5, 0.0, 1.0, 0.8, 2.0)],
        windows=[],
        bboxes=[Bbox(3005, "bed", 1.0, 2.0, 0.3, 0.0, 2.0, 1.6, 0.6)],
    )
    assert format_layout(layout).split("\n") == [
        "wall_1234=Wall(0.0,0.0,0.0,1.0,0.0,0.0,2.5,0.1)",
        "door_2=Door(wall_1234,0.5,0.0,1.0,0.8,2.0)",
        "bbox_5=Bbox(bed,1.0,2.0,0.3,0.0,2.0,1.6,0.6)",
    ]
    # Lines come out walls, doors, windows, boxes whatever order they were read in.
    mixed = "bbox_0=Bbox(bed,1,2,3,4,5,6,7)\nwall_0=Wall(1,2,3,4,5,6,7,8)\nwindow_0=Window(wall_0,1,2,3,4,5)"
    assert format_layout(parse_layout(mixed)[0]).split("\n")[0].startswith("wall_0=")


def test_bbox_scales_become_non_negative():
    layout, _ = parse_layout("bbox_0=Bbox(sofa,1.0,2.0,0.5,0.0,-2.0,-0.9,0.8)")
    assert (layout.bboxes[0].scale_x, layout.bboxes[0].scale_y, layout.bboxes[0].scale_z) == (2.0, 0.9, 0.8)


def test_trailing_text_and_extra_values_are_ignored_as_in_spatiallm():
    text = "wall_0=Wall(1,2,3,4,5,6,7,8) <|im_end|>\nbbox_3=Bbox(sofa,1,2,3,4,5,6,7,99)"
    layout, issues = parse_layout(text)
    assert issues == []
    assert layout.walls[0] == Wall(0, 1, 2, 3, 4, 5, 6, 7, 8)
    assert layout.bboxes[0] == Bbox(3, "sofa", 1, 2, 3, 4, 5, 6, 7)


def test_malformed_lines_are_reported_with_line_numbers_and_reasons():
    text = "\n".join(
        [
            "",  # leading blank line: stripped, but line numbers still count it
            "wall_0=Wall(0,0,0,100,0,0,100,4)",
            "door_0=Door(wall_3,10,0,40,30,80)",  # wall_3 never defined
            "window_0=Window(wall_1,10,0,40,30,80)",  # wall_1 is defined only later
            "wall_1=Wall(0,0,0,0,100,0,100)",  # 7 values
            "bbox_0=Bbox(sofa,1,2,three,4,5,6,7)",
            "pose_0=Pose(1,2,3)",
            "Here is the layout:",
            "",
            "   ",
            "bbox_x=Bbox(sofa,1,2,3,4,5,6,7)",
            "bbox_1=Bbox(sofa,1,2,3,4,5,6,7",  # truncated generation
            "door_1=Door(3,10,0,40,30,80)",
            "bbox_2=Bbox(sofa,1,2,3,4,5,6,7)",
        ]
    )
    layout, issues = parse_layout(text)
    assert len(layout.walls) == 1 and layout.doors == [] and layout.windows == []
    assert [b.id for b in layout.bboxes] == [2]
    assert [(i.line_no, i.reason) for i in issues] == [
        (3, "door refers to wall_3, which no earlier line defines"),
        (4, "window refers to wall_1, which no earlier line defines"),
        (5, "Wall needs 8 values, got 7"),
        (6, "value 'three' is not a number"),
        (7, "unknown entity label 'pose' (expected wall, door, window or bbox)"),
        (8, "no entity label such as 'wall_0' before '='"),
        (11, "entity id 'x' is not an integer"),
        (12, "no '(' ... ')' around the values (truncated line?)"),
        (13, "first value must name a wall like 'wall_0', got '3'"),
    ]
    assert issues[0] == ParseIssue(3, "door_0=Door(wall_3,10,0,40,30,80)", issues[0].reason)


def test_empty_and_garbage_text_never_raise():
    assert parse_layout("") == (Layout(), [])
    layout, issues = parse_layout("\x00\x01(((,,,)))==\n=\n_=\n)(")
    assert len(layout) == 0
    assert [i.line_no for i in issues] == [1, 2, 3, 4]
