"""`spatialvlm check`: judge shapes and positional-encoding wiring at the nine attention-layer checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spatialvlm_cli.cli.console import terminal
from spatialvlm_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DtypeOpt,
    MergeRuleOpt,
    PeOptionOpt,
    VlmPeOpt,
)
from spatialvlm_cli.errors import ConfigError, OutputError
from spatialvlm_cli.flags import parse_key_values, parse_vlm_pe

if TYPE_CHECKING:
    from rich.console import Console

    from spatialvlm_cli.check import CheckResult

DEFAULT_PRESET = "tiny-qwen"


def parse_layers(value: str) -> list[int] | None:
    """'all' -> None; '0,5' -> [0, 5]."""
    if value.strip().lower() == "all":
        return None
    try:
        return sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--layers must be 'all' or comma-separated layer numbers, got '{value}'") from None


def check_command(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Checkpoint directory, hub id or preset name. Default: tiny-qwen (random "
                     "weights, seconds on CPU)."),
    ] = None,
    vlm_pe: VlmPeOpt = None,
    pcd_pe_merge_rule: MergeRuleOpt = None,
    pe_option: PeOptionOpt = None,
    point_cloud: Annotated[
        Path | None,
        typer.Option("--point_cloud", "--point-cloud", "-p", help="A .ply scene. Default: scenes/room_000.ply, else a "
                     "synthetic room."),
    ] = None,
    layers: Annotated[str, typer.Option("--layers", help="Attention layers to judge: 'all' or e.g. 0,5.")] = "all",
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also print every layer's nine checkpoints (shapes, spans, verdicts)."),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every result to this JSON file.")] = None,
    decode_steps: Annotated[
        int, typer.Option("--decode_steps", "--decode-steps", min=1, help="Cached decode steps after the prefill.")
    ] = 1,
    image: Annotated[
        Path | None,
        typer.Option("--image", "-i", help="Panorama models: an equirectangular jpg/png. Default: "
                     "scenes/pano_room.png, else a synthetic panorama."),
    ] = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "auto",
    config: ConfigOpt = None,
) -> None:
    """Check Q/K/V shapes, PE wiring and the KV cache at the seeds' nine attention-layer checkpoints, with verdicts.

    Exit code 0 when every check passes, 1 when any fails. --VLM_PE all tries None, 3D_RoPE (both merge rules),
    MixedRoPE3D and 3D_Sinusoidal. A panorama model (tiny-internvl, tiny-gemma3, tiny-qwen2.5-vl, tiny-qwen3-vl or
    such a checkpoint) gets the panorama position checks instead; there --VLM_PE all tries None and the family's
    PanoRoPE variant (PanoRoPE_1D or PanoRoPE) in both modes, shared and cora.

    Examples:

      spatialvlm check --VLM_PE all

      spatialvlm check --VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_with_1D --layers 0 --verbose

      spatialvlm check -m ./SpatialLM1.1-Qwen-0.5B -p scenes/room_001.ply --device cuda --json check.json

      spatialvlm check -m tiny-qwen3-vl --VLM_PE all --image scenes/pano_room.png

      spatialvlm check --config check.yaml --layers 0   (YAML keys: model, VLM_PE, layers, json, ...)
    """

    from spatialvlm_cli.check import ALL_VARIANTS, check_variants, load_check_scene
    from spatialvlm_cli.check.panorama import check_panorama, load_check_panorama, panorama_family, panorama_variants
    from spatialvlm_cli.check.report import CheckpointPrinter
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.pe.spec import KEEP

    values = merge_config(ctx, config)
    model, vlm_pe, pcd_pe_merge_rule, pe_option = (values[key] for key in ("model", "vlm_pe", "pcd_pe_merge_rule",
                                                                            "pe_option"))
    point_cloud, layers, verbose, json_out = (values[key] for key in ("point_cloud", "layers", "verbose", "json_out"))
    decode_steps, image, device, dtype = (values[key] for key in ("decode_steps", "image", "device", "dtype"))
    out, err = terminal.out, terminal.err
    spec = model or DEFAULT_PRESET
    if json_out is not None and json_out.exists() and json_out.is_dir():
        raise OutputError(f"--json '{json_out}' is a folder; give a file name")
    family = panorama_family(spec)
    if family is not None:
        if pcd_pe_merge_rule is not None or pe_option or point_cloud is not None or layers.strip().lower() != "all":
            raise ConfigError(f"'{spec}' is a panorama model: --PCD_PE_Merge_Rule, --pe_option, --point_cloud and "
                              "--layers apply to point-cloud models only")
        variants = panorama_variants(family, vlm_pe)  # an unfitting variant fails before anything is loaded
        pano = load_check_panorama(image)
        err.print(f"image: {pano.source} ({pano.panorama.width} x {pano.panorama.height} px)")
        with err.status("checking …"):
            results = check_panorama(spec, variants, pano.panorama, device=device, dtype=dtype,
                                     decode_steps=decode_steps,
                                     on_mode=lambda mode: err.print(f"checking {spec} with {mode}"))
        finish(out, err, results, {"model": spec, "model_type": family.model_type, "scene": pano.source}, json_out)
        return
    if image is not None:
        raise ConfigError(f"--image applies to panorama models; '{spec}' is a point-cloud model (use --point_cloud)")
    chosen_layers = parse_layers(layers)
    if vlm_pe is not None and vlm_pe.strip().lower() == "all":
        if pcd_pe_merge_rule is not None:
            raise ConfigError("--PCD_PE_Merge_Rule cannot be combined with --VLM_PE all (it tries both rules)")
        variants = list(ALL_VARIANTS)
    elif vlm_pe is None and pcd_pe_merge_rule is None:
        variants = [(KEEP, KEEP)]
    else:
        variants = [(KEEP if vlm_pe is None else parse_vlm_pe(vlm_pe),
                     KEEP if pcd_pe_merge_rule is None else pcd_pe_merge_rule)]

    scene = load_check_scene(point_cloud)
    err.print(f"scene: {scene.source} ({len(scene.cloud)} points)")
    printer = CheckpointPrinter(out) if verbose else None
    with err.status("checking …"):
        results = check_variants(spec, scene.cloud, variants, chosen_layers, device=device, dtype=dtype,
                                 pe_options=parse_key_values(pe_option, "--pe_option") or None,
                                 verbose_printer=printer, decode_steps=decode_steps,
                                 on_mode=lambda mode: err.print(f"checking {spec} with {mode}"))
    finish(out, err, results, {"model": spec, "scene": scene.source, "layers": layers}, json_out)


def finish(out: Console, err: Console, results: list[CheckResult], meta: dict[str, Any], json_out: Path | None) -> None:
    """Print the summary table, write the JSON file if asked, exit 1 when any check failed."""
    from spatialvlm_cli.check import results_to_json
    from spatialvlm_cli.check.report import print_summary

    print_summary(out, results, meta)
    if json_out is not None:
        from spatialvlm_cli.io import write_text_atomic

        write_text_atomic(json_out, json.dumps(results_to_json(results, meta), indent=2) + "\n")
        err.print(f"wrote {json_out}")
    if not all(result.passed for result in results):
        raise typer.Exit(1)

