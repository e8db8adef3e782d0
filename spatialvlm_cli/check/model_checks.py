"""Whole-model checks of `spatialvlm check`, a table of invariants of one prefill plus cached decode steps: the
point embeddings the decoder receives (and 3D_Sinusoidal's addition), prefill vs decode detection, KV-cache length
== attention-mask length at every step, and cached decoding == a full recomputation."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from spatialvlm_cli.check.context import CheckContext, half_tables, relative_error, sample, tolerance
from spatialvlm_cli.check.results import Check, CheckResult, Invariant, Measurement
from spatialvlm_cli.model.attention import AttentionCall
from spatialvlm_cli.pe.positions import sequential_position_ids
from spatialvlm_cli.pe.reference import reference_normalize, reference_sinusoid
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache

if TYPE_CHECKING:
    from transformers.modeling_outputs import CausalLMOutputWithPast

    from spatialvlm_cli.model.modeling import SpatialLMModel


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
    """prefill_cache, prefill_mask: cache length and mask columns after the prefill; steps: the decode steps after
    it; captures: their attention calls (big tensors dropped)."""

    prefill_cache: int
    prefill_mask: int
    steps: list[DecodeStep] = field(default_factory=list)
    captures: list[AttentionCall] = field(default_factory=list)


def run_decode(model: SpatialLMModel, inputs: dict[str, Tensor | list[Tensor]], prefill: CausalLMOutputWithPast,
               steps: int) -> DecodeRecord:
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


@dataclass
class ModelRun:
    """What the whole-model checks look at: context; inputs the processor's output (batch 1); embeds (1, S, C) the
    decoder's prefill input (None when not seen); prefill the prefill attention calls of the chosen layers (their
    big tensors dropped); record the cached decode steps after it, with their attention calls."""

    context: CheckContext
    inputs: dict[str, Tensor | list[Tensor]]
    embeds: Tensor | None
    prefill: list[AttentionCall]
    record: DecodeRecord

    @property
    def seen(self) -> bool:
        """The decoder's prefill input and a prefill attention call with point positions were both observed."""
        return self.embeds is not None and bool(self.prefill) and self.prefill[0].positions is not None

    @cached_property
    def point_mask(self) -> Tensor:
        """(1, S) bool: the point tokens of the prefill."""
        positions = self.prefill[0].positions
        assert positions is not None
        return positions.point_mask

    @cached_property
    def encoder_tokens(self) -> Tensor:
        """(N, C) float64 CPU: the projected encoder tokens of the point cloud, in the decoder's dtype."""
        assert self.embeds is not None
        with torch.no_grad():
            features, _, _ = self.context.model.encode_point_clouds(self.inputs["point_clouds"], self.embeds.dtype)
        return features.double().cpu()

    @property
    def scale(self) -> float:
        """Largest |value| of the decoder's input: the scale of its relative errors."""
        assert self.embeds is not None
        return float(self.embeds.abs().max().clamp_min(1e-6))


# -- point embeddings --------------------------------------------------------------------------------------------------
def decoder_input_seen(run: ModelRun) -> Measurement:
    return Measurement(run.seen, {"layers": len(run.prefill)})


def text_rows_are_token_embeddings(run: ModelRun) -> Measurement | None:
    if not run.seen:
        return None
    assert run.embeds is not None
    with torch.no_grad():
        text = run.context.model.get_input_embeddings()(run.inputs["input_ids"].to(run.embeds.device))
    mask = run.point_mask
    error = float((run.embeds[~mask] - text[~mask]).abs().max()) / run.scale
    return Measurement(error <= tolerance(run.embeds.dtype), {"error": error})


def point_rows_are_encoder_tokens(run: ModelRun) -> Measurement | None:
    """Point rows of the decoder input == the projected encoder tokens (variants that add nothing to them)."""
    if not run.seen or run.context.pe.name == "3D_Sinusoidal":
        return None
    assert run.embeds is not None
    error = float((run.embeds[run.point_mask].double().cpu() - run.encoder_tokens).abs().max()) / run.scale
    return Measurement(error <= tolerance(run.embeds.dtype), {"error": error, "rows": int(run.point_mask.sum())})


