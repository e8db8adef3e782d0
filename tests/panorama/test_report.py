"""`panorama_position_report`: every check passes on a healthy model, and the checks notice broken hooks."""

from __future__ import annotations

import functools

import pytest

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
    report = panorama_position_report(loaded, inputs, scheme_for(loaded.family, mode, tiles))
    assert [row["check"] for row in report] == CHECKS
    levels = {row["check"]: row["level"] for row in report}
    expected_collisions = "warning" if mode == "cora" else "ok"
    assert levels.pop("text_image_collisions") == expected_collisions, report
    assert set(levels.values()) == {"ok"}, report
    assert all(isinstance(row["detail"], str) and "\n" not in row["detail"] for row in report)


def test_report_notices_ids_that_do_not_reach_the_model(loaded_models, pano_images, monkeypatch, scheme_for):
    loaded = loaded_models["tiny-internvl"]
    images, tiles = pano_images
    inputs = loaded.processor(images, "Describe the room.")
    forward = loaded.model.forward

    @functools.wraps(forward)
    def drop_position_ids(*args, position_ids=None, **kwargs):  # a model that ignores the ids it is given
        return forward(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", drop_position_ids)
    levels = {
        row["check"]: row["level"]
        for row in panorama_position_report(loaded, inputs, scheme_for(loaded.family, "shared", tiles))
    }
    assert levels["rotary_prefill"] == "error" and levels["rotary_decode"] == "error"


def test_report_stops_at_a_layout_mismatch(loaded_models, pano_images, scheme_for):
    loaded = loaded_models["tiny-gemma3"]
    images, tiles = pano_images
    inputs = loaded.processor(images[:3], "Describe the room.")
    report = panorama_position_report(loaded, inputs, scheme_for(loaded.family, "shared", tiles))
    assert report == [{"check": "image_runs", "level": "error", "detail": "3 image token runs for 5 images"}]
