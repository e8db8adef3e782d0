"""`spatialvlm view`: a Rerun recording (.rrd) of a scan and its layout, or the Rerun viewer itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spatialvlm_cli.cli.console import read_layout, terminal
from spatialvlm_cli.cli.options import ConfigOpt, GroundTruthOpt, LayoutFileOpt, OverwriteOutputOpt
from spatialvlm_cli.errors import InputError, OutputError


def view_command(
    ctx: typer.Context,
    layout: LayoutFileOpt = None,
    point_cloud: Annotated[
        Path | None,
        typer.Option("--point_cloud", "--point-cloud", "-p", help="The scan under the layout (.ply, .pcd, .las, ...)."),
    ] = None,
    gt: GroundTruthOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The .rrd file to write.")] = Path("view.rrd"),
    spawn: Annotated[
        bool, typer.Option("--spawn", help="Start the Rerun viewer instead of writing a file.")
    ] = False,
    max_points: Annotated[
        int, typer.Option("--max_points", "--max-points", help="Random subsample of the scan to show.")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the point subsample.")] = 0,
    overwrite: OverwriteOutputOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show a scan and its layout in 3-D: walls, doors and windows as boxes, objects as oriented boxes labelled
    with their class (Rerun; pip install 'spatialvlm[view]').

    A layout written by `infer --align` lies in the scan's levelled frame; its JSON records how the scan was
    turned, and the scan is shown turned the same way, so the two overlay. Open a recording with `rerun FILE.rrd`.

    Examples:

      spatialvlm view -l layouts/scan.json -p scan.ply -o scan.rrd

      spatialvlm view -l out/room_000.txt --gt scenes/room_000.txt -p scenes/room_000.ply --spawn
    """
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.io import check_output_location, check_overwrite, write_bytes_atomic
    from spatialvlm_cli.preprocess import read_scan_under_layout
    from spatialvlm_cli.viewer import recording_bytes, spawn_viewer

    values = merge_config(ctx, config)
    layout, point_cloud, gt, output = values["layout"], values["point_cloud"], values["gt"], values["output"]
    if layout is None:
        raise InputError("give the layout to show with --layout")
    if not values["spawn"] and output.suffix.lower() != ".rrd":
        raise OutputError(f"--output '{output}' must be an .rrd file")
    err = terminal.err
    predicted = read_layout(layout, err)
    truth = read_layout(gt, err).layout if gt is not None else None
    replaced: list[Path] = []
    if not values["spawn"]:
        check_output_location(output)
        inputs = [path for path in (layout, gt, point_cloud) if path is not None]
        replaced = check_overwrite([output], inputs, values["overwrite"], _written_by_view)
    points = colors = None
    if point_cloud is not None:
        cloud = read_scan_under_layout(point_cloud, predicted.record)
        points, colors = cloud.points, cloud.colors
    settings = {"max_points": values["max_points"], "seed": values["seed"], "name": Path(layout).stem}
    if values["spawn"]:
        spawn_viewer(points, colors, predicted.layout, truth, **settings)
        err.print("sent the scene to the Rerun viewer")
        return
    write_bytes_atomic(output, recording_bytes(points, colors, predicted.layout, truth, **settings))
    again = ", replacing an earlier recording" if replaced else ""
    err.print(f"wrote {output}{again}; open it with: rerun {output}")


def _written_by_view(path: Path) -> bool:
    """True when `path` is a Rerun recording this command wrote (its store info names the application)."""
    from spatialvlm_cli.viewer import APPLICATION_ID

    try:
        with Path(path).open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return False
    return head.startswith(b"RRF") and APPLICATION_ID.encode("ascii") in head