def point_rows_add_reference_sinusoid(run: ModelRun) -> Measurement | None:
    """3D_Sinusoidal: point rows - encoder tokens == the pure-Python sinusoid of their coordinates (sampled rows)."""
    if not run.seen or run.context.pe.name != "3D_Sinusoidal":
        return None
    assert run.embeds is not None
    pe, positions, mask = run.context.pe, run.prefill[0].positions, run.point_mask
    assert positions is not None
    rows = sample(torch.nonzero(mask[0]).flatten().cpu())
    units = torch.tensor([reference_normalize(coords, row_mask, pe.options.coord_unit) for coords, row_mask in
                          zip(positions.point_coords.tolist(), mask.tolist(), strict=True)], dtype=torch.float64)
    sinusoid = reference_sinusoid(pe, positions.position_ids[:, rows].cpu(), mask[:, rows].cpu(), units[:, rows])
    first = int(torch.nonzero(mask[0]).flatten()[0])
    added = run.embeds[:, rows].double().cpu() - run.encoder_tokens[rows - first][None]
    error = float((added - sinusoid.double()).abs().max()) / max(float(sinusoid.abs().max()), 1e-6)
    return Measurement(error <= tolerance(run.embeds.dtype), {"error": error, "rows": len(rows),
                                                              "points": int(mask.sum())})


# -- prefill vs decode detection ---------------------------------------------------------------------------------------
def prefill_starts_empty_cache(run: ModelRun) -> Measurement:
    """A prefill call with point positions was seen in every chosen layer, each with an empty cache."""
    cached = [call.layer for call in run.prefill if call.past_length != 0]
    return Measurement(bool(run.prefill) and not cached,
                       {"layers": sorted({call.layer for call in run.prefill}), "cached": cached})


def decode_calls_are_stock_single_tokens(run: ModelRun) -> Measurement:
    """Every decode call: no point positions (not taken for a prefill), one token at a decoded position, and the
    stock 1-D table at that position."""
    context = run.context
    positions = {step.past_before: step.position for step in run.record.steps}
    as_prefill, misplaced, off_table, error = 0, 0, 0, 0.0
    for call in run.record.captures:
        position = positions.get(call.past_length)
        if call.positions is not None:
            as_prefill += 1
        elif call.q.shape[2] != 1 or position is None:
            misplaced += 1
        else:
            q_cos, _ = half_tables(call.cos, context.pe.lm_shape.head_dim)
            expected = context.stock_angles(torch.tensor([[position]])).cos()[:, None] * context.attention_scaling
            call_error = float((q_cos - expected).abs().max())
            off_table += call_error > tolerance(call.q.dtype)
            error = max(error, call_error)
    return Measurement(not as_prefill and not misplaced and not off_table,
                       {"calls": len(run.record.captures), "as_prefill": as_prefill, "misplaced": misplaced,
                        "off_table": off_table, "error": error})


# -- cache length == mask length -------------------------------------------------------------------------------------
def _forwards(record: DecodeRecord) -> list[tuple[int, int, int]]:
    """(forward number, mask columns, cache length after it): 0 is the prefill, then the decode steps."""
    return [(0, record.prefill_mask, record.prefill_cache),
            *((number, step.mask_length, step.cache_after) for number, step in enumerate(record.steps, 1))]


def mask_length_equals_cache_length(run: ModelRun) -> Measurement:
    forwards = _forwards(run.record)
    bad = [(number, mask, cache) for number, mask, cache in forwards if mask != cache]
    forward, mask, cache = bad[0] if bad else forwards[-1]
    return Measurement(not bad, {"forward": forward, "mask": mask, "cache": cache, "bad": len(bad),
                                 "steps": len(run.record.steps), "lengths": [m for _, m, _ in forwards]})


def decode_positions_continue_at_cache_length(run: ModelRun) -> Measurement:
    bad = [(number, step.position, step.cache_after - 1) for number, step in enumerate(run.record.steps, 1)
           if step.position != step.cache_after - 1]
    step, position, entry = bad[0] if bad else (0, 0, 0)
    return Measurement(not bad, {"step": step, "position": position, "entry": entry})


