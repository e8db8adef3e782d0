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
    MergeRuleOpt,
    ModelOpt,
    PeOptionOpt,
    VlmPeOpt,
)
from spatialvlm_cli.errors import InputError, ModelLoadError
from spatialvlm_cli.flags import parse_key_values, parse_vlm_pe

if TYPE_CHECKING:
    from rich.status import Status
    from torch import nn

    from spatialvlm_cli.io import PointCloud
    from spatialvlm_cli.model.loaded import LoadedModel
    from spatialvlm_cli.panorama.pipeline import PanoramaRun
    from spatialvlm_cli.pipeline import ModelWatch, PointCloudRun, RunPlan, SceneResult

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
    image: Annotated[
        Path | None,
        typer.Option("--image", "-i", rich_help_panel=PANORAMA_PANEL, help="An equirectangular panorama (jpg/png)."),
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
                     help="Point clouds: leave out scenes whose outputs already exist."),
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
      spatialvlm infer --image pano.jpg -m tiny-internvl --VLM_PE PanoRoPE_1D \\
          --views 4 --max_new_tokens 64
    """
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.panorama.pipeline import PanoramaRun

    with terminal.err.status("checking flags and inputs …") as status:  # shown within a second, on a terminal
        run = build_run(merge_config(ctx, config))
        if isinstance(run, PanoramaRun):
            from spatialvlm_cli.cli.infer_image import infer_image

            status.stop()
            infer_image(run)
            return
        _infer_point_clouds(run, status)


def build_run(values: dict[str, Any]) -> PointCloudRun | PanoramaRun:
    """The typed run the flags (merged with the YAML config) ask for: the one place `infer`'s values are read by
    name. Sampling flags are checked first, then that exactly one input is given, then the input's own flags."""
    from spatialvlm_cli.generation import GenerationSettings
    from spatialvlm_cli.panorama.pipeline import DEFAULT_PROMPT, PanoramaRequest, PanoramaRun
    from spatialvlm_cli.pipeline import PointCloudRun, SceneSettings

    generation = GenerationSettings(**{name: values[name] for name in GENERATION_FLAGS})
    if (values["point_cloud"] is None) == (values["image"] is None):
        raise InputError("give exactly one of --point_cloud or --image")
    output = DEFAULT_OUTPUT if values["output"] is None else values["output"]
    if values["image"] is not None:
        prompt = values["prompt"]
        request = PanoramaRequest(
            prompt=DEFAULT_PROMPT if prompt is None else prompt,
            views=values["views"],
            overlap=values["overlap"],
            fov_deg=values["fov"],
            global_view=values["global_view"],
            vlm_pe=parse_vlm_pe(values["vlm_pe"]),
            pano_mode=values["pano_mode"],
        )
        return PanoramaRun(image=values["image"], output=output, request=request, generation=generation,
                           model=values["model"], device=values["device"], dtype=values["dtype"],
                           attn_implementation=values["attn_implementation"], overwrite=values["overwrite"])
    scene = SceneSettings(detect_type=values["detect_type"], categories=tuple(values["category"] or ()),
                          clean=not values["no_cleanup"], generation=generation)
    return PointCloudRun(point_cloud=values["point_cloud"], output=output, scene=scene,
                         model=values["model"] or DEFAULT_MODEL, vlm_pe=values["vlm_pe"],
                         merge_rule=values["pcd_pe_merge_rule"],
                         pe_options=parse_key_values(values["pe_option"], "--pe_option"), device=values["device"],
                         dtype=values["dtype"], attn_implementation=values["attn_implementation"],
                         skip_existing=values["skip_existing"], overwrite=values["overwrite"])


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
    layout = result.layout
    counts = [(len(layout.walls), "wall", "walls"), (len(layout.doors), "door", "doors"),
              (len(layout.windows), "window", "windows"), (len(layout.bboxes), "box", "boxes")]
    text = ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)
    issues = result.parse_issues
    if issues:
        numbers = ", ".join(str(issue.line_no) for issue in issues[:8]) + (", …" if len(issues) > 8 else "")
        text += f"; skipped {len(issues)} malformed line{'s' if len(issues) > 1 else ''} (line {numbers})"
    if result.hit_token_limit:
        text += "; cut off at --max_new_tokens"
    return text


