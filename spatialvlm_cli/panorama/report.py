"""Position facts of a loaded panorama VLM on real inputs, for `spatialvlm check --verbose`.

`panorama_position_report` runs `generate()` greedily for a few tokens (the inference path: prefill, then cached
decode steps), then one uncached forward over the whole sequence, and returns one dict per check:
{'check': name, 'level': 'ok' | 'warning' | 'error', 'detail': one line}. Checks: the prompt's image runs match
the view layout; text after the image and decoded tokens do not reuse image ids; the ids reaching the rotary
embedding at prefill and at every decode step are the scheme's; prompt ids, mask and position ids have one length
and the cache holds prompt + decoded tokens; cached logits equal a full recomputation.
"""

from __future__ import annotations

from typing import Any

from spatialvlm_cli.panorama.models import LoadedPanoramaModel
from spatialvlm_cli.panorama.position_ids import PanoramaPositions, record_rotary_positions
from spatialvlm_cli.panorama.positions import PositionScheme, image_runs, summarize_positions


def _result(check: str, ok: bool, detail: str, failure: str = "error") -> dict[str, str]:
    return {"check": check, "level": "ok" if ok else failure, "detail": detail}


def panorama_position_report(
    loaded: LoadedPanoramaModel, inputs: dict[str, Any], scheme: PositionScheme, decode_steps: int = 2
) -> list[dict[str, str]]:
    """Check how `scheme`'s ids reach `loaded.model` for one prompt.

    inputs: the processor's output for one sequence (batch 1), already on the model's device. scheme: the ids to
    check (vlm_pe None: the model's native ids, which are then computed by us and compared with what transformers
    feeds the rotary embedding)."""
    import torch

    from spatialvlm_cli.transformers_seam import output_cache

    model = loaded.model
    positions = PanoramaPositions(model, loaded.family, scheme, loaded.processor.image_token_id)
    ids = inputs["input_ids"]
    is_image = (ids[0] == loaded.processor.image_token_id).cpu().numpy()
    runs = image_runs(is_image)
    results = [
        _result(
            "image_runs",
            len(runs) == len(scheme.tile_of_image),
            f"{len(runs)} image token runs for {len(scheme.tile_of_image)} images",
        )
    ]
    if results[0]["level"] != "ok":
        return results  # no ids can be computed for a prompt that does not match its layout
    expected = positions.for_inputs(inputs)
    rotary_expected = loaded.family.rotary_rows(expected)
    summary = summarize_positions(rotary_expected[..., 0, :].cpu().numpy(), is_image, scheme.tile_of_image)
    collide_level = "warning" if scheme.mode == "cora" and scheme.vlm_pe is not None else "error"
    results.append(
        _result(
            "text_image_collisions",
            summary["collisions"] == 0 and summary.get("next_position_after_images", True),
            f"{summary['collisions']} text tokens after the image reuse image ids; first decoded id "
            f"{summary['next_position']}, largest id {summary['max_position']}",
            collide_level,
        )
    )
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
    decode_calls = [calls[step * per_forward : (step + 1) * per_forward] for step in range(1, steps)]
    prefill_ok = bool(prefill_calls) and all(
        torch.equal(call["position_ids"].expand_as(rotary_expected), rotary_expected) for call in prefill_calls
    )
    results.append(
        _result(
            "rotary_prefill",
            prefill_ok,
            f"{len(prefill_calls)} rotary call(s) saw the scheme's {tuple(rotary_expected.shape)} ids"
            if prefill_ok
            else "the rotary embedding saw other ids than the scheme's at prefill",
        )
    )
    last = rotary_expected[..., -1:]
    decode_ok = all(
        bool(step_calls) and all(torch.equal(call["position_ids"], last + step) for call in step_calls)
        for step, step_calls in enumerate(decode_calls, start=1)
    )
    results.append(
        _result(
            "rotary_decode",
            decode_ok,
            f"{decode_steps} decode step(s) continue at last id + 1 on every axis"
            if decode_ok
            else "decode steps did not continue at the last prompt id + 1",
        )
    )
    cache_length = output_cache(out).get_seq_length()
    mask = inputs.get("attention_mask")
    mask_length = length if mask is None else int(mask.shape[-1])
    lengths_ok = cache_length == length + decode_steps and mask_length == length == expected.shape[-1]
    results.append(
        _result(
            "cache_mask_lengths",
            lengths_ok,
            f"prompt: {length} ids, {mask_length} mask entries, {expected.shape[-1]} position ids; the cache holds "
            f"{cache_length} tokens after {decode_steps} decode step(s)",
        )
    )
    recomputed = full[:, length - 1 :]
    cached = torch.stack(out.logits, dim=1)
    diff = float((recomputed.float() - cached.float()).abs().max())
    scale = float(cached.float().abs().max()) or 1.0
    tolerance = 1e-4 if model.dtype == torch.float32 else 2e-2  # relative to the largest logit
    results.append(
        _result(
            "cache_equals_recompute",
            diff <= tolerance * scale,
            f"max |cached - recomputed logit| {diff:.3g} over {steps} steps (model in {model.dtype})",
        )
    )
    return results


def _extended(inputs: dict[str, Any], tokens: Any) -> dict[str, Any]:
    """The prompt plus decoded tokens as one uncached forward sees them (token-type rows padded with text)."""
    import torch

    grown = dict(inputs)
    grown["input_ids"] = torch.cat([inputs["input_ids"], tokens], dim=1)
    grown["attention_mask"] = torch.ones_like(grown["input_ids"])
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in inputs:
            grown[key] = torch.cat([inputs[key], torch.zeros_like(tokens, dtype=inputs[key].dtype)], dim=1)
    return grown
