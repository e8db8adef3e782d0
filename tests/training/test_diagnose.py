"""The diagnosis of issue 20: probes by hand, and the shipped model measured as reading its input."""

import numpy as np
import pytest
import torch

from spatialvlm_cli.model.tokenizer import load_bundled_tokenizer
from spatialvlm_cli.training.diagnose import (
    BOX_CLASS,
    answer_values,
    diagnose,
    field_errors,
    heldout_examples,
    markdown_table,
    probe_mae,
    value_tokens,
)
from spatialvlm_cli.training.loss import NumberVocabulary

ANSWER = ("wall_0=Wall(0,0,0,194,0,0,141,10)\nwall_1=Wall(194,0,0,194,142,0,141,10)\n"
          "door_0=Door(wall_1,194,86,42,49,103)\nbbox_0=Bbox(chair,10,69,17,799,33,30,53)")


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


def test_value_tokens_name_each_value_that_starts_a_token():
    text = "wall_0=Wall(0,0,0,194,0,0,141,10)\nbbox_0=Bbox(chair,10,69,17,799,33,30,53)"
    every_character = list(range(len(text)))
    found = value_tokens(text, every_character)
    assert [(line, label, name, value) for _, line, label, name, value in found][3] == (0, "wall", "bx", "194")
    assert found[8][1:] == (1, "bbox", "class_name", "chair") and found[8][0] == text.index("chair")
    assert found[-1][1:] == (1, "bbox", "scale_z", "53") and found[-1][0] == text.index("53)")
    assert len(found) == 16
    # Only values whose text begins where a token begins are reported.
    assert value_tokens(text, [0, text.index("194")]) == [(1, 0, "wall", "bx", "194")]


def test_field_errors_measure_the_argmax_against_the_truth_in_metres():
    tokenizer = load_bundled_tokenizer("qwen")
    numbers = NumberVocabulary.from_tokenizer(tokenizer, 1280, len(tokenizer))
    answer = tokenizer(ANSWER, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    logits = torch.zeros(len(answer), len(tokenizer))
    logits[torch.arange(len(answer)), torch.tensor(answer)] = 5.0  # every token right ...
    starts = [start for start, _ in tokenizer(ANSWER, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"]]
    at = {(label, name): token for token, _, label, name, _ in value_tokens(ANSWER, starts)}
    # ... but the door's y 4 bins high and x 3 bins low (2.5 cm bins): 5 bins off, 0.125 m.
    logits[at["door", "position_y"], numbers.ids[86 + 4]] = 9.0
    logits[at["door", "position_x"], numbers.ids[194 - 3]] = 9.0
    logits[at["bbox", "class_name"], numbers.ids[7]] = 9.0  # the class is not the top token
    logits[at["bbox", "scale_x"], numbers.ids[33 + 8]] = 9.0  # scale bins are 20 m / 1280: 8 bins, 0.125 m
    errors = field_errors(answer, logits, answer_values(tokenizer, answer), numbers, 1280)
    assert errors["wall end"] == [0.0, 0.0]
    assert errors["door centre"] == [pytest.approx(0.125)]
    assert errors["window centre"] == [] and errors["box centre"] == [0.0]
    assert errors["box size"] == [pytest.approx(0.125)]
    assert errors[BOX_CLASS] == [0.0]
    # An answer that its own text does not tokenise back to has no offsets to trust: "194" written as "19", "4".
    split = answer.index(numbers.ids[194].item())
    respelled = [*answer[:split], numbers.ids[19].item(), numbers.ids[4].item(), *answer[split + 1 :]]
    assert answer_values(tokenizer, respelled) == [] and len(answer_values(tokenizer, answer)) == 8 + 8 + 6 + 8


@pytest.mark.slow
def test_shipped_model_answers_worse_with_another_rooms_cloud():
    result = diagnose("spatialvlm-rooms", heldout_examples(3, "spatialvlm-rooms"))
    assert result["loss_other_room"] > result["loss_real"] + 0.02
    assert len(result["answer_probe_mae_m"]) == 2 and len(result["attention_on_points_per_layer"]) == 4
    # It ends an arch answer far more often when asked for arch than when asked for everything.
    arch, everything = result["prompt_arch_end_p"]
    assert arch > 10 * everything
    # Where its walls end is read from the scan: teacher-forced, another room's cloud moves them by far more.
    own, other, walls = result["fields"]["wall end"]
    assert walls >= 12 and other > own + 0.1 and other > 3 * own
    # Its point tokens carry where they are, readably, into every decoder layer (the mean: over a metre off).
    assert len(result["probe_token_position_m"]) == 4 and max(result["probe_token_position_m"]) < 0.2
    assert result["probe_token_position_mean_m"][0] > 1.0


def test_markdown_table_has_one_column_per_model():
    result = {"loss_real": 1.0, "loss_features_zeroed": 1.00001, "loss_other_room": 1.25,
              "attention_on_points_per_layer": [0.1, 0.55], "point_share_of_context": 0.2, "token_common_norm": 34.44,
              "token_residual_norm": 2.4, "probe_mae_m": [0.5, 0.8], "answer_probe_mae_m": [0.1, 0.2],
              "constant_mae_m": [1.2, 1.1], "prompt_arch_end_p": [0.4, 0.01], "prompt_category_p": [0.14, 0.14],
              "fields": {"wall end": [0.05, 0.61, 90], "door centre": [1.2, 1.3, 30], "window centre": [1.0, 1.1, 37],
                         "box centre": [1.9, 2.0, 102], "box size": [0.2, 0.25, 102], "box class": [0.14, 0.12, 102]},
              "probe_token_position_m": [0.02, 0.05], "probe_token_position_mean_m": [1.66],
              "probe_box_y_m": [1.27, 1.34]}
    lines = markdown_table([result, {**result, "loss_real": 2.0}], ["a", "b"]).splitlines()
    assert lines[0] == "| measurement | a | b |" and len(lines) == 23
    assert lines[3] == "| … with every point feature (xyz, rgb) zeroed | 1.0000 (+0.0000) | 1.0000 (-1.0000) |"
    assert lines[4] == "| … with the next room's cloud | 1.2500 (+0.2500) | 1.2500 (-0.7500) |"
    assert lines[13] == "| p(a box's class) under `-c CLASS`, under `all` | 0.14, 0.14 | 0.14, 0.14 |"
    assert lines[14] == ("| teacher-forced wall end, median error (m): own cloud, next room's | 0.05, 0.61 | "
                         "0.05, 0.61 |")
    assert lines[19] == "| teacher-forced box class, share top-1: own cloud, next room's | 0.14, 0.12 | 0.14, 0.12 |"
    assert lines[-1].endswith("predicting the mean | 1.27, 1.34 | 1.27, 1.34 |")
    assert lines[5].endswith("| 0.10, 0.55 | 0.10, 0.55 |") and "| 34.4 |" in lines[7]
