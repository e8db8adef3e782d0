"""`run_checks`: one prefill plus cached decode steps through a loaded model, judged at the nine checkpoints of
every chosen layer and by the whole-model checks; `check_variants` does it for several PE variants;
`verbose_prefill` prints the same checkpoints during a real run (e.g. `infer` with SPATIALVLM_VERBOSE=1)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from spatialvlm_cli.check.capture import AttentionRecorder
from spatialvlm_cli.check.checkpoints import check_layer
from spatialvlm_cli.check.context import CheckContext
from spatialvlm_cli.check.model_checks import ModelRun, check_model, run_decode
from spatialvlm_cli.check.report import CheckpointPrinter
from spatialvlm_cli.check.results import CheckResult
from spatialvlm_cli.io import PointCloud
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.model.attention import AttentionCall
from spatialvlm_cli.model.loaded import LoadedModel
from spatialvlm_cli.pe import PESpec
from spatialvlm_cli.pe.spec import KEEP, Keep
from spatialvlm_cli.preprocess import prepare_point_cloud

if TYPE_CHECKING:
    from rich.console import Console

    from spatialvlm_cli.model.modeling import SpatialLMModel

VerbosePrinter = Callable[[AttentionCall, list[CheckResult]], None]

# `--VLM_PE all`: (variant, merge rule) pairs from the registry: stock 1-D RoPE, then every variant x rule.
ALL_VARIANTS: tuple[tuple[str, str | None], ...] = tuple(
    (spec.name, None if spec.is_stock else spec.merge_rule) for spec in PESpec.every_variant())


def mode_label(model: SpatialLMModel) -> str:
    """"None", or "<variant>/<merge rule>" of the PE `model` runs."""
    return model.config.pe_spec.label


def run_checks(loaded: LoadedModel, inputs: dict[str, Tensor | list[Tensor]], layers: Sequence[int] | None = None,
               verbose_printer: VerbosePrinter | None = None, decode_steps: int = 1) -> list[CheckResult]:
    """Check one loaded model (`spatialvlm_cli.model.load_spatiallm(...)`) on processor inputs.

    inputs: the processor's output for ONE point cloud (input_ids (1, S), attention_mask (1, S), point_clouds),
    on the model's device. layers: attention layers to judge (None: all). verbose_printer: called with each layer's
    capture and its nine results as they are produced. decode_steps: cached greedy steps after the prefill (>= 1).
    Returns the nine checkpoint results per layer, then the whole-model results."""
    model = loaded.model
    context = CheckContext(model, mode_label(model), input_ids=inputs["input_ids"],
                           expected_point_counts=loaded.processor.num_point_tokens(list(inputs["point_clouds"])))
    results: list[CheckResult] = []
    prefill: list[AttentionCall] = []
    decode: list[AttentionCall] = []

    def judge(capture: AttentionCall) -> None:
        if not capture.is_prefill:
            decode.append(capture)
            return
        prefill.append(_light(capture))
        layer_results = check_layer(capture, context)
        results.extend(layer_results)
        if verbose_printer is not None:
            verbose_printer(capture, layer_results)

    embeds: dict[str, Tensor] = {}

    def keep_embeds(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if "prefill" not in embeds and kwargs.get("inputs_embeds") is not None:
            embeds["prefill"] = kwargs["inputs_embeds"].detach()

    handle = model.model.register_forward_pre_hook(keep_embeds, with_kwargs=True)
    try:
        with torch.no_grad(), AttentionRecorder(model, judge, layers):
            out = model(**inputs, use_cache=True)
            record = run_decode(model, inputs, out, max(1, decode_steps))
    finally:
        handle.remove()
    record.captures = [_light(capture) for capture in decode]
    return results + check_model(ModelRun(context, inputs, embeds.get("prefill"), prefill, record))


def _light(capture: AttentionCall) -> AttentionCall:
    """Drop the big tensors a whole-model check does not need (q, k, v of long prefill sequences stay small)."""
    return AttentionCall(capture.layer, capture.hidden_states[:, :0], capture.q[..., :0], capture.k[:, :, :0], None,
                        capture.cos, capture.sin, capture.q_rot[:, :, :0], capture.k_rot[:, :, :0],
                        capture.positions, capture.past_length, None)


def check_variants(spec: str, cloud: PointCloud,
                   variants: Sequence[tuple[str | Keep | None, str | Keep | None]] | None = None,
                   layers: Sequence[int] | None = None, device: str = "cpu", dtype: str = "auto",
                   pe_options: dict[str, Any] | None = None, verbose_printer: VerbosePrinter | None = None,
                   decode_steps: int = 1, on_mode: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Load `spec` once per (variant, merge rule) and check it on `cloud` (metres; preprocessed as `infer` does).
    variants: None = the checkpoint's own PE (KEEP). pe_options apply to every variant."""
    results: list[CheckResult] = []
    rows_by_bins: dict[int, Tensor] = {}
    for vlm_pe, merge_rule in variants if variants is not None else ((KEEP, KEEP),):
        loaded = load_spatiallm(spec, device=device, dtype=dtype, vlm_pe=vlm_pe, merge_rule=merge_rule,
                                pe_options=pe_options or None)
        if on_mode is not None:
            on_mode(mode_label(loaded.model))
        if loaded.num_bins not in rows_by_bins:
            rows_by_bins[loaded.num_bins] = torch.from_numpy(prepare_point_cloud(cloud, loaded.num_bins).rows)
        inputs = loaded.processor([rows_by_bins[loaded.num_bins]])
        inputs = {key: [v.to(loaded.model.device) for v in value] if isinstance(value, list)
                  else value.to(loaded.model.device) for key, value in inputs.items()}
        results += run_checks(loaded, inputs, layers, verbose_printer, decode_steps)
    return results


@contextlib.contextmanager
def verbose_prefill(model: SpatialLMModel, console: Console,
                    layers: Sequence[int] | None = None) -> Iterator[list[CheckResult]]:
    """Print the nine checkpoints of every layer during the prefills run inside the block (any thread, e.g.
    generate() in `stream_generate`'s worker) with their verdicts, to the rich `console`. Yields the list the
    results are collected in. Wrap it only when asked for: outside the block the model carries no hook."""
    printer = CheckpointPrinter(console)
    results: list[CheckResult] = []
    ids: dict[int, Tensor] = {}
    lock = threading.Lock()

    def keep_ids(module: nn.Module, args: tuple, kwargs: dict) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if kwargs.get("point_clouds") is not None and input_ids is not None:
            ids[threading.get_ident()] = input_ids

    def judge(capture: AttentionCall) -> None:
        if not capture.is_prefill:
            return
        context = CheckContext(model, mode_label(model), input_ids=ids.get(threading.get_ident()))
        layer_results = check_layer(capture, context)
        with lock:
            results.extend(layer_results)
            printer(capture, layer_results)

    handle = model.register_forward_pre_hook(keep_ids, with_kwargs=True)
    try:
        with AttentionRecorder(model, judge, layers):
            yield results
    finally:
        handle.remove()
