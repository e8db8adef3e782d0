"""Whole-model checks of `spatialvlm check`: the point embeddings the decoder receives (and 3D_Sinusoidal's
addition), prefill vs decode detection, KV-cache length == attention-mask length at every decode step, and cached
decoding == a full recomputation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from spatialvlm_cli.check.context import CheckContext, half_tables, sample, tolerance
from spatialvlm_cli.check.results import CheckResult
from spatialvlm_cli.model.attention import AttentionCall
from spatialvlm_cli.pe.positions import sequential_position_ids
from spatialvlm_cli.pe.reference import reference_normalize, reference_sinusoid
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache


def extend_attention_mask(attention_mask: Tensor) -> Tensor:
    """(B, L) -> (B, L + 1): the mask of a decode step appends a 1 for the token being fed."""
    return torch.cat((attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)), dim=1)


@dataclass
class DecodeStep:
    """One cached decode step: the mask and position it was given, the cache length after it, its logits (B, V)."""

    mask_length: int
    position: int
    past_before: int
    cache_after: int
    logits: Tensor
    token: Tensor


@dataclass
class DecodeRecord:
    prefill_cache: int
    prefill_mask: int
    steps: list[DecodeStep] = field(default_factory=list)
    captures: list[AttentionCall] = field(default_factory=list)


def run_decode(model: Any, inputs: dict[str, Any], prefill: Any, steps: int) -> DecodeRecord:
    """Greedy cached decode steps after `prefill` (the prefill's output); plain forwards, as generate() makes them."""
    cache = output_cache(prefill)
    mask = inputs["attention_mask"]
    record = DecodeRecord(prefill_cache=int(cache.get_seq_length()), prefill_mask=int(mask.shape[1]))
    logits = prefill.logits[:, -1]
    for _ in range(steps):
        token = logits.argmax(-1, keepdim=True)
        mask = extend_attention_mask(mask)
        position_ids = sequential_position_ids(mask.shape, mask)[:, -1:]
        past = int(cache.get_seq_length())
        with torch.no_grad():
            out = model(input_ids=token, attention_mask=mask, position_ids=position_ids, use_cache=True,
                        **{CACHE_ARGUMENT: cache})
        logits = out.logits[:, -1]
        record.steps.append(DecodeStep(int(mask.shape[1]), int(position_ids[0, 0]), past,
                                       int(cache.get_seq_length()), logits, token))
    return record


def cache_mask_check(context: CheckContext, record: DecodeRecord) -> CheckResult:
    problems = []
    if record.prefill_cache != record.prefill_mask:
        problems.append(f"prefill: attention mask has {record.prefill_mask} columns but the KV cache holds "
                        f"{record.prefill_cache} positions")
    for number, step in enumerate(record.steps, 1):
        if step.mask_length != step.cache_after:
            how = "not extended for the new token" if step.mask_length < step.cache_after else "too long"
            problems.append(f"decode step {number}: attention mask has {step.mask_length} columns but the KV cache "
                            f"holds {step.cache_after} positions (mask {how})")
        if step.position != step.cache_after - 1:
            problems.append(f"decode step {number}: position id {step.position} but the token is cache entry "
                            f"{step.cache_after - 1}")
    lengths = ", ".join(f"{s.mask_length}=={s.cache_after}" for s in record.steps)
    detail = (f"prefill {record.prefill_mask}=={record.prefill_cache}; {len(record.steps)} decode step(s): "
              f"mask==cache {lengths}; positions continue at cache length")
    return CheckResult(context.mode, None, None, "cache length == mask length", not problems,
                       "; ".join(problems) or detail)


def detection_check(context: CheckContext, prefill: list[AttentionCall], record: DecodeRecord) -> CheckResult:
    problems = []
    if not prefill:
        problems.append("no prefill attention call was seen with point positions active (prefill not detected)")
    for capture in prefill:
        if capture.past_length != 0:
            problems.append(f"layer {capture.layer}: prefill found {capture.past_length} cached positions")
    positions = {step.past_before: step.position for step in record.steps}
    for capture in record.captures:
        if capture.positions is not None:
            problems.append(f"layer {capture.layer}: a decode step ran with point positions active (it was taken "
                            f"for a prefill)")
            continue
        position = positions.get(capture.past_length)
        if capture.q.shape[2] != 1 or position is None:
            problems.append(f"layer {capture.layer}: decode call of {capture.q.shape[2]} tokens after "
                            f"{capture.past_length} cached positions")
            continue
        q_half, _ = half_tables(capture.cos, context.pe.lm_shape.head_dim)
        expected = context.stock_angles(torch.tensor([[position]])).cos()[:, None] * context.attention_scaling
        error = float((q_half - expected).abs().max())
        if error > tolerance(capture.q.dtype):
            problems.append(f"layer {capture.layer}: decode table at position {position} differs from the stock "
                            f"1-D table by {error:.2e}")
    layers = sorted({capture.layer for capture in prefill})
    detail = (f"prefill: point positions active in layers {layers}, empty cache; {len(record.captures)} decode "
              f"call(s): 1 token, cache > 0, no point positions, stock 1-D table")
    return CheckResult(context.mode, None, None, "prefill vs decode detection", not problems,
                       "; ".join(problems) or detail)


def recompute_check(context: CheckContext, inputs: dict[str, Any], record: DecodeRecord) -> CheckResult:
    """The last decode step's logits == a forward over prompt + generated tokens without a cache."""
    model = context.model
    if not record.steps:
        return CheckResult(context.mode, None, None, "cached decode == recomputation", True, "no decode step run")
    tokens = torch.cat([step.token for step in record.steps[:-1]] + [record.steps[-1].token], dim=1)
    ids = torch.cat((inputs["input_ids"], tokens), dim=1)
    mask = torch.cat((inputs["attention_mask"], torch.ones_like(tokens)), dim=1)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, point_clouds=inputs["point_clouds"], use_cache=False)
    expected = full.logits[:, -1].double()
    observed = record.steps[-1].logits.double()
    error = float((observed - expected).abs().max() / expected.abs().max().clamp_min(1e-6))
    tol = tolerance(record.steps[-1].logits.dtype) * 10
    detail = (f"{len(record.steps)} cached step(s) vs one uncached forward of {ids.shape[1]} tokens: max rel "
              f"logit difference {error:.1e}")
    if error > tol:
        detail = (f"cached decoding differs from the full recomputation by {error:.2e} (relative; tolerance "
                  f"{tol:.0e}): cache, mask or decode positions are inconsistent")
    return CheckResult(context.mode, None, None, "cached decode == recomputation", error <= tol, detail)