def _infer_point_clouds(run: PointCloudRun, status: Status) -> None:
    """Plan the run and check every flag and the output location, read a single scene, then load the model and
    hand the scenes to `run_scenes`: one scene streams its text to stdout, many show a progress bar."""
    import time

    from spatialvlm_cli.io import check_output_location, read_point_cloud
    from spatialvlm_cli.io.model_source import missing_model_path, offline_hub_problem
    from spatialvlm_cli.pipeline import plan_point_cloud_run

    err = terminal.err
    problem = missing_model_path(run.model) or offline_hub_problem(run.model)
    if problem:
        raise ModelLoadError(problem)
    plan = plan_point_cloud_run(run.point_cloud, run.output, run.skip_existing, run.overwrite)
    if not plan.scenes:
        status.stop()
        err.print(f"nothing to do: all {len(plan.skipped)} scene(s) already have their outputs in '{run.output}'")
        return
    check_output_location(plan.scenes[0][1])
    status.update("checking --device and the positional encoding flags …")
    from spatialvlm_cli.device import resolve_device  # torch: only once the cheap checks above have passed

    resolve_device(run.device)  # a device this machine lacks fails before any model loads
    check_pe_flags(run.vlm_pe, run.merge_rule, run.pe_options)
    # One scene: read it before loading the model, so a bad file fails in seconds, not after a model load.
    first_cloud = None
    if len(plan.scenes) == 1:
        status.update(f"reading {plan.scenes[0][0]} …")
        first_cloud = read_point_cloud(plan.scenes[0][0])

    status.update(f"loading {run.model} …")
    start = time.perf_counter()
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
    )
    status.stop()
    model_config = loaded.model.config
    meta = {"model": run.model, "vlm_pe": model_config.vlm_pe, "pcd_pe_merge_rule": model_config.pcd_pe_merge_rule,
            "pe": dict(model_config.pe or {}), "device": str(loaded.model.device), "dtype": str(loaded.model.dtype),
            "attn_implementation": run.attn_implementation}
    err.print(f"loaded {run.model} (--VLM_PE {model_config.vlm_pe or 'None'}) on {loaded.model.device} in "
              f"{time.perf_counter() - start:.1f} s; seed {run.scene.generation.seed}", markup=False)
    if len(plan.scenes) == 1:
        _run_one_scene(run, plan, loaded, meta, first_cloud)
    else:
        _run_many_scenes(run, plan, loaded, meta)


def _watch() -> ModelWatch | None:
    """The checkpoint printer under SPATIALVLM_VERBOSE=1, else None."""
    return _checkpoint_printer if environment.verbose_checkpoints() else None


def _run_one_scene(run: PointCloudRun, plan: RunPlan, loaded: LoadedModel, meta: dict[str, object],
                   cloud: PointCloud | None) -> None:
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
               reraise=True, first_cloud=cloud)


def _run_many_scenes(run: PointCloudRun, plan: RunPlan, loaded: LoadedModel, meta: dict[str, object]) -> None:
    """A progress bar, a line per scene, failures in output/failed.log; Ctrl-C says how to go on."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from spatialvlm_cli.pipeline import run_scenes

    err = terminal.err
    replaced = set(plan.replaced)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err)
    failed_log = run.output / "failed.log"

    def on_done(source: Path, result: SceneResult | None, error: str | None) -> None:
        if result is not None:
            again = ", replaced an earlier run's files" if source in replaced_sources else ""
            err.print(f"[green]done[/] {escape(f'{source.name}: {summary_line(result)}')} "
                      f"({result.seconds:.1f} s{again})")
        else:
            err.print(f"[red]failed[/] {escape(f'{source.name}: {error}')}")
            failed_log.parent.mkdir(parents=True, exist_ok=True)
            with failed_log.open("a", encoding="utf-8") as log_file:
                log_file.write(f"{source.stem}\t{error}\n")
        progress.advance(task)

    replaced_sources = {src for src, txt, js in plan.scenes if txt in replaced or js in replaced}
    done_before = len(plan.skipped)
    with progress:
        task = progress.add_task("scenes", total=len(plan.scenes))
        try:
            summary = run_scenes(loaded, plan.scenes, run.scene, meta, on_scene_done=on_done, watch=_watch(),
                                 reraise=environment.debug())
        except KeyboardInterrupt:
            written = int(progress.tasks[0].completed)
            raise KeyboardInterrupt(f"{written} of {len(plan.scenes)} scene(s) done; run the same command with "
                                    "--skip_existing to go on where it stopped") from None
    skipped = f", {done_before} skipped (outputs exist)" if done_before else ""
    failures = f", {len(summary.failed)} failed (see {failed_log})" if summary.failed else ", 0 failed"
    err.print(f"{len(summary.done)} scene(s) written to '{run.output}'{skipped}{failures}")
    if summary.failed:
        raise typer.Exit(1)
