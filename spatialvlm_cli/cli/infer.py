"""`spatialvlm infer`: a point cloud (.ply, or a folder of them) or a panorama image -> streamed text + layout files."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spatialvlm_cli.cli import environment
from spatialvlm_cli.cli.console import terminal
from spatialvlm_cli.cli.options import (
    MODEL_PANEL,
    ConfigOpt,
    DeviceOpt,
    DtypeOpt,
    IdOverlapOpt,
    MergeRuleOpt,
    ModelOpt,
    PanoPresetOpt,
    PeOptionOpt,
    VlmPeOpt,
)
from spatialvlm_cli.errors import ConfigError, InputError, ModelLoadError
from spatialvlm_cli.flags import parse_key_values, parse_vlm_pe

if TYPE_CHECKING:
    from rich.status import Status
    from torch import nn

    from spatialvlm_cli.distributed import Ranks
    from spatialvlm_cli.model.loaded import LoadedModel
    from spatialvlm_cli.panorama.pipeline import PanoramaRun
    from spatialvlm_cli.pipeline import ModelWatch, PointCloudRun, RunPlan, SceneResult
    from spatialvlm_cli.preprocess import Scan

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("layouts")
DEFAULT_MODEL = "spatialvlm-rooms"  # spatialvlm_cli.model.DEFAULT_MODEL, without importing torch to know it

# The help headings of `infer --help` (with options.MODEL_PANEL); --config and --help stay under "Options".
POINT_CLOUD_PANEL = "Point cloud"
PANORAMA_PANEL = "Panorama"
GENERATION_PANEL = "Generation"
OUTPUT_PANEL = "Output"
GENERATION_FLAGS = ("max_new_tokens", "greedy", "temperature", "top_p", "top_k", "num_beams", "seed")


def infer(
    ctx: typer.Context,
    point_cloud: Annotated[
        Path | None,
        typer.Option("--point_cloud", "--point-cloud", "-p", rich_help_panel=POINT_CLOUD_PANEL,
                     help="A .ply file or a folder of .ply files."),
    ] = None,
    detect_type: Annotated[
        str,
        typer.Option("--detect_type", "--detect-type", "-d", rich_help_panel=POINT_CLOUD_PANEL,
                     help="all | arch (walls, doors, windows) | object."),
    ] = "all",
    category: Annotated[
        list[str] | None,
        typer.Option("--category", "-c", rich_help_panel=POINT_CLOUD_PANEL,
                     help="Object classes to detect (repeat the flag), e.g. -c bed -c sofa."),
    ] = None,
    no_cleanup: Annotated[
        bool,
        typer.Option("--no_cleanup", "--no-cleanup", rich_help_panel=POINT_CLOUD_PANEL,
                     help="Skip voxel down-sampling and outlier removal."),
    ] = False,
    align: Annotated[
        bool,
        typer.Option("--align", rich_help_panel=POINT_CLOUD_PANEL,
                     help="Level the floor (z up, at z = 0) and turn the walls onto x and y before the model reads "
                     "the scan; the layout is written levelled, its JSON records the transform and each entity's "
                     "corners in the scan's own frame."),
    ] = False,
    up: Annotated[
        str | None,
        typer.Option("--up", rich_help_panel=POINT_CLOUD_PANEL,
                     help="With --align: the scan's up axis (x, -x, y, -y, z, -z) when detection gets it wrong."),
    ] = None,
    units: Annotated[
        str | None,
        typer.Option("--units", rich_help_panel=POINT_CLOUD_PANEL,
                     help="The scan's units: m, cm, mm or in (a scan clearly not in metres is refused without)."),
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option("--scale", rich_help_panel=POINT_CLOUD_PANEL,
                     help="Metres per scan unit, for units --units does not name."),
    ] = None,
    crop: Annotated[
        str | None,
        typer.Option("--crop", rich_help_panel=POINT_CLOUD_PANEL,
                     help="Run one region: x0,y0,z0,x1,y1,z1 or x0,y0,x1,y1 in metres, the scan's frame."),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option("--image", "-i", rich_help_panel=PANORAMA_PANEL,
                     help="An equirectangular panorama (jpg/png); or a folder of them, a folder with "
                     "questions.jsonl or a .jsonl of {image, question} records: one answers.jsonl for eval --task "
                     "vqa|caption."),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", rich_help_panel=PANORAMA_PANEL,
                     help="Question about the panorama (default: describe it)."),
    ] = None,
    views: Annotated[
        int,
        typer.Option("--views", rich_help_panel=PANORAMA_PANEL,
                     help="Perspective views at yaw 0, 360/N, ...; 0: the whole panorama as one image; 3-24."),
    ] = 4,
    overlap: Annotated[
        float,
        typer.Option("--overlap", rich_help_panel=PANORAMA_PANEL,
                     help="Fraction of each view's columns shared with its neighbour, [0, 1); sets the horizontal "
                     "fov."),
    ] = 0.2,
    fov: Annotated[
        float,
        typer.Option("--fov", rich_help_panel=PANORAMA_PANEL,
                     help="Vertical field of view of each view, degrees (10-150)."),
    ] = 90.0,
    global_view: Annotated[
        bool,
        typer.Option("--global_view/--no_global_view", "--global-view/--no-global-view",
                     rich_help_panel=PANORAMA_PANEL, help="Also send the whole panorama resized."),
    ] = True,
    pano_mode: Annotated[
        str,
        typer.Option("--pano_mode", "--pano-mode", rich_help_panel=PANORAMA_PANEL,
                     help="PanoRoPE ids: shared (overlapping views share ids, text follows every image id) | "
                     "cora (the published panollava shift)."),
    ] = "shared",
    id_overlap: IdOverlapOpt = None,
    pano_preset: PanoPresetOpt = None,
    model: ModelOpt = None,
    vlm_pe: VlmPeOpt = None,
    pcd_pe_merge_rule: MergeRuleOpt = None,
    pe_option: PeOptionOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    attn_implementation: Annotated[
        str | None,
        typer.Option("--attn_implementation", "--attn-implementation", rich_help_panel=MODEL_PANEL,
                     help="sdpa | eager."),
    ] = None,
    quantize: Annotated[
        str,
        typer.Option("--quantize", rich_help_panel=MODEL_PANEL,
                     help="none | int8: the CPU fast path, int8 decoder and LM head (point encoder float32); "
                     "point clouds only."),
    ] = "none",
    temperature: Annotated[
        float, typer.Option("--temperature", rich_help_panel=GENERATION_PANEL, help="Sampling temperature.")
    ] = 0.6,
    top_p: Annotated[
        float, typer.Option("--top_p", "--top-p", rich_help_panel=GENERATION_PANEL, help="Nucleus sampling mass.")
    ] = 0.95,
    top_k: Annotated[
        int,
        typer.Option("--top_k", "--top-k", rich_help_panel=GENERATION_PANEL,
                     help="Sample among the k most likely tokens."),
    ] = 10,
    num_beams: Annotated[
        int,
        typer.Option("--num_beams", "--num-beams", rich_help_panel=GENERATION_PANEL,
                     help="Beam search width (no streaming)."),
    ] = 1,
    max_new_tokens: Annotated[
        int,
        typer.Option("--max_new_tokens", "--max-new-tokens", rich_help_panel=GENERATION_PANEL,
                     help="Upper bound on generated tokens."),
    ] = 4096,
    greedy: Annotated[
        bool, typer.Option("--greedy", rich_help_panel=GENERATION_PANEL, help="Argmax decoding instead of sampling.")
    ] = False,
    seed: Annotated[
        int,
        typer.Option("--seed", rich_help_panel=GENERATION_PANEL,
                     help="Random seed for sampling, 0 .. 2**32-1 (fixed: runs repeat; in the JSON)."),
    ] = 0,
    batch_size: Annotated[
        int,
        typer.Option("--batch_size", "--batch-size", rich_help_panel=GENERATION_PANEL,
                     help="Folder runs: scenes per generate() call (left-padded, each stops on its own; greedy text "
                     "equals one-by-one runs); no streaming."),
    ] = 1,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            rich_help_panel=OUTPUT_PANEL,
            help="A folder (default ./layouts): a .txt + .json per scene, a .json per panorama; or a file: .txt for "
            "one scene, .json for a panorama. An existing file is replaced only when this tool wrote it for the same "
            "input (or with --overwrite).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", rich_help_panel=OUTPUT_PANEL,
                     help="Replace existing output files this tool did not write for the same input."),
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip_existing", "--skip-existing", rich_help_panel=OUTPUT_PANEL,
                     help="Folder runs: leave out scenes the run manifest (OUTPUT/manifest.jsonl) records as done "
                     "with the same model, PE flags and settings; failed scenes and those done otherwise run again."),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Generate a layout from a point cloud, or text from a panorama, streaming the output as it is produced.

    The layout is written in SpatialLM's language (metres, the input's frame) as .txt and as .json.

    Examples (an existing output is replaced only when infer wrote it for the same input, or with --overwrite):

    \b
      spatialvlm infer -p scenes/room_000.ply       # spatialvlm-rooms
      spatialvlm infer -p scenes/room_000.ply -m tiny-qwen --VLM_PE 3D_RoPE \\
          --PCD_PE_Merge_Rule 3D_with_1D -o out/tiny
      spatialvlm infer -p scenes/ -o out/ -m ./SpatialLM1.1-Qwen-0.5B --greedy
      spatialvlm infer -p scenes/ -o out/ --greedy --batch_size 8 --skip_existing
      spatialvlm infer -p scan.ply -m ./SpatialLM1.1-Qwen-0.5B --quantize int8
      torchrun --nproc-per-node 2 -m spatialvlm_cli infer -p scenes/ -o out/
      spatialvlm infer --image pano.jpg -m tiny-internvl --VLM_PE PanoRoPE_1D \\
          --views 4 --max_new_tokens 64
    """
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.pipeline import PointCloudRun

    with terminal.err.status("checking flags and inputs …") as status:  # shown within a second, on a terminal
        run = build_run(merge_config(ctx, config))
        if isinstance(run, PointCloudRun):
            _infer_point_clouds(run, status)
            return
        from spatialvlm_cli.cli.infer_image import infer_image

        status.stop()
        infer_image(run)


