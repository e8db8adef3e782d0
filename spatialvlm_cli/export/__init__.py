"""A layout as a deliverable: an SVG floor plan (no dependency), a DXF drawing (`ezdxf`, the `dxf` extra) or an IFC
building model (`ifcopenshell`, the `ifc` extra). Every format draws the entities' boxes (`layout.solids`) in
metres, z up, in the layout's own frame.

    data = export_layout(layout, "ifc", name="room_000")   # bytes; write them with io.write_bytes_atomic
"""

from __future__ import annotations

from collections.abc import Callable

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.export.dxf import layout_to_dxf
from spatialvlm_cli.export.ifc import layout_to_ifc
from spatialvlm_cli.export.svg import layout_to_svg
from spatialvlm_cli.layout.entities import Layout

SOFTWARE = "spatialvlm export"  # written into every file's header: marks it as ours for the overwrite rule
FORMATS: dict[str, Callable[[Layout, str, str], bytes]] = {"svg": layout_to_svg, "dxf": layout_to_dxf,
                                                          "ifc": layout_to_ifc}


def export_layout(layout: Layout, fmt: str, name: str = "layout") -> bytes:
    """The file's bytes of `layout` in `fmt` (one of FORMATS); name: the drawing's or building's name. Raises
    ConfigError for another format and InputError when the format's extra is missing."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    return FORMATS[fmt](layout, name, SOFTWARE)


def written_by_export(data: bytes) -> bool:
    """Whether a file's first bytes carry this tool's mark (its header names SOFTWARE)."""
    return SOFTWARE.encode("ascii") in data[: 1 << 16]


__all__ = ["FORMATS", "SOFTWARE", "export_layout", "written_by_export"]
