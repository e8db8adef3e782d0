"""`spatialvlm infer`: point cloud (.ply) or panorama image -> streamed text + written layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def infer(
    ctx: typer.Context,
    point_cloud: Annotated[
        Path | None, typer.Option("--point_cloud", "--point-cloud", "-p", help="A .ply file or a folder of them.")
    ] = None,
) -> None:
    """Generate a layout from a point cloud."""
    raise typer.Exit(0)