def build_run(values: dict[str, Any]) -> PointCloudRun | PanoramaRun:
    """The typed run the flags (merged with the YAML config) ask for: the one place `infer`'s values are read by
    name. Sampling flags are checked first, then that exactly one input is given, then the input's own flags."""
    from spatialvlm_cli.generation import GenerationSettings
    from spatialvlm_cli.pipeline import PointCloudRun, SceneSettings
    from spatialvlm_cli.preprocess import ScanOptions, parse_crop

    generation = GenerationSettings(**{name: values[name] for name in GENERATION_FLAGS})
    if (values["point_cloud"] is None) == (values["image"] is None):
        raise InputError("give exactly one of --point_cloud or --image")
    output = DEFAULT_OUTPUT if values["output"] is None else values["output"]
    if values["image"] is not None:
        # The panorama modules only for a panorama run: a point-cloud run's start-up does not pay for them.
        from spatialvlm_cli.cli.infer_image import panorama_request
        from spatialvlm_cli.panorama.pipeline import PanoramaRun

        if values["quantize"] != "none":
            raise ConfigError("--quantize applies to point-cloud models only")
        return PanoramaRun(image=values["image"], output=output, request=panorama_request(values),
                           generation=generation,
                           model=values["model"], device=values["device"], dtype=values["dtype"],
                           attn_implementation=values["attn_implementation"], overwrite=values["overwrite"])
    scan = ScanOptions(units=values["units"], scale=values["scale"], align=values["align"], up=values["up"],
                       crop=parse_crop(values["crop"]) if values["crop"] is not None else None)
    scene = SceneSettings(detect_type=values["detect_type"], categories=tuple(values["category"] or ()),
                          clean=not values["no_cleanup"], generation=generation, scan=scan)
    return PointCloudRun(point_cloud=values["point_cloud"], output=output, scene=scene,
                         model=values["model"] or DEFAULT_MODEL, vlm_pe=values["vlm_pe"],
                         merge_rule=values["pcd_pe_merge_rule"],
                         pe_options=parse_key_values(values["pe_option"], "--pe_option"), device=values["device"],
                         dtype=values["dtype"], attn_implementation=values["attn_implementation"],
                         skip_existing=values["skip_existing"], overwrite=values["overwrite"],
                         batch_size=values["batch_size"], quantize=values["quantize"])


