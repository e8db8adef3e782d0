"""Position facts of a loaded panorama VLM on real inputs, which `spatialvlm check` judges (`check/panorama.py`).

`panorama_position_report` runs `generate()` greedily for a few tokens (the inference path: prefill, then cached
decode steps), then one uncached forward over the whole sequence, and measures: the prompt's image runs against the
view layout; whether text after the image and decoded tokens reuse image ids; how many rotary-embedding calls at
prefill and at every decode step saw the scheme's ids; the lengths of prompt ids, mask, position ids and cache; the
largest difference between cached and recomputed logits. It measures only: the verdicts are the check's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from spatialvlm_cli.panorama.models import LoadedPanoramaModel
from spatialvlm_cli.panorama.position_ids import PanoramaPositions, record_rotary_positions
from spatialvlm_cli.panorama.positions import PositionScheme, image_runs, summarize_positions
from spatialvlm_cli.transformers_seam import output_cache


@dataclass(frozen=True)
class PanoramaRunFacts:
    """What one generate() plus one uncached forward showed.

    collisions: text tokens after the image whose id is not above every image id; next_position, max_position: the
    first decoded id and the largest prompt id; next_after_images: the first decoded id is above every image id;
    ids_shape: shape of the scheme's rotary ids; calls_per_forward: rotary calls per forward (0 when the calls do not
    split evenly over the forwards); prefill_matching: prefill calls that saw the scheme's ids; decode_steps: cached
    steps after the prefill; decode_calls, decode_matching: rotary calls of those steps, and those that saw the last
    prompt id + step on every axis; prompt_length, mask_length, position_ids_length: of the prompt; cache_length:
    tokens in the cache after the last step; logit_difference: max |cached - recomputed logit| over all new tokens;
    logit_scale: max |cached logit|; dtype: the model's, e.g. 'torch.float32'."""

    collisions: int
    next_position: int
    max_position: int
    next_after_images: bool
    ids_shape: tuple[int, ...]
    calls_per_forward: int
    prefill_matching: int
    decode_steps: int
    decode_calls: int
    decode_matching: int
    prompt_length: int
    mask_length: int
    position_ids_length: int
    cache_length: int
    logit_difference: float
    logit_scale: float
    dtype: str


@dataclass(frozen=True)
class PanoramaPositionFacts:
    """scheme: the ids checked; image_runs: image token runs in the prompt; run: None when they do not match the
    scheme's images (no ids can be computed for such a prompt), else what generate() showed."""

    scheme: PositionScheme
    image_runs: int
    run: PanoramaRunFacts | None


def panorama_position_report(
    loaded: LoadedPanoramaModel, inputs: dict[str, Any], scheme: PositionScheme, decode_steps: int = 2
) -> PanoramaPositionFacts:
    """Measure how `scheme`'s ids reach `loaded.model` for one prompt.

    inputs: the processor's output for one sequence (batch 1), already on the model's device. scheme: the ids to
    check (vlm_pe None: the model's native ids, which are then computed by us and compared with what transformers
    feeds the rotary embedding)."""
    model = loaded.model
    positions = PanoramaPositions(model, loaded.family, scheme, loaded.processor.image_token_id)
    ids = inputs["input_ids"]
    is_image = (ids[0] == loaded.processor.image_token_id).cpu().numpy()
    runs = len(image_runs(is_image))
    if runs != len(scheme.tile_of_image):
        return PanoramaPositionFacts(scheme, runs, None)
    expected = positions.for_inputs(inputs)
    rotary_expected = loaded.family.rotary_rows(expected)
    summary = summarize_positions(rotary_expected[..., 0, :].cpu().numpy(), is_image, scheme.tile_of_image)
    length = ids.shape[1]
    steps = decode_steps + 1  # new tokens: one from the prefill, then `decode_steps` cached steps
    # A scheme's ids go in explicitly; native ids (vlm_pe None) are left to transformers and compared with ours.
    explicit = {} if scheme.vlm_pe is None else {"position_ids": expected}
    with torch.no_grad():
        with record_rotary_positions(model) as calls:
            out = model.generate(
                **inputs,
                **explicit,
                max_new_tokens=steps,
                min_new_tokens=steps,
                do_sample=False,
                return_dict_in_generate=True,
                output_logits=True,
            )
        tokens = out.sequences[:, length:]
        grown = _extended(inputs, tokens[:, :-1])
        if explicit:
            grown["position_ids"] = positions.for_inputs(grown)
        full = model(**grown, use_cache=False).logits
    # Gemma3 builds one (cos, sin) table per layer type: several rotary calls per forward.
    per_forward = len(calls) // steps if len(calls) % steps == 0 else 0
    prefill_calls = calls[:per_forward]
    decode_calls = [
        (step, call) for step in range(1, steps) for call in calls[step * per_forward : (step + 1) * per_forward]
    ]
    last = rotary_expected[..., -1:]
    mask = inputs.get("attention_mask")
    cached = torch.stack(out.logits, dim=1).float()
    return PanoramaPositionFacts(
        scheme,
        runs,
        PanoramaRunFacts(
            collisions=int(summary["collisions"]),
            next_position=int(summary["next_position"]),
            max_position=int(summary["max_position"]),
            next_after_images=bool(summary.get("next_position_after_images", True)),
            ids_shape=tuple(rotary_expected.shape),
            calls_per_forward=per_forward,
            prefill_matching=sum(
                torch.equal(call["position_ids"].expand_as(rotary_expected), rotary_expected) for call in prefill_calls
            ),
            decode_steps=decode_steps,
            decode_calls=len(decode_calls),
            decode_matching=sum(torch.equal(call["position_ids"], last + step) for step, call in decode_calls),
            prompt_length=length,
            mask_length=length if mask is None else int(mask.shape[-1]),
            position_ids_length=int(expected.shape[-1]),
            cache_length=int(output_cache(out).get_seq_length()),
            logit_difference=float((full[:, length - 1 :].float() - cached).abs().max()),
            logit_scale=float(cached.abs().max()),
            dtype=str(model.dtype),
        ),
    )


def _extended(inputs: dict[str, Any], tokens: Any) -> dict[str, Any]:
    """The prompt plus decoded tokens as one uncached forward sees them (token-type rows padded with text)."""
    grown = dict(inputs)
    grown["input_ids"] = torch.cat([inputs["input_ids"], tokens], dim=1)
    grown["attention_mask"] = torch.ones_like(grown["input_ids"])
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in inputs:
            grown[key] = torch.cat([inputs[key], torch.zeros_like(tokens, dtype=inputs[key].dtype)], dim=1)
    return grown
