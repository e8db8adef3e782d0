"""The diagnosis of issue 20: probes by hand, and the shipped model measured as reading its input."""

import numpy as np
import pytest

from spatialvlm_cli.training.diagnose import diagnose, heldout_examples, markdown_table, probe_mae


def test_probe_recovers_a_linear_target_and_not_noise():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    targets = features @ np.array([[2.0], [-1.0], [0.5]]) + 3.0
    assert probe_mae(features, targets)[0] < 0.3  # the unit ridge shrinks a little; the spread is ~2.3
    noise = rng.normal(size=(40, 3))
    spread = np.abs(targets - targets.mean()).mean()
    assert probe_mae(noise, targets)[0] > 0.8 * spread


def test_probe_of_constant_features_is_the_leave_one_out_mean():
    targets = np.array([[1.0], [2.0], [6.0]])
    # each held-out room is predicted by the mean of the other two: |1-4|, |2-3.5|, |6-1.5| -> mean 3.0
    assert probe_mae(np.ones((3, 2)), targets)[0] == pytest.approx(3.0)


@pytest.mark.slow
def test_shipped_model_answers_worse_with_another_rooms_cloud():
    result = diagnose("spatialvlm-rooms", heldout_examples(3, "spatialvlm-rooms"))
    assert result["loss_other_room"] > result["loss_real"] + 0.02
    assert len(result["answer_probe_mae_m"]) == 2 and len(result["attention_on_points_per_layer"]) == 4
    # It ends an arch answer far more often when asked for arch than when asked for everything.
    arch, everything = result["prompt_arch_end_p"]
    assert arch > 10 * everything


def test_markdown_table_has_one_column_per_model():
    result = {"loss_real": 1.0, "loss_features_zeroed": 1.00001, "loss_other_room": 1.25,
              "attention_on_points_per_layer": [0.1, 0.55], "point_share_of_context": 0.2, "token_common_norm": 34.44,
              "token_residual_norm": 2.4, "probe_mae_m": [0.5, 0.8], "answer_probe_mae_m": [0.1, 0.2],
              "constant_mae_m": [1.2, 1.1], "prompt_arch_end_p": [0.4, 0.01], "prompt_category_p": [0.14, 0.14]}
    lines = markdown_table([result, {**result, "loss_real": 2.0}], ["a", "b"]).splitlines()
    assert lines[0] == "| measurement | a | b |" and len(lines) == 14
    assert lines[3] == "| … with every point feature (xyz, rgb) zeroed | 1.0000 (+0.0000) | 1.0000 (-1.0000) |"
    assert lines[4] == "| … with the next room's cloud | 1.2500 (+0.2500) | 1.2500 (-0.7500) |"
    assert lines[-1] == "| p(a box's class) under `-c CLASS`, under `all` | 0.14, 0.14 | 0.14, 0.14 |"
    assert lines[5].endswith("| 0.10, 0.55 | 0.10, 0.55 |") and "| 34.4 |" in lines[7]