def embedding_check(context: CheckContext, inputs: dict[str, Any], embeds: Tensor | None,
                    capture: AttentionCall | None) -> CheckResult:
    """Point rows of the decoder input == projected encoder tokens (+ the reference sinusoid for 3D_Sinusoidal);
    text rows == the token embeddings."""
    model, pe = context.model, context.pe
    name = "point embeddings" + (" (3D_Sinusoidal addition)" if pe.name == "3D_Sinusoidal" else "")
    if embeds is None or capture is None or capture.positions is None:
        return CheckResult(context.mode, None, None, name, False, "the decoder's prefill input was not seen")
    positions = capture.positions
    mask = positions.point_mask
    with torch.no_grad():
        features, _, _ = model.encode_point_clouds(inputs["point_clouds"], embeds.dtype)
        text = model.get_input_embeddings()(inputs["input_ids"].to(embeds.device))
    tol = tolerance(embeds.dtype)
    scale = float(embeds.abs().max().clamp_min(1e-6))
    text_error = float((embeds[~mask] - text[~mask]).abs().max()) / scale
    point_rows = embeds[mask].double()
    added = "no addition"
    if pe.name == "3D_Sinusoidal":
        rows = sample(torch.nonzero(mask[0]).flatten().cpu())
        units = torch.tensor([reference_normalize(coords, row_mask, pe.options.coord_unit) for coords, row_mask in
                              zip(positions.point_coords.tolist(), mask.tolist(), strict=True)], dtype=torch.float64)
        sinusoid = reference_sinusoid(pe, positions.position_ids[:, rows].cpu(), mask[:, rows].cpu(), units[:, rows])
        observed = embeds[:, rows].double().cpu() - features.double().cpu()[rows - _first(mask)][None]
        point_error = float((observed - sinusoid.double()).abs().max()) / max(float(sinusoid.abs().max()), 1e-6)
        added = f"point rows - encoder tokens == reference sinusoid ({len(rows)} rows, max rel {point_error:.1e})"
    else:
        point_error = float((point_rows.cpu() - features.double().cpu()).abs().max()) / scale
    passed = max(text_error, point_error) <= tol
    detail = (f"{int(mask.sum())} point rows == projected encoder tokens, {added}; text rows == token embeddings "
              f"(max rel {text_error:.1e})")
    if not passed:
        detail = (f"decoder input differs: point rows by {point_error:.2e}, text rows by {text_error:.2e} "
                  f"(tolerance {tol:.0e})")
    return CheckResult(context.mode, None, None, name, passed, detail)


def _first(mask: Tensor) -> int:
    """Index of the first point token of sequence 0."""
    return int(torch.nonzero(mask[0]).flatten()[0])
