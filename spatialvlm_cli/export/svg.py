"""An SVG floor plan of a layout, seen from above, at 1:50 on paper (1 m = 20 mm).

User units are centimetres: x_svg = 100 (x - x0), y_svg = 100 (y1 - y) (SVG's y grows downwards). Each footprint is
one <polygon> with data-kind (wall, door, window, bbox) and data-id attributes, so the plan can be read back
(tests do) or styled; walls are filled, doors and windows drawn over their walls, boxes outlined with their class
name and a tick towards their local +x face. A 1 m scale bar sits under the plan.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.solids import layout_solids

MARGIN_M = 0.5
PAPER_MM_PER_M = 20.0  # 1:50
_STYLE = {
    "wall": 'fill="#4a4a4a" stroke="#222" stroke-width="1"',
    "door": 'fill="#fff3e0" stroke="#d06000" stroke-width="1.5"',
    "window": 'fill="#dcefff" stroke="#1f6fc0" stroke-width="1.5"',
    "bbox": 'fill="none" stroke="#2e7d32" stroke-width="1.5"',
}


def layout_to_svg(layout: Layout, name: str, software: str) -> bytes:
    """The plan as UTF-8 SVG bytes; name: the title; software: the mark in the file's metadata."""
    solids = layout_solids(layout)
    footprints = [solid.corners()[:4, :2] for solid in solids]
    everything = np.concatenate(footprints) if footprints else np.zeros((1, 2))
    x0, y0 = everything.min(axis=0) - MARGIN_M
    x1, y1 = everything.max(axis=0) + MARGIN_M
    width_cm, height_cm = 100 * (x1 - x0), 100 * (y1 - y0) + 60  # room under the plan for the scale bar

    def svg_xy(xy: np.ndarray) -> tuple[str, str]:
        return f"{100 * (xy[0] - x0):.2f}", f"{100 * (y1 - xy[1]):.2f}"

    def point(xy: np.ndarray) -> str:
        return ",".join(svg_xy(xy))

    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_cm * PAPER_MM_PER_M / 100:.1f}mm" '
        f'height="{height_cm * PAPER_MM_PER_M / 100:.1f}mm" viewBox="0 0 {width_cm:.2f} {height_cm:.2f}" '
        f'data-origin-m="{x0:.6f},{y1:.6f}" data-units="cm">',
        f"<title>{escape(name)}</title>",
        f"<metadata>{escape(software)}</metadata>",
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for kind in ("wall", "door", "window", "bbox"):
        lines.append(f'<g id="{kind}s">')
        for solid, footprint in zip(solids, footprints, strict=True):
            if solid.kind != kind:
                continue
            points = " ".join(point(xy) for xy in footprint)
            lines.append(f'<polygon data-kind="{kind}" data-id="{solid.id}" points="{points}" {_STYLE[kind]}/>')
            if kind == "bbox":
                (x, y), (fx, fy) = svg_xy(footprint.mean(axis=0)), svg_xy(footprint[1:3].mean(axis=0))
                lines.append(f'<line x1="{x}" y1="{y}" x2="{fx}" y2="{fy}" stroke="#2e7d32" stroke-width="1.5"/>')
                lines.append(f'<text x="{x}" y="{y}" font-family="sans-serif" font-size="12" text-anchor="middle" '
                             f'dy="-4">{escape(solid.name.replace("_", " "))}</text>')
        lines.append("</g>")
    bar_y = 100 * (y1 - y0) + 30
    lines += [
        f'<line x1="20" y1="{bar_y:.2f}" x2="120" y2="{bar_y:.2f}" stroke="black" stroke-width="3"/>',
        f'<text x="125" y="{bar_y + 4:.2f}" font-family="sans-serif" font-size="12">1 m</text>',
        f"<text x=\"150\" y=\"{bar_y + 4:.2f}\" font-family=\"sans-serif\" font-size=\"12\">{escape(name)}, "
        "1:50, metres</text>",
        "</svg>",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")