def check_pe_flags(vlm_pe: str | None, merge_rule: str | None, pe_options: Mapping[str, object]) -> None:
    """ConfigError before any model is loaded for an unknown --VLM_PE or --PCD_PE_Merge_Rule, or --pe_option keys
    the chosen variant does not take. Options given without --VLM_PE are checked against the checkpoint's variant
    when it loads."""
    from spatialvlm_cli.pe.spec import PESpec, merge_rule_name

    if merge_rule is not None:
        merge_rule_name(merge_rule)
    if vlm_pe is not None:
        PESpec.parse(vlm_pe, merge_rule, pe_options)


def _checkpoint_printer(model: nn.Module) -> AbstractContextManager:
    """SPATIALVLM_VERBOSE=1: the nine attention-layer checkpoints of every prefill, on stderr (stdout carries the
    streamed text)."""
    from spatialvlm_cli.check import verbose_prefill

    return verbose_prefill(model, terminal.err)


def summary_line(result: SceneResult) -> str:
    """What a scene came to: entity counts, skipped lines by number, a cut-off at the token limit."""
    text = result.layout.describe()
    issues = result.parse_issues
    if issues:
        numbers = ", ".join(str(issue.line_no) for issue in issues[:8]) + (", …" if len(issues) > 8 else "")
        text += f"; skipped {len(issues)} malformed line{'s' if len(issues) > 1 else ''} (line {numbers})"
    if result.hit_token_limit:
        text += "; cut off at --max_new_tokens"
    return text


