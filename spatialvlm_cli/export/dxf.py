"""A DXF drawing of a layout (ezdxf, the optional `dxf` extra), in metres ($INSUNITS 6).

Each entity's footprint is a closed LWPOLYLINE on its layer (WALLS, DOORS, WINDOWS, FURNITURE) at its bottom's
elevation, with its height as the polyline's thickness, so CAD programs show the plan from above and extruded
boxes in 3-D; boxes carry their class name as a TEXT on the LABELS layer. Each layer holds its entities in the
layout's order.
"""

from __future__ import annotations

import io

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.solids import layout_solids

LAYERS = {"wall": ("WALLS", 8), "door": ("DOORS", 30), "window": ("WINDOWS", 5), "bbox": ("FURNITURE", 3)}
LABEL_LAYER = "LABELS"
LABEL_HEIGHT_M = 0.12


def layout_to_dxf(layout: Layout, name: str, software: str) -> bytes:
    """The drawing as DXF R2010 bytes; name: stored as the drawing's title; software: this tool's mark."""
    try:
        # Here, not at the top: an optional extra (`dxf`), loaded only to write a DXF.
        import ezdxf
        from ezdxf.enums import TextEntityAlignment
    except ImportError:
        raise InputError("writing DXF needs ezdxf: pip install 'spatialvlm[dxf]'") from None

    doc = ezdxf.new("R2010")
    doc.units = ezdxf.units.M
    doc.header["$MEASUREMENT"] = 1  # metric
    doc.header.custom_vars.append("Software", software)
    doc.header.custom_vars.append("Title", name)
    for layer, colour in [*LAYERS.values(), (LABEL_LAYER, 7)]:
        doc.layers.add(layer, color=colour)
    space = doc.modelspace()
    for solid in layout_solids(layout):
        corners = solid.corners()
        bottom, height = float(corners[0, 2]), float(solid.size[2])
        space.add_lwpolyline([tuple(map(float, xy)) for xy in corners[:4, :2]], close=True,
                             dxfattribs={"layer": LAYERS[solid.kind][0], "elevation": bottom, "thickness": height})
        if solid.kind == "bbox":
            text = space.add_text(solid.name.replace("_", " "), height=LABEL_HEIGHT_M,
                                  dxfattribs={"layer": LABEL_LAYER, "elevation": bottom + height})
            text.set_placement(tuple(map(float, solid.centre[:2])), align=TextEntityAlignment.MIDDLE_CENTER)
    stream = io.StringIO()
    doc.write(stream)
    return stream.getvalue().encode(doc.output_encoding)
