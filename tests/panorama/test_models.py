"""Panorama ids on the four stock VLM families (tiny random models): native ids bit-identical to transformers,
ids reaching the rotary embedding in forward and generate, cached generation == full recomputation, Gemma3 masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.panorama.families import FAMILIES, check_vlm_pe
from spatialvlm_cli.panorama.position_ids import PanoramaPositions, continue_ids, record_rotary_positions
from spatialvlm_cli.panorama.positions import summarize_positions
from spatialvlm_cli.panorama.source import panorama_presets
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache

MODES = (None, "shared", "cora")


def inputs_for(loaded, images) -> dict:
    return loaded.processor(images, "Describe the room.")


def positions_for(loaded, scheme) -> PanoramaPositions:
    return PanoramaPositions(loaded.model, loaded.family, scheme, loaded.processor.image_token_id)


@pytest.mark.parametrize("name", list(panorama_presets()))
def test_native_ids_are_bit_identical_to_transformers(name, loaded_models, pano_images, scheme_for):
    loaded = loaded_models[name]
    images, tiles = pano_images
    inputs = inputs_for(loaded, images)
    positions = positions_for(loaded, scheme_for(loaded.family, None, tiles))
    ids = positions.for_inputs(inputs)
    with torch.no_grad():
        stock = loaded.model(**inputs).logits
        ours = loaded.model(**inputs, position_ids=ids).logits
    assert torch.equal(stock, ours)
    if loaded.family.rope == "1d":
        assert torch.equal(ids, torch.arange(inputs["input_ids"].shape[1])[None])
    else:
        reference, _ = loaded.model.model.get_rope_index(
            inputs["input_ids"],
            mm_token_type_ids=inputs["mm_token_type_ids"],
            image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"],
        )
        assert torch.equal(ids[1:], reference)


@pytest.mark.parametrize("mode", ["shared", "cora"])
@pytest.mark.parametrize("name", list(panorama_presets()))
def test_ids_reach_the_rotary_at_prefill_and_every_decode_step(name, mode, loaded_models, pano_images, scheme_for):
    loaded = loaded_models[name]
    images, tiles = pano_images
    inputs = inputs_for(loaded, images)
    positions = positions_for(loaded, scheme_for(loaded.family, mode, tiles))
    expected = positions.compute(inputs["input_ids"], inputs["attention_mask"], inputs.get("image_grid_thw"))
    rotary_rows = expected if loaded.family.rope == "1d" else expected[1:]
    assert not torch.equal(
        rotary_rows,
        positions_for(loaded, scheme_for(loaded.family, None, tiles)).compute(
            inputs["input_ids"], inputs["attention_mask"], inputs.get("image_grid_thw")
        )[-rotary_rows.shape[0] :],
    )
    per_forward = 2 if loaded.family.name == "gemma3" else 1  # Gemma3: one table per layer type
    with torch.no_grad(), record_rotary_positions(loaded.model) as calls:
        loaded.model(**inputs, position_ids=expected)
        assert len(calls) == per_forward
        assert all(torch.equal(call["position_ids"].expand_as(rotary_rows), rotary_rows) for call in calls)
        calls.clear()
        loaded.model.generate(**inputs, position_ids=expected, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert len(calls) == 3 * per_forward
    if per_forward == 2:
        assert {call["layer_type"] for call in calls} == {"sliding_attention", "full_attention"}
    prefill = [call["position_ids"] for call in calls[:per_forward]]
    for seen in prefill:
        assert torch.equal(seen.expand_as(rotary_rows), rotary_rows)
    last = rotary_rows[..., -1:]
    for step in (1, 2):
        for call in calls[step * per_forward : (step + 1) * per_forward]:
            assert torch.equal(call["position_ids"], last + step)


def _greedy_with_cache(model, inputs, position_ids, steps: int):
    out = model.generate(
        **inputs,
        position_ids=position_ids,
        max_new_tokens=steps,
        min_new_tokens=steps,
        do_sample=False,
        return_dict_in_generate=True,
        output_logits=True,
    )
    new = out.sequences[:, inputs["input_ids"].shape[1] :]
    return new, torch.stack(out.logits, dim=1)


def _extend(inputs: dict, tokens: torch.Tensor) -> dict:
    """The prompt plus generated tokens, as one uncached forward sees it."""
    grown = dict(inputs)
    grown["input_ids"] = torch.cat([inputs["input_ids"], tokens], dim=1)
    grown["attention_mask"] = torch.ones_like(grown["input_ids"])
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in inputs:
            grown[key] = torch.cat([inputs[key], torch.zeros_like(tokens, dtype=inputs[key].dtype)], dim=1)
    return grown


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(panorama_presets()))
def test_cached_generation_equals_full_recomputation(name, mode, loaded_models, pano_images, scheme_for):
    loaded = loaded_models[name]
    images, tiles = pano_images
    inputs = inputs_for(loaded, images)
    steps = 4
    positions = positions_for(loaded, scheme_for(loaded.family, mode, tiles))
    ids = positions.for_inputs(inputs)
    with torch.no_grad():
        tokens, cached_logits = _greedy_with_cache(loaded.model, inputs, ids, steps)
        grown = _extend(inputs, tokens[:, :-1])
        full = loaded.model(**grown, position_ids=positions.for_inputs(grown), use_cache=False).logits[:, -steps:]
        # A hand-written decode loop (no generate): appended tokens continue at last id + 1.
        out = loaded.model(**inputs, position_ids=ids, use_cache=True)
        manual = [out.logits[:, -1]]
        appended = continue_ids(ids, steps - 1)
        for step in range(steps - 1):
            out = loaded.model(input_ids=tokens[:, step : step + 1], position_ids=appended[..., step : step + 1],
                               **{CACHE_ARGUMENT: output_cache(out)})
            manual.append(out.logits[:, -1])
    assert torch.equal(full.argmax(-1), tokens)
    assert (full - cached_logits).abs().max() < 1e-4
    assert (torch.stack(manual, dim=1) - cached_logits).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["tiny-internvl", "tiny-qwen3-vl"])
def test_pano_ids_change_the_output_and_shared_has_no_collisions(name, loaded_models, pano_images, scheme_for):
    loaded = loaded_models[name]
    images, tiles = pano_images
    inputs = inputs_for(loaded, images)
    logits = {}
    for mode in MODES:
        positions = positions_for(loaded, scheme_for(loaded.family, mode, tiles))
        ids = positions.compute(inputs["input_ids"], inputs["attention_mask"], inputs.get("image_grid_thw"))
        is_image = (inputs["input_ids"][0] == loaded.processor.image_token_id).numpy()
        rows = ids[0] if loaded.family.rope == "1d" else ids[1:, 0]
        summary = summarize_positions(rows.numpy(), is_image, tiles)
        if mode == "shared":
            assert summary["collisions"] == 0 and summary["next_position_after_images"]
        if mode == "cora":
            assert summary["collisions"] > 0  # the published scheme leaves text on shifted image ids
        with torch.no_grad():
            logits[mode] = loaded.model(**inputs, position_ids=ids).logits
    assert not torch.allclose(logits[None], logits["shared"]) and not torch.allclose(logits[None], logits["cora"])


def test_gemma3_image_attention_stays_bidirectional_under_pano_ids(loaded_models, pano_images, scheme_for):
    loaded = loaded_models["tiny-gemma3"]
    images, tiles = pano_images
    inputs = inputs_for(loaded, images)
    model = loaded.model
    model.set_attn_implementation("eager")
    ids = positions_for(loaded, scheme_for(loaded.family, "shared", tiles)).for_inputs(inputs)
    try:
        with torch.no_grad():
            attentions = model(**inputs, position_ids=ids, output_attentions=True).attentions
            no_types = {k: v for k, v in inputs.items() if k != "token_type_ids"}
            causal = model(**no_types, position_ids=ids, output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")
    image = np.flatnonzero(inputs["token_type_ids"][0].numpy())
    first, last = image[0], image[3]  # the four tokens of the first image
    layer_types = model.config.text_config.layer_types
    assert "sliding_attention" in layer_types and inputs["input_ids"].shape[1] > model.config.text_config.sliding_window
    for layer, weights in enumerate(attentions):
        assert weights[0, :, first, last].min() > 0, layer_types[layer]  # image tokens see later image tokens
        assert causal[layer][0, :, first, last].max() == 0
        text_before = first - 1
        assert weights[0, :, text_before, first:].max() == 0  # text never sees the future


def test_vlm_pe_must_fit_the_family():
    check_vlm_pe(FAMILIES["internvl"], "PanoRoPE_1D")
    check_vlm_pe(FAMILIES["qwen3_vl"], "PanoRoPE")
    check_vlm_pe(FAMILIES["gemma3"], None)
    with pytest.raises(ConfigError, match="use --VLM_PE PanoRoPE or None"):
        check_vlm_pe(FAMILIES["qwen2_5_vl"], "PanoRoPE_1D")
    with pytest.raises(ConfigError, match="use --VLM_PE PanoRoPE_1D or None"):
        check_vlm_pe(FAMILIES["gemma3"], "PanoRoPE")
    with pytest.raises(ConfigError, match="point-cloud encoding"):
        check_vlm_pe(FAMILIES["internvl"], "3D_RoPE")
