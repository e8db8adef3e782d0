"""Near-duplicate entity lines and repeated ids never reach the written layout."""

from __future__ import annotations

import logging

import numpy as np

from spatialvlm_cli.layout import DedupeStats, dedupe_layout, format_layout, parse_layout
from spatialvlm_cli.pipeline import decode_layout

TEXT = """wall_0=Wall(10,10,0,200,10,0,112,8)
wall_1=Wall(200,10,0,200,150,0,112,8)
wall_1=Wall(200,150,0,10,150,0,112,8)
wall_1=Wall(201,150,0,10,149,0,112,8)
door_0=Door(wall_0,100,10,40,36,84)
door_0=Door(wall_0,101,10,40,36,85)
door_0=Door(wall_1,100,150,40,36,84)
window_0=Window(wall_0,50,10,76,48,54)
window_0=Window(wall_0,52,10,76,48,54)
bbox_0=Bbox(bed,60,60,10,0,80,64,24)
bbox_0=Bbox(bed,60,61,10,0,80,64,24)
bbox_0=Bbox(sofa,60,61,10,0,80,64,24)"""


def test_near_duplicates_dropped_and_repeated_ids_renumbered():
    layout, issues = parse_layout(TEXT)
    assert not issues
    clean, stats = dedupe_layout(layout, tolerance=1)
    # dropped: wall_1 (3rd wall line, each value within a bin of the 2nd), door line 2, bbox line 2 = 3;
    # kept with a repeated id: wall_1 -> wall_2, door (wall_1 one) -> door_1, window 52 (2 bins off) -> window_1,
    # sofa -> bbox_1
    assert stats == DedupeStats(dropped=3, renumbered=4)
    assert format_layout(clean).splitlines() == [
        "wall_0=Wall(10,10,0,200,10,0,112,8)",
        "wall_1=Wall(200,10,0,200,150,0,112,8)",
        "wall_2=Wall(200,150,0,10,150,0,112,8)",
        "door_0=Door(wall_0,100,10,40,36,84)",
        # wall_1 names the *last* wall with id 1 (SpatialLM's lookup): its kept copy is wall_2 now
        "door_1=Door(wall_2,100,150,40,36,84)",
        "window_0=Window(wall_0,50,10,76,48,54)",
        "window_1=Window(wall_0,52,10,76,48,54)",
        "bbox_0=Bbox(bed,60,60,10,0,80,64,24)",
        "bbox_1=Bbox(sofa,60,61,10,0,80,64,24)",
    ]


def test_clean_layout_is_unchanged():
    text = "\n".join(TEXT.splitlines()[:2])
    layout, _ = parse_layout(text)
    clean, stats = dedupe_layout(layout)
    assert not stats and stats == DedupeStats(0, 0)
    assert format_layout(clean) == text


def test_tolerance_is_in_the_layouts_units():
    layout, _ = parse_layout("bbox_0=Bbox(chair,1.0,2.0,0.4,0.0,0.5,0.5,0.9)\n"
                             "bbox_1=Bbox(chair,1.02,2.0,0.4,0.0,0.5,0.5,0.9)")
    assert dedupe_layout(layout, tolerance=0.025)[1].dropped == 1  # metres: within 2.5 cm
    assert dedupe_layout(layout, tolerance=0.01)[1].dropped == 0


def test_decode_layout_drops_duplicates_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli.pipeline"):
        layout, _ = decode_layout(TEXT, 1280, np.zeros(3), source="room_000.ply")
    assert len(layout.walls) == 3 and len(layout.doors) == 2 and len(layout.bboxes) == 2
    assert [wall.id for wall in layout.walls] == [0, 1, 2]
    assert "'room_000.ply': dropped 3 near-duplicate entity line(s), renumbered 4 repeated id(s)" in caplog.text
