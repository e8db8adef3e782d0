"""The ray-cast panorama rooms and their QA set: answers the generator knows, checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialvlm_cli.panorama.geometry import angles_to_pixel
from spatialvlm_cli.synthetic.panorama_rooms import (
    DOOR_COLOUR,
    FACE_COLOURS,
    SHIPPED_ROOM,
    WINDOW_COLOUR,
    Opening,
    PanoramaRoom,
    random_room,
    render_room,
    room_questions,
    write_qa_set,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_panorama_is_this_room():
    shipped = np.asarray(Image.open(REPO / "scenes" / "pano_room.png").convert("RGB"))
    np.testing.assert_array_equal(render_room(SHIPPED_ROOM, shipped.shape[1]), shipped)


def one_door_one_window(door_face: tuple[str, int], door_x: tuple[float, float],
                        window_face: tuple[str, int], window_span: tuple[float, float]) -> PanoramaRoom:
    along = "z" if window_face[0] == "x" else "x"
    return PanoramaRoom(
        room_min=np.array([-3.0, -1.5, -3.0]), room_max=np.array([3.0, 1.2, 3.0]), faces=FACE_COLOURS,
        openings=(Opening("door", door_face, {"x": door_x, "y": (-1.5, 0.6)}, DOOR_COLOUR),
                  Opening("window", window_face, {along: window_span, "y": (-0.4, 0.7)}, WINDOW_COLOUR)))


def test_door_left_or_right_of_the_window_by_hand():
    """Door centred at x = -1, z = 3 (front wall): yaw atan2(-1, 3) = -18.4°. Window on the right wall (x = 3)
    centred at z = 0: yaw 90°. The door is left of the window; with the door at x = +1 on the back wall
    (z = -3: yaw atan2(1, -3) = 161.6°) it is right of it."""
    room = one_door_one_window(("z", 1), (-1.45, -0.55), ("x", 1), (-0.6, 0.6))
    assert room.yaw_deg(room.openings[0]) == pytest.approx(-18.435, abs=1e-3)
    assert room.yaw_deg(room.openings[1]) == pytest.approx(90.0)
    questions = {record["id"].split("/")[1]: record for record in room_questions(room, "r", "r.png")}
    assert (questions["doors"]["answer"], questions["windows"]["answer"]) == ("1", "1")
    assert questions["door_side"]["answer"] == "left" and questions["door_side"]["options"] == ["left", "right"]
    behind = one_door_one_window(("z", 0), (0.55, 1.45), ("x", 1), (-0.6, 0.6))
    assert behind.yaw_deg(behind.openings[0]) == pytest.approx(161.565, abs=1e-3)
    assert room_questions(behind, "r", "r.png")[2]["answer"] == "right"


def test_the_door_is_where_its_yaw_says():
    """The pixel at the door's centre direction has the door's colour (shaded), in a 256-px render."""
    room = one_door_one_window(("z", 1), (-1.45, -0.55), ("x", 1), (-0.6, 0.6))
    pixels = render_room(room, 256)
    centre = room.openings[0].centre(room.room_min, room.room_max)
    yaw, pitch = np.arctan2(centre[0], centre[2]), np.arctan2(centre[1], np.hypot(centre[0], centre[2]))
    u, v = angles_to_pixel(yaw, pitch, 256, 128)
    colour = pixels[round(float(v)), round(float(u))].astype(float)
    direction = colour / np.linalg.norm(colour)
    assert direction @ (np.array(DOOR_COLOUR) / np.linalg.norm(DOOR_COLOUR)) > 0.999


def test_random_rooms_and_the_qa_folder(tmp_path: Path):
    for seed in range(20):
        room = random_room(seed)
        assert 1 <= room.count("door") <= 2 and 1 <= room.count("window") <= 2
    records = write_qa_set(tmp_path / "qa", count=3, seed=5, width=64)
    lines = [json.loads(line) for line in (tmp_path / "qa" / "questions.jsonl").read_text().splitlines()]
    assert lines == records
    assert {record["image"] for record in records} == {"room_000.png", "room_001.png", "room_002.png"}
    for record in records:
        assert record["answer"] in record["options"]
        room = random_room(5 + int(record["image"][5:8]))
        if record["id"].endswith("/doors"):
            assert record["answer"] == str(room.count("door"))
    assert Image.open(tmp_path / "qa" / "room_001.png").size == (64, 32)
