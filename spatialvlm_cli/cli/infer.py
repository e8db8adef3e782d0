"""`spatialvlm infer`: a point cloud (.ply, or a folder of them) or a panorama image -> streamed text + layout files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spatialvlm_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DtypeOpt,
    MergeRuleOpt,
    ModelOpt,
    PeOptionOpt,
    VlmPeOpt,
    parse_key_values,
    parse_vlm_pe,
)
from spatialvlm_cli.errors import InputError

if TYPE_CHECKING:
    from spatialvlm_cli.generation import GenerationSettings

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("layouts")


def infer(
    ctx: typer.Context,
    point_cloud: Annotated[
        Path | None, typer.Option("--point_cloud", "--point-cloud", "-p", help="A .ply file or a folder of .ply files.")
    ] = None,
    image: Annotated[Path | None, typer.Option("--image", "-i", help="An equirectangular panorama (jpg/png).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Point clouds: a folder (a .txt + .json per scene) or a .txt file for one scene (default ./layouts). "
            "Image: a .json file or a folder (default ./<image stem>.json).",
        ),
    ] = None,
    model: ModelOpt = None,
    vlm_pe: VlmPeOpt = None,
    pcd_pe_merge_rule: MergeRuleOpt = None,
    pe_option: PeOptionOpt = None,
    detect_type: Annotated[
        str, typer.Option("--detect_type", "--detect-type", "-d", help="all | arch (walls, doors, windows) | object.")
    ] = "all",
    category: Annotated[
        list[str] | None,
        typer.Option("--category", "-c", help="Object classes to detect (repeat the flag), e.g. -c bed -c sofa."),
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature.")] = 0.6,
    top_p: Annotated[float, typer.Option("--top_p", "--top-p", help="Nucleus sampling mass.")] = 0.95,
    top_k: Annotated[int, typer.Option("--top_k", "--top-k", help="Sample among the k most likely tokens.")] = 10,
    num_beams: Annotated[int, typer.Option("--num_beams", "--num-beams", help="Beam search width (no streaming).")] = 1,
    max_new_tokens: Annotated[
        int, typer.Option("--max_new_tokens", "--max-new-tokens", help="Upper bound on generated tokens.")
    ] = 4096,
    greedy: Annotated[bool, typer.Option("--greedy", help="Argmax decoding instead of sampling.")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed for sampling (reproducible runs).")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    no_cleanup: Annotated[
        bool, typer.Option("--no_cleanup", "--no-cleanup", help="Skip voxel down-sampling and outlier removal.")
    ] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip_existing", "--skip-existing", help="Leave out scenes whose outputs already exist.")
    ] = False,
    attn_implementation: Annotated[
        str | None, typer.Option("--attn_implementation", "--attn-implementation", help="sdpa | eager.")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="[image] Question about the panorama (default: describe it).")
    ] = None,
    views: Annotated[
        int,
        typer.Option(
            "--views", help="[image] Perspective views at yaw 0, 360/N, ...; 0: the whole panorama as one image; 3-24."
        ),
    ] = 4,
    overlap: Annotated[
        float,
        typer.Option(
            "--overlap",
            help="[image] Fraction of each view's columns shared with its neighbour, [0, 1); sets the horizontal fov.",
        ),
    ] = 0.2,
    fov: Annotated[
        float, typer.Option("--fov", help="[image] Vertical field of view of each view, degrees (10-150).")
    ] = 90.0,
    global_view: Annotated[
        bool, typer.Option("--global_view/--no_global_view", help="[image] Also send the whole panorama resized.")
    ] = True,
    pano_mode: Annotated[
        str,
        typer.Option(
            "--pano_mode",
            "--pano-mode",
            help="[image] PanoRoPE ids: shared (overlapping views share ids, text follows every image id) | "
            "cora (the published panollava shift).",
        ),
    ] = "shared",
    config: ConfigOpt = None,
) -> None:
    """Generate a layout from a point cloud, or text from a panorama, streaming the output as it is produced.

    The layout is written in SpatialLM's language (metres, the input's frame) as .txt and as .json.

    Examples:

      spatialvlm infer -p scenes/room_000.ply          (the shipped model, spatialvlm-rooms)

      spatialvlm infer -p scenes/room_000.ply -m tiny-qwen --VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_with_1D

      spatialvlm infer -p scenes/ -o out/ --model ./SpatialLM1.1-Qwen-0.5B --greedy --skip_existing

      spatialvlm infer --image pano.jpg -m tiny-internvl --VLM_PE PanoRoPE_1D --views 4 --overlap 0.2
    """
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.generation import GenerationSettings

    values = merge_config(ctx, config)
    generation = GenerationSettings(
        max_new_tokens=values["max_new_tokens"],
        greedy=values["greedy"],
        temperature=values["temperature"],
        top_p=values["top_p"],
        top_k=values["top_k"],
        num_beams=values["num_beams"],
        seed=values["seed"],
    )
    if (values["point_cloud"] is None) == (values["image"] is None):
        raise InputError("give exactly one of --point_cloud or --image")
    if values["image"] is not None:
        from spatialvlm_cli.cli.infer_image import infer_image

        infer_image(
            image=values["image"],
            output=values["output"],
            model=values["model"],
            vlm_pe=parse_vlm_pe(values["vlm_pe"]),
            pano_mode=values["pano_mode"],
            prompt=values["prompt"],
            views=values["views"],
            overlap=values["overlap"],
            fov_deg=values["fov"],
            global_view=values["global_view"],
            generation=generation,
            device=values["device"],
            dtype=values["dtype"],
            attn_implementation=values["attn_implementation"],
        )
        return
    _infer_point_clouds(values, generation)


def _infer_point_clouds(values: dict, generation: GenerationSettings) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from spatialvlm_cli.io import check_writable_dir, read_point_cloud
    from spatialvlm_cli.pipeline import (
        SceneSettings,
        infer_scene,
        plan_point_cloud_run,
        run_scenes,
        write_scene_outputs,
    )

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)
    settings = SceneSettings(
        detect_type=values["detect_type"],
        categories=tuple(values["category"] or ()),
        clean=not values["no_cleanup"],
        generation=generation,
    )
    output = values["output"] or DEFAULT_OUTPUT
    plan = plan_point_cloud_run(values["point_cloud"], output, values["skip_existing"])
    if not plan:
        err.print(f"nothing to do: every scene already has its outputs in '{output}'")
        return
    check_writable_dir(plan[0][1].parent)
    # One scene: read it before loading the model, so a bad file fails in a second, not after a model load.
    first_cloud = read_point_cloud(plan[0][0]) if len(plan) == 1 else None

    from spatialvlm_cli.model import DEFAULT_MODEL, load_spatiallm
    from spatialvlm_cli.model.loading import KEEP

    spec = values["model"] or DEFAULT_MODEL
    pe_options = parse_key_values(values["pe_option"], "--pe_option")
    with err.status(f"loading {spec} …"):
        loaded = load_spatiallm(
            spec,
            device=values["device"],
            dtype=values["dtype"],
            # Flags not given keep what the checkpoint was built with; "None" asks for stock 1-D RoPE.
            vlm_pe=KEEP if values["vlm_pe"] is None else parse_vlm_pe(values["vlm_pe"]),
            merge_rule=KEEP if values["pcd_pe_merge_rule"] is None else values["pcd_pe_merge_rule"],
            pe_options=pe_options or None,
            attn_implementation=values["attn_implementation"],
        )
    config = loaded.model.config
    meta = {"model": spec, "vlm_pe": config.vlm_pe, "pcd_pe_merge_rule": config.pcd_pe_merge_rule,
            "pe": dict(config.pe or {})}

    if len(plan) == 1:
        source, txt_path, json_path = plan[0]
        result = infer_scene(
            loaded, source, settings, on_text=lambda piece: out.print(piece, end=""), cloud=first_cloud
        )
        out.print()
        write_scene_outputs(result, txt_path, json_path, meta)
        err.print(
            f"[green]wrote[/] {txt_path} and {json_path} ({result.num_point_tokens} point tokens, "
            f"{result.num_new_tokens} new tokens, {result.seconds:.1f} s)"
        )
        return

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )
    with progress:
        task = progress.add_task("scenes", total=len(plan))

        def on_done(source: Path, result, error: str | None) -> None:
            if error is None:
                progress.console.print(f"[green]done[/] {source.name} ({result.seconds:.1f} s)")
            else:
                progress.console.print(f"[red]failed[/] {source.name}: {error}")
            progress.advance(task)

        summary = run_scenes(loaded, plan, settings, meta, on_scene_done=on_done)
    err.print(f"{len(summary.done)} scene(s) written to '{output}', {len(summary.failed)} failed")
    if summary.failed:
        raise typer.Exit(1)