def _infer_point_clouds(run: PointCloudRun, status: Status) -> None:
    """Under torchrun (WORLD_SIZE > 1), join the process group first: every rank runs its share of the folder's
    scenes on its own device (`distributed.rank_device`). Then `_plan_and_run`."""
    launch = environment.torchrun_launch()
    if launch is None:
        _plan_and_run(run, status, None)
        return
    if run.manifest_folder is None:
        raise InputError(f"torchrun splits a folder's scenes over its processes; '{run.point_cloud}' is one file")
    import signal
    from dataclasses import replace

    from spatialvlm_cli.distributed import join_process_group, leave_process_group, rank_device

    # When one rank fails, or torchrun itself is interrupted, torchrun stops the others with SIGTERM: end like Ctrl-C
    # (generation stopped cleanly, no temporary file left, one line saying how to go on).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rank, world, local_rank = launch
    if rank != 0:
        status.stop()  # one spinner for the launch: rank 0's
    status.update(f"rank {rank} of {world}: joining the other processes …")
    run = replace(run, device=rank_device(run.device, local_rank))
    ranks = join_process_group(rank, world, run.device)
    try:
        _plan_and_run(run, status, ranks)
    finally:
        leave_process_group()


def _plan_and_run(run: PointCloudRun, status: Status, ranks: Ranks | None) -> None:
    """Merge what a killed run left in the manifest (rank 0, while the others wait), plan the run and check every
    flag and the output location, read a single scene, then load the model and run this rank's scenes: one scene
    streams its text to stdout, a folder shows a progress bar (one process) or a line per scene (ranks).
    ranks: the torchrun ranks, None for one process."""
    import time

    from spatialvlm_cli.io import check_output_location
    from spatialvlm_cli.io.model_source import missing_model_path, offline_hub_problem
    from spatialvlm_cli.pipeline import plan_point_cloud_run
    from spatialvlm_cli.preprocess import read_scan
    from spatialvlm_cli.runs import merge_manifest

    err = terminal.err
    problem = missing_model_path(run.model) or offline_hub_problem(run.model)
    if problem:
        raise ModelLoadError(problem)
    main = ranks is None or ranks.is_main
    if run.manifest_folder is not None and main:
        merge_manifest(run.manifest_folder)
    if ranks is not None:
        ranks.barrier()  # every rank plans from the merged manifest
    plan = plan_point_cloud_run(run)
    if not plan.scenes:
        status.stop()
        if main:
            err.print(f"nothing to do: all {len(plan.skipped)} scene(s) were done in '{plan.folder}' with the same "
                      "model, PE and settings")
        return
    check_output_location(plan.scenes[0][1])
    status.update("checking --device and the positional encoding flags …")
    from spatialvlm_cli.device import resolve_device  # torch: only once the cheap checks above have passed
    from spatialvlm_cli.distributed import Ranks

    resolve_device(run.device)  # a device this machine lacks fails before any model loads
    check_pe_flags(run.vlm_pe, run.merge_rule, run.pe_options)
    ranks = ranks or Ranks()
    mine = ranks.split(plan.scenes)
    # One scene: read it before loading the model, so a bad file fails in seconds, not after a model load.
    first_scan = None
    if plan.folder is None:
        status.update(f"reading {plan.scenes[0][0]} …")
        first_scan = read_scan(plan.scenes[0][0], run.scene.scan)
    loaded, meta = None, {}
    if mine:
        status.update(f"loading {run.model} …")
        start = time.perf_counter()
        loaded, meta = _load_model(run)
        status.stop()
        err.print(f"{_rank_prefix(ranks)}loaded {run.model} (--VLM_PE {meta['vlm_pe'] or 'None'}) on {meta['device']} "
                  f"in {time.perf_counter() - start:.1f} s; seed {run.scene.generation.seed}", markup=False)
    status.stop()
    if plan.folder is None:
        assert loaded is not None  # one scene, one process: it is this process's
        _run_one_scene(run, plan, loaded, meta, first_scan)
    else:
        _run_folder(run, plan, ranks, mine, loaded, meta)


