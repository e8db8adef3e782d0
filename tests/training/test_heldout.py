"""The held-out evaluation during training: exact scores, geometry, and whether the prompt is obeyed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.training.heldout import evaluate_heldout, heldout_rooms

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rooms(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("heldout")
    for name in ("room_000", "room_001"):
        for suffix in (".ply", ".txt"):
            shutil.copy(REPO / "scenes" / f"{name}{suffix}", folder / f"{name}{suffix}")
    (folder / "lonely.ply").write_bytes((REPO / "scenes" / "room_002.ply").read_bytes())  # no ground truth: skipped
    return heldout_rooms(folder, 8)


@pytest.fixture(scope="module")
def shipped_scores(rooms, tmp_path_factory) -> dict:
    return evaluate_heldout(load_spatiallm("spatialvlm-rooms", device="cpu"), rooms, tmp_path_factory.mktemp("eval"))


def test_the_shipped_model_reads_the_rooms_and_obeys_detect_arch(rooms, shipped_scores):
    assert [room.stem for room in rooms] == ["room_000", "room_001"]
    scores = shipped_scores
    assert scores["rooms"] == 2 and scores["wall"] > 0 and scores["extent_median_m"] < 1.0
    assert scores["arch_with_boxes"] == 0.0


@pytest.mark.xfail(reason="category prompts are not learnt: the model's class token is the same under -c CLASS and "
                          "under all (README, prompt use); strict, so a model that learns them turns this red until "
                          "the mark goes", strict=True)
def test_the_shipped_model_obeys_category_prompts(shipped_scores):
    assert shipped_scores["categories_other"] == 0.0
