"""Training data from scans: SpatialLM's fine-tuning layouts (pcd/ + layout/, ShareGPT json) and .ply + .txt pairs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.io import read_point_cloud
from spatialvlm_cli.layout import format_layout, parse_layout
from spatialvlm_cli.layout.request import ALL, Request, restrict_layout
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.preprocess import prepare_point_cloud
from spatialvlm_cli.training.data import PromptMix
from spatialvlm_cli.training.scans import build_scan_examples, find_scans, request_from_prompt

REPO = Path(__file__).resolve().parents[2]
SCENES = REPO / "scenes"
PRESET = "tiny-qwen"


@pytest.mark.parametrize(("prompt", "request_"), [
    ("<point_cloud>Detect walls, doors, windows, boxes. The reference code is as followed: …", ALL),
    ("<point_cloud>Detect walls, doors, windows. The reference code", Request("arch")),
    ("<point_cloud>Detect boxes. The reference code is as followed: @dataclass", Request("object")),
    ("Detect bed, sofa. The reference code", Request("object", ("bed", "sofa"))),
    ("Detect walls, doors, windows, bed. The reference code", Request("all", ("bed",))),
])
def test_request_from_spatiallm_prompts(prompt, request_):
    assert request_from_prompt(prompt) == request_


@pytest.mark.parametrize("prompt", ["Describe the room.", "Detect unicorns. The reference code"])
def test_other_prompts_are_refused(prompt):
    with pytest.raises(InputError):
        request_from_prompt(prompt)


def spatiallm_folder(tmp_path: Path) -> Path:
    """The shipped scenes in SpatialLM's fine-tuning layout: pcd/<id>.ply, layout/<id>.txt (one scan unlabelled)."""
    data = tmp_path / "data"
    (data / "pcd").mkdir(parents=True)
    (data / "layout").mkdir()
    for name in ("room_000", "room_001", "room_002"):
        shutil.copy(SCENES / f"{name}.ply", data / "pcd" / f"{name}.ply")
        if name != "room_002":
            shutil.copy(SCENES / f"{name}.txt", data / "layout" / f"{name}.txt")
    return data


def test_find_scans_in_each_layout(tmp_path):
    pairs = find_scans(SCENES)
    assert [scan.name for scan in pairs] == ["room_000", "room_001", "room_002"]
    assert all(scan.request == ALL for scan in pairs)
    assert pairs[0].layout_text == (SCENES / "room_000.txt").read_text()

    data = spatiallm_folder(tmp_path)
    assert [scan.name for scan in find_scans(data)] == ["room_000", "room_001"]

    # SpatialLM's create_dataset.py: object-only answers ("Detect boxes."), paths relative to the json.
    layout, _ = parse_layout((SCENES / "room_001.txt").read_text())
    boxes = format_layout(restrict_layout(layout, Request("object"))[0])
    items = [{"conversations": [
        {"from": "human", "value": "<point_cloud>Detect boxes. The reference code is as followed: …"},
        {"from": "gpt", "value": f"<|layout_s|>{boxes}<|layout_e|>"}],
        "point_clouds": ["pcd/room_001.ply"]}]
    (data / "rooms_train.json").write_text(json.dumps(items))
    (scan,) = find_scans(data / "rooms_train.json")
    assert (scan.name, scan.point_cloud, scan.request) == ("room_001", data / "pcd" / "room_001.ply",
                                                          Request("object"))
    assert scan.layout_text == boxes


@pytest.mark.parametrize("content", ["{", "[{\"conversations\": []}]", "{\"a\": 1}"])
def test_broken_sharegpt_files_fail_in_one_line(tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(InputError, match=r"broken\.json"):
        find_scans(path)


def test_folder_without_pairs_fails(tmp_path):
    with pytest.raises(InputError, match="no scans"):
        find_scans(tmp_path)


def test_scan_examples_decode_back_to_the_layout_file(tmp_path):
    """The answer is the layout in bins relative to the prepared cloud's min corner: decoding it as `infer` does
    (bins to metres, plus the min corner) gives the file's layout back to within a bin (walls on the min side,
    half a thickness outside the cloud, clip to bin 0, as in SpatialLM's own data)."""
    processor = load_processor(PRESET)
    scans = find_scans(SCENES)[:2]
    examples = build_scan_examples(PRESET, scans, workers=1)
    mix = PromptMix(processor)
    num_bins = int(processor.config.point_config["num_bins"])
    for scan, example in zip(scans, examples, strict=True):
        answer, issues = parse_layout(mix.answer_text(example))
        assert not issues
        corner = prepare_point_cloud(read_point_cloud(scan.point_cloud), num_bins).min_extent[:2]
        truth, _ = parse_layout(scan.layout_text)
        decoded = answer.undiscretize(num_bins)
        walls = np.array([[w.ax, w.ay, w.bx, w.by] for w in decoded.walls]) + np.tile(corner, 2)
        expected = np.maximum([[w.ax, w.ay, w.bx, w.by] for w in truth.walls], np.tile(corner, 2))
        np.testing.assert_allclose(walls, expected, atol=32 / num_bins)
        assert len(decoded.bboxes) == len(truth.bboxes) and example.request == ALL
        (count,) = processor.num_point_tokens([torch.from_numpy(example.rows)])
        assert example.num_point_tokens == count


def test_an_object_only_example_is_asked_for_boxes(tmp_path):
    data = spatiallm_folder(tmp_path)
    layout, _ = parse_layout((SCENES / "room_000.txt").read_text())
    boxes = format_layout(restrict_layout(layout, Request("object"))[0])
    items = [{"conversations": [{"from": "human", "value": "<point_cloud>Detect boxes. The reference code is"},
                                {"from": "gpt", "value": f"<|layout_s|>{boxes}<|layout_e|>"}],
              "point_clouds": ["pcd/room_000.ply"]}]
    (data / "train.json").write_text(json.dumps(items))
    (example,) = build_scan_examples(PRESET, find_scans(data / "train.json"), workers=1)
    mix = PromptMix(load_processor(PRESET))
    batch = mix.collate([example])
    text = mix.tokenizer.decode(batch["input_ids"][0])
    assert "Detect boxes." in text and "wall_" not in mix.answer_text(example)
    with pytest.raises(ValueError, match="cannot answer"):
        mix.target_ids(example, Request("arch"))


def test_the_example_cache_follows_the_scans(tmp_path):
    """A run's example cache is rebuilt when a layout file changes (not only when scans come or go)."""
    from spatialvlm_cli.distributed import Ranks
    from spatialvlm_cli.training import TrainSettings
    from spatialvlm_cli.training.run import TrainingJob, prepare_examples

    data = tmp_path / "pairs"
    data.mkdir()
    for suffix in (".ply", ".txt"):
        shutil.copy(SCENES / f"room_000{suffix}", data / f"room_000{suffix}")
    job = TrainingJob(TrainSettings(model=PRESET), tmp_path / "run", scans=data, workers=1)
    (first,) = prepare_examples(job, Ranks())
    (again,) = prepare_examples(job, Ranks())
    assert np.array_equal(again.target_ids, first.target_ids)
    layout = (data / "room_000.txt").read_text()
    (data / "room_000.txt").write_text("\n".join(line for line in layout.splitlines() if not line.startswith("bbox")))
    (edited,) = prepare_examples(job, Ranks())
    assert len(edited.target_ids) < len(first.target_ids)