# -- cached decode == recomputation ----------------------------------------------------------------------------------
def cached_decode_equals_recompute(run: ModelRun) -> Measurement | None:
    """The last decode step's logits == a forward over prompt + generated tokens without a cache."""
    steps, inputs = run.record.steps, run.inputs
    if not steps:
        return None
    tokens = torch.cat([step.token for step in steps], dim=1)
    ids = torch.cat((inputs["input_ids"], tokens), dim=1)
    mask = torch.cat((inputs["attention_mask"], torch.ones_like(tokens)), dim=1)
    with torch.no_grad():
        full = run.context.model(input_ids=ids, attention_mask=mask, point_clouds=inputs["point_clouds"],
                                 use_cache=False)
    error = relative_error(steps[-1].logits, full.logits[:, -1])
    tol = tolerance(steps[-1].logits.dtype) * 10
    return Measurement(error <= tol, {"error": error, "steps": len(steps), "tokens": ids.shape[1],
                                      "tolerance": tol})


POINT_EMBEDDINGS = "point embeddings"
MODEL_CHECKS: tuple[Check[ModelRun], ...] = (
    Check(None, POINT_EMBEDDINGS, (
        Invariant(decoder_input_seen, "decoder input seen", "the decoder's prefill input was not seen"),
        Invariant(point_rows_are_encoder_tokens, "{rows} point rows == projected encoder tokens (max rel "
                  "{error:.1e})", "point rows of the decoder input differ from the projected encoder tokens by "
                  "{error:.2e}"),
        Invariant(point_rows_add_reference_sinusoid, "{points} point rows - encoder tokens == reference sinusoid "
                  "({rows} rows, max rel {error:.1e})", "point rows - encoder tokens differ from the reference "
                  "sinusoid by {error:.2e}"),
        Invariant(text_rows_are_token_embeddings, "text rows == token embeddings (max rel {error:.1e})",
                  "text rows of the decoder input differ from the token embeddings by {error:.2e}"))),
    Check(None, "prefill vs decode detection", (
        Invariant(prefill_starts_empty_cache, "prefill: point positions active in layers {layers}, empty cache",
                  "prefill not detected: point positions seen in layers {layers}, with cached positions in "
                  "layers {cached}"),
        Invariant(decode_calls_are_stock_single_tokens, "{calls} decode call(s): 1 token, cache > 0, no point "
                  "positions, stock 1-D table",
                  "of {calls} decode call(s), {as_prefill} ran with point positions active (taken for a prefill), "
                  "{misplaced} were not 1 token after the cache, {off_table} differ from the stock 1-D table (by up "
                  "to {error:.2e})"))),
    Check(None, "cache length == mask length", (
        Invariant(mask_length_equals_cache_length, "mask columns == cache length after the prefill and {steps} "
                  "decode step(s): {lengths}",
                  "forward {forward} (0: prefill): attention mask has {mask} columns but the KV cache holds "
                  "{cache} positions (a shorter mask was not extended for the new token; {bad} forward(s) off)"),
        Invariant(decode_positions_continue_at_cache_length, "positions continue at cache length",
                  "decode step {step}: position id {position} but the token is cache entry {entry}"))),
    Check(None, "cached decode == recomputation", (
        Invariant(cached_decode_equals_recompute, "{steps} cached step(s) vs one uncached forward of {tokens} "
                  "tokens: max rel logit difference {error:.1e}",
                  "cached decoding differs from the full recomputation by {error:.2e} (relative; tolerance "
                  "{tolerance:.0e}): cache, mask or decode positions are inconsistent"),)),
)


def check_model(run: ModelRun) -> list[CheckResult]:
    """The whole-model verdicts of one run (layer and checkpoint number None)."""
    sinusoidal = run.context.pe.name == "3D_Sinusoidal"
    return [check.judge(run, run.context.mode, name=f"{check.name} (3D_Sinusoidal addition)"
                        if sinusoidal and check.name == POINT_EMBEDDINGS else None) for check in MODEL_CHECKS]
