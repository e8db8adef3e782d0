"""`panorama_position_report` measures how a scheme's ids reach a panorama model; `judge_panorama` passes healthy
models and notices broken hooks and prompts that do not match their layout."""

from __future__ import annotations

import functools

import pytest

from spatialvlm_cli.check.panorama import PANORAMA_CHECKS, judge_panorama
from spatialvlm_cli.panorama.report import panorama_position_report

CHECKS = [
    "image_runs",
    "text_image_collisions",
    "rotary_prefill",
    "rotary_decode",
    "cache_mask_lengths",
    "cache_equals_recompute",
]


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("tiny-internvl", None),
        ("tiny-internvl", "shared"),
        ("tiny-gemma3", "cora"),
        ("tiny-qwen2.5-vl", None),
        ("tiny-qwen2.5-vl", "shared"),
        ("tiny-qwen3-vl", "cora"),
    ],
)
def test_report_on_healthy_models(name, mode, loaded_models, pano_images, scheme_for):
    loaded = loaded_models[name]
    images, tiles = pano_images
    inputs = loaded.processor(images, "Describe the room.")
    facts = panorama_position_report(loaded, inputs, scheme_for(loaded.family, mode, tiles))
    run = facts.run
    assert facts.image_runs == len(tiles) and run is not None
    length = inputs["input_ids"].shape[1]
    assert (run.prompt_length, run.mask_length, run.position_ids_length) == (length, length, length)
    assert run.cache_length == length + run.decode_steps == length + 2
    assert run.calls_per_forward >= 1 and run.prefill_matching == run.calls_per_forward
    assert run.decode_calls == 2 * run.calls_per_forward == run.decode_matching
    # cora shifts text after the image back into the image ids (that scheme's design); the others never do
    assert (run.collisions > 0) == (mode == "cora") and run.next_after_images
    results = judge_panorama(facts, "mode")
    assert [result.name for result in results] == CHECKS and all(result.passed for result in results), results
    assert all(result.detail and "\n" not in result.detail for result in results)
    collisions = results[1].measured["text_after_image_uses_fresh_ids"]
    assert collisions["by_design"] == (mode == "cora") and collisions["collisions"] == run.collisions
    assert results[1].detail.startswith(f"{run.collisions} text tokens after the image reuse image ids")


def test_report_notices_ids_that_do_not_reach_the_model(loaded_models, pano_images, monkeypatch, scheme_for):
    loaded = loaded_models["tiny-internvl"]
    images, tiles = pano_images
    inputs = loaded.processor(images, "Describe the room.")
    forward = loaded.model.forward

    @functools.wraps(forward)
    def drop_position_ids(*args, position_ids=None, **kwargs):  # a model that ignores the ids it is given
        return forward(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", drop_position_ids)
    facts = panorama_position_report(loaded, inputs, scheme_for(loaded.family, "shared", tiles))
    assert facts.run is not None and facts.run.prefill_matching == 0 and facts.run.decode_matching == 0
    failed = {result.name: result.detail for result in judge_panorama(facts, "PanoRoPE_1D/shared")
              if not result.passed}
    assert set(failed) == {"rotary_prefill", "rotary_decode"}
    assert "saw other ids than the scheme's at prefill (0 of" in failed["rotary_prefill"]


def test_report_stops_at_a_layout_mismatch(loaded_models, pano_images, scheme_for):
    loaded = loaded_models["tiny-gemma3"]
    images, tiles = pano_images
    inputs = loaded.processor(images[:3], "Describe the room.")
    facts = panorama_position_report(loaded, inputs, scheme_for(loaded.family, "shared", tiles))
    assert (facts.image_runs, facts.run) == (3, None)
    [result] = judge_panorama(facts, "None")
    assert (result.name, result.passed, result.detail) == ("image_runs", False, "3 image token runs for 5 images")
    assert result.measured == {"image_runs_match_layout": {"runs": 3, "images": 5}}
    assert [check.name for check in PANORAMA_CHECKS] == CHECKS
