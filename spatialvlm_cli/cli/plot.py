"""`spatialvlm plot`: a top-down floor-plan PNG of a layout, optionally against ground truth and over the scan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spatialvlm_cli.cli.console import read_layout, terminal
from spatialvlm_cli.cli.options import ConfigOpt, GroundTruthOpt, LayoutFileOpt, OverwriteOutputOpt
from spatialvlm_cli.errors import InputError, OutputError

SOFTWARE = "spatialvlm plot"  # the PNG text chunk that marks a plot as ours (see _written_by_plot)


def plot_command(
    ctx: typer.Context,
    layout: LayoutFileOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path("plan.png"),
    gt: GroundTruthOpt = None,
    point_cloud: Annotated[
        Path | None, typer.Option("--point_cloud", "--point-cloud", "-p", help="A .ply scan drawn under the plan.")
    ] = None,
    max_points: Annotated[
        int, typer.Option("--max_points", "--max-points", help="Random subsample of the scan to draw.")
    ] = 300_000,
    size: Annotated[int, typer.Option("--size", help="Pixels along the longer side of the plan.")] = 1200,
    labels: Annotated[
        bool, typer.Option("--labels/--no-labels", "--labels/--no_labels", help="Write class names on the boxes.")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the point subsample.")] = 0,
    overwrite: OverwriteOutputOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Draw a floor plan seen from above: walls, doors, windows and boxes, prediction in orange, ground truth in blue.

    Doors are wide light bars along their wall, windows wide bars with a white centre line; a tick points from each
    box's centre to its local +x face. Metres, x to the right, y up; a 1 m bar gives the scale.

    Examples:

      spatialvlm plot --layout out/scene0000_00.txt -o plan.png

      spatialvlm plot -l out/scene0000_00.txt --gt layout/scene0000_00.txt -p pcd/scene0000_00.ply -o plan.png

      spatialvlm plot -l out/room.json --no-labels --size 2000 -o room.png
    """

    import io

    from PIL.PngImagePlugin import PngInfo

    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.io import check_overwrite, write_bytes_atomic
    from spatialvlm_cli.layout.floorplan import render_floor_plan

    values = merge_config(ctx, config)
    layout, output, gt, point_cloud = values["layout"], values["output"], values["gt"], values["point_cloud"]
    max_points, size, labels, seed = values["max_points"], values["size"], values["labels"], values["seed"]
    if layout is None:
        raise InputError("give the layout to draw with --layout")
    err = terminal.err
    if size < 64:
        raise InputError(f"--size must be at least 64 pixels, got {size}")
    if output.suffix.lower() != ".png":
        raise OutputError(f"--output '{output}' must be a .png file")
    predicted = read_layout(layout, err)
    gt_layout = read_layout(gt, err).layout if gt is not None else None
    points = colors = None
    if point_cloud is not None:
        from spatialvlm_cli.preprocess import read_scan_under_layout

        cloud = read_scan_under_layout(point_cloud, predicted.record).subsampled(max_points, seed)
        points, colors = cloud.points, cloud.colors
    inputs = [path for path in (layout, gt, point_cloud) if path is not None]
    replaced = check_overwrite([output], inputs, values["overwrite"], _written_by_plot)
    image = render_floor_plan(predicted.layout, gt_layout, points, colors, size_px=size, labels=labels)
    buffer = io.BytesIO()
    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    image.save(buffer, format="PNG", pnginfo=info)
    write_bytes_atomic(output, buffer.getvalue())
    again = ", replacing an earlier plot" if replaced else ""
    err.print(f"wrote {output} ({image.width} x {image.height} px{again})")


def _written_by_plot(path: Path) -> bool:
    """True when `path` is a PNG this command wrote (its Software text chunk says so)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.info.get("Software", "")).startswith(SOFTWARE)
    except (OSError, ValueError):
        return False

