"""`spatialvlm export`: a layout as an SVG floor plan, a DXF drawing or an IFC building model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spatialvlm_cli.cli.console import read_layout, terminal
from spatialvlm_cli.cli.options import ConfigOpt, LayoutFileOpt, OverwriteOutputOpt
from spatialvlm_cli.errors import ConfigError, InputError


def export_command(
    ctx: typer.Context,
    layout: LayoutFileOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="svg | dxf | ifc (default: --output's suffix)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: the layout's name with the format's suffix)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The drawing's or building's name (default: the layout's name).")
    ] = None,
    overwrite: OverwriteOutputOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Export a layout, metres and z up: an SVG floor plan (1:50), a DXF drawing (ezdxf: one closed polyline per
    footprint on WALLS, DOORS, WINDOWS, FURNITURE, extruded by its height) or an IFC4 model (ifcopenshell: IfcWall
    with thickness and height, IfcDoor and IfcWindow in openings of their walls, IfcFurnishingElement boxes).
    DXF and IFC are optional extras: pip install 'spatialvlm[dxf]' or 'spatialvlm[ifc]'.

    Examples:

      spatialvlm export -l layouts/scan.json -f ifc

      spatialvlm export -l out/room_000.txt -o plans/room_000.svg

      spatialvlm export -l out/room_000.json -f dxf -o room.dxf --overwrite
    """
    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.export import FORMATS, export_layout, written_by_export
    from spatialvlm_cli.io import check_output_location, check_overwrite, write_bytes_atomic

    values = merge_config(ctx, config)
    layout, fmt, output = values["layout"], values["fmt"], values["output"]
    if layout is None:
        raise InputError("give the layout to export with --layout")
    suffix = output.suffix.lower().lstrip(".") if output is not None else None
    fmt = (fmt or suffix or "").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}" + (f", got '{fmt}'" if fmt else
                                                                            " (or an --output with that suffix)"))
    if output is None:
        output = Path(layout).with_suffix(f".{fmt}")
    elif suffix != fmt:
        raise ConfigError(f"--output '{output}' must end in .{fmt} for --format {fmt}")
    check_output_location(output)

    def ours(path: Path) -> bool:
        try:
            with path.open("rb") as handle:
                return written_by_export(handle.read(1 << 16))
        except OSError:
            return False

    replaced = check_overwrite([output], [layout], values["overwrite"], ours)
    entities = read_layout(layout, terminal.err).layout
    data = export_layout(entities, fmt, values["name"] or Path(layout).stem)
    write_bytes_atomic(output, data)
    again = ", replacing an earlier export" if replaced else ""
    terminal.err.print(f"wrote {output} ({fmt.upper()}: {entities.describe()}{again})")
