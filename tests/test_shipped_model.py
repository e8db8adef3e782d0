"""The shipped default model reads rooms it never saw: infer + eval on two shipped held-out rooms.

scenes/room_000..002 are held-out rooms (generator seeds 1,000,000+; training used seeds below 1,000,000).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.evaluation import evaluate_folders
from spatialvlm_cli.generation import GenerationSettings
from spatialvlm_cli.model import DEFAULT_MODEL, list_shipped_models, load_spatiallm
from spatialvlm_cli.pipeline import SceneSettings, infer_scene, write_scene_outputs
from spatialvlm_cli.training import build_untrained_model

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("room_000", "room_001")


def score_rooms(loaded, tmp_path: Path, max_new_tokens: int) -> dict[str, float | None]:
    """Wall/door/window F1@.25 and the boxes' mean F1@.25 of greedy predictions for ROOMS."""
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(parents=True)
    gt.mkdir(parents=True)
    settings = SceneSettings(generation=GenerationSettings(greedy=True, max_new_tokens=max_new_tokens))
    for name in ROOMS:
        result = infer_scene(loaded, REPO / "scenes" / f"{name}.ply", settings)
        write_scene_outputs(result, pred / f"{name}.txt", pred / f"{name}.json", {"model": loaded.spec})
        shutil.copy(REPO / "scenes" / f"{name}.txt", gt / f"{name}.txt")
    report = evaluate_folders(pred, gt)
    scores = {name: report.f1(name, 0.25) for name in ("wall", "door", "window")}
    scores["boxes"] = report.group_mean("objects", 0.25)
    return scores


@pytest.fixture(scope="module")
def shipped():
    return load_spatiallm(DEFAULT_MODEL, device="cpu")


def test_the_default_model_is_shipped_trained_weights(shipped):
    assert DEFAULT_MODEL in list_shipped_models()
    assert shipped.source == "shipped" and not shipped.random_weights
    weights = REPO / "spatialvlm_cli" / "assets" / "models" / DEFAULT_MODEL / "model.safetensors"
    assert weights.stat().st_size <= 30 * 2**20


def test_shipped_model_scores_far_above_random_weights(shipped, tmp_path):
    trained = score_rooms(shipped, tmp_path / "trained", max_new_tokens=1024)
    # The same architecture before training: its text is not a layout, so nothing matches.
    untrained = build_untrained_model(str(REPO / "configs" / "train-rooms.yaml"))
    untrained.model.eval()
    random = score_rooms(untrained, tmp_path / "random", max_new_tokens=64)
    assert random["wall"] == 0.0
    assert trained["wall"] >= 0.75, trained


def test_infer_without_model_uses_the_shipped_model(tmp_path):
    result = CliRunner().invoke(app, ["infer", "-p", str(REPO / "scenes" / "room_002.ply"), "-o", str(tmp_path),
                                      "--greedy", "--max_new_tokens", "48"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "room_002.json").read_text())
    assert payload["model"] == DEFAULT_MODEL
    assert payload["raw_text"].startswith("wall_0=Wall(")