def _load_model(run: PointCloudRun) -> tuple[LoadedModel, dict[str, object]]:
    """The model with the run's PE flags, and what every scene's JSON records about it."""
    from transformers.utils import logging as hf_logging

    from spatialvlm_cli.model import load_spatiallm
    from spatialvlm_cli.pe.spec import KEEP

    hf_logging.disable_progress_bar()  # the spinner says what is going on; a second bar would run into it
    loaded = load_spatiallm(
        run.model,
        device=run.device,
        dtype=run.dtype,
        # Flags not given keep what the checkpoint was built with; "None" asks for stock 1-D RoPE.
        vlm_pe=KEEP if run.vlm_pe is None else parse_vlm_pe(run.vlm_pe),
        merge_rule=KEEP if run.merge_rule is None else run.merge_rule,
        pe_options=dict(run.pe_options) or None,
        attn_implementation=run.attn_implementation,
        quantize=run.quantize,
    )
    model_config = loaded.model.config
    meta = {"model": run.model, "vlm_pe": model_config.vlm_pe, "pcd_pe_merge_rule": model_config.pcd_pe_merge_rule,
            "pe": dict(model_config.pe or {}), "device": str(loaded.model.device), "dtype": str(loaded.model.dtype),
            "attn_implementation": run.attn_implementation, "batch_size": run.batch_size, "quantize": run.quantize}
    return loaded, meta


def _rank_prefix(ranks: Ranks) -> str:
    """'rank R: ' before a rank's lines when there are several, else nothing."""
    return f"rank {ranks.rank}: " if ranks.world > 1 else ""


def _watch() -> ModelWatch | None:
    """The checkpoint printer under SPATIALVLM_VERBOSE=1, else None."""
    return _checkpoint_printer if environment.verbose_checkpoints() else None


def _run_one_scene(run: PointCloudRun, plan: RunPlan, loaded: LoadedModel, meta: dict[str, object],
                   scan: Scan | None) -> None:
    """The scene's text streams to stdout; a failure is the command's error (one line, nothing written)."""
    from rich.markup import escape

    from spatialvlm_cli.pipeline import run_scenes

    err = terminal.err
    _, txt_path, json_path = plan.scenes[0]
    again = " (replacing an earlier run's files)" if plan.replaced else ""

    def on_done(source: Path, result: SceneResult | None, error: str | None) -> None:
        assert result is not None  # reraise: a failure raises instead of coming here
        terminal.end_line()
        err.print(f"[green]wrote[/] {escape(f'{txt_path} and {json_path}{again}: {summary_line(result)}')} "
                  f"({result.num_point_tokens} point tokens, {result.num_new_tokens} new tokens, "
                  f"{result.seconds:.1f} s)")

    err.print(f"model output in integer bins ({100 * 32 / loaded.num_bins:g} cm positions from the scan's min "
              f"corner); {txt_path} gets metres:", markup=False)
    run_scenes(loaded, plan.scenes, run.scene, meta, on_text=terminal.stream, on_scene_done=on_done, watch=_watch(),
               reraise=True, first_scan=scan)


def _run_folder(run: PointCloudRun, plan: RunPlan, ranks: Ranks, mine: list[tuple[Path, Path, Path]],
                loaded: LoadedModel | None, meta: dict[str, object]) -> None:
    """Run this rank's scenes (`mine`), each recorded in its part of the run manifest; after every rank is done,
    rank 0 merges the manifest and says what the run came to (exit code 1 when any scene failed). One process shows
    a progress bar; with ranks, each prints a line per scene. Ctrl-C says how to go on."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from spatialvlm_cli.pipeline import run_scenes
    from spatialvlm_cli.runs import FAILED_LOG, MANIFEST_NAME, ManifestPart, merge_manifest, pe_description

    err = terminal.err
    folder = plan.folder
    assert folder is not None  # a folder run
    prefix = _rank_prefix(ranks)
    if ranks.is_main and run.skip_existing and plan.rerun:
        err.print(f"{len(plan.rerun)} scene(s) were done with another model, PE or settings: running them again",
                  markup=False)
    replaced_sources = {src for src, txt, js in plan.scenes if txt in plan.replaced or js in plan.replaced}
    stale = plan.stale
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=ranks.world > 1)
    finished = 0

    def on_done(source: Path, result: SceneResult | None, error: str | None) -> None:
        nonlocal finished
        finished += 1
        count = f"{finished}/{len(mine)} " if ranks.world > 1 else ""
        if result is not None:
            again = ", replaced an earlier run's files" if source in replaced_sources else ""
            err.print(f"{prefix}{count}[green]done[/] {escape(f'{source.name}: {summary_line(result)}')} "
                      f"({result.seconds:.1f} s{again})")
        else:
            removed = "; removed its outputs of another model, PE or settings" if stale.get(source) else ""
            err.print(f"{prefix}{count}[red]failed[/] {escape(f'{source.name}: {error}{removed}')}")
        progress.advance(task)

    if loaded is not None:
        part = ManifestPart(folder, ranks.rank, run.key,
                            pe_description(meta["vlm_pe"], meta["pcd_pe_merge_rule"], meta["pe"]), str(meta["device"]))
        with progress:
            task = progress.add_task("scenes", total=len(mine))
            try:
                run_scenes(loaded, mine, run.scene, meta, on_scene_done=on_done, watch=_watch(),
                           reraise=environment.debug(), manifest=part, batch_size=run.batch_size,
                           stale=stale)
            except KeyboardInterrupt:
                if ranks.world == 1:  # the others may still be writing their parts: the next run merges them
                    merge_manifest(folder)
                raise KeyboardInterrupt(f"{prefix}{finished} of {len(mine)} scene(s) done; run the same command "
                                        "with --skip_existing to go on where it stopped") from None
    ranks.barrier()  # every rank has written its part
    failed = False
    if ranks.is_main:
        merged = merge_manifest(folder)
        done = len(merged.done)
        by = f" by {ranks.world} processes" if ranks.world > 1 else ""
        skipped = f", {len(plan.skipped)} skipped (done before with the same model, PE and settings)" \
            if plan.skipped else ""
        failures = f", {len(merged.failed)} failed (see {folder / FAILED_LOG})" if merged.failed else ", 0 failed"
        err.print(f"{done} scene(s) written to '{folder}'{by}{skipped}{failures}; manifest "
                  f"{folder / MANIFEST_NAME}", markup=False)
        failed = bool(merged.failed)
    # The other ranks leave before rank 0 exits with 1: torchrun stops the processes that are left when one fails.
    ranks.barrier()
    if failed:
        raise typer.Exit(1)
