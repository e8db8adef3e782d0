"""An IFC4 building model of a layout (ifcopenshell, the optional `ifc` extra), in metres.

Project -> site -> building -> one storey, which contains:
  IfcWall              an extruded rectangle (length x thickness, extruded by the height) placed at the wall's a
                       end with its x axis along a -> b, and a material layer set whose one layer is the thickness;
  IfcDoor / IfcWindow  each in an IfcOpeningElement that voids its wall (IfcRelVoidsElement) and that it fills
                       (IfcRelFillsElement), with OverallWidth / OverallHeight and a box the size of the opening;
  IfcFurnishingElement each box: an extruded rectangle (scale_x x scale_y, extruded by scale_z) turned by angle_z,
                       named and typed (ObjectType) by its class.
Every placement is relative to the storey's, whose origin is the layout's; names are the layout's ids (wall_0,
door_0, window_0, bbox_0) so a reader can match them back.
"""

from __future__ import annotations

import math
from typing import Any

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.solids import Solid, layout_solids

OPENING_MARGIN_M = 0.02  # an opening reaches this far out of each face of its wall so that the void cuts through


def layout_to_ifc(layout: Layout, name: str, software: str) -> bytes:
    """The model as IFC4 STEP bytes; name: the project's and building's name; software: the originating system."""
    try:
        # Here, not at the top: an optional extra (`ifc`), loaded only to write an IFC.
        import ifcopenshell
        import ifcopenshell.guid
    except ImportError:
        raise InputError("writing IFC needs ifcopenshell: pip install 'spatialvlm[ifc]'") from None

    model = ifcopenshell.file(schema="IFC4")
    model.header.file_name.name = f"{name}.ifc"
    model.header.file_name.originating_system = software
    builder = _Builder(model, ifcopenshell.guid.new)
    storey = builder.spatial_tree(name)
    walls: dict[int, Any] = {}
    contained = []
    for solid in layout_solids(layout):
        if solid.kind == "wall":
            walls[solid.id] = builder.wall(solid)
            contained.append(walls[solid.id])
        elif solid.kind in ("door", "window"):
            contained.append(builder.opening(solid, walls.get(solid.wall_id)))
        else:
            contained.append(builder.furnishing(solid))
    if contained:
        model.createIfcRelContainedInSpatialStructure(builder.guid(), None, "storey contents", None, contained,
                                                      storey)
    return model.to_string().encode("utf-8")


class _Builder:
    """The IFC entities of one model, built with the schema's own constructors (stable across ifcopenshell
    versions, unlike its higher-level api module)."""

    def __init__(self, model: Any, guid: Any) -> None:
        self.model = model
        self.guid = guid
        self.body: Any = None
        self.storey_placement: Any = None

    def point(self, *xyz: float) -> Any:
        return self.model.createIfcCartesianPoint([float(v) for v in xyz])

    def axes(self, origin: tuple[float, float, float], yaw: float) -> Any:
        """A placement at `origin` (metres) with z up and x turned by `yaw` radians."""
        return self.model.createIfcAxis2Placement3D(
            self.point(*origin), self.model.createIfcDirection([0.0, 0.0, 1.0]),
            self.model.createIfcDirection([math.cos(yaw), math.sin(yaw), 0.0]))

    def spatial_tree(self, name: str) -> Any:
        """Units, contexts, project, site, building and storey; returns the storey."""
        model = self.model
        units = model.createIfcUnitAssignment([model.createIfcSIUnit(None, "LENGTHUNIT", None, "METRE"),
                                               model.createIfcSIUnit(None, "PLANEANGLEUNIT", None, "RADIAN")])
        context = model.createIfcGeometricRepresentationContext(None, "Model", 3, 1e-5, self.axes((0, 0, 0), 0.0),
                                                                None)
        self.body = model.createIfcGeometricRepresentationSubContext("Body", "Model", None, None, None, None,
                                                                     context, None, "MODEL_VIEW", None)
        project = model.createIfcProject(self.guid(), None, name, None, None, None, None, [context], units)
        parent, parent_placement = project, None
        for ifc_class, label in (("IfcSite", "site"), ("IfcBuilding", name), ("IfcBuildingStorey", "storey")):
            placement = model.createIfcLocalPlacement(parent_placement, self.axes((0, 0, 0), 0.0))
            element = model.create_entity(ifc_class, GlobalId=self.guid(), Name=label, ObjectPlacement=placement,
                                          CompositionType="ELEMENT")
            model.createIfcRelAggregates(self.guid(), None, None, None, parent, [element])
            parent, parent_placement = element, placement
        self.storey_placement = parent_placement
        return parent

    def box_shape(self, size_x: float, size_y: float, depth: float, centre_x: float = 0.0) -> Any:
        """A body: a size_x x size_y rectangle centred at (centre_x, 0), extruded up by depth (metres)."""
        model = self.model
        profile = model.createIfcRectangleProfileDef(
            "AREA", None, model.createIfcAxis2Placement2D(model.createIfcCartesianPoint([float(centre_x), 0.0]),
                                                          None), float(size_x), float(size_y))
        solid = model.createIfcExtrudedAreaSolid(profile, self.axes((0, 0, 0), 0.0),
                                                 model.createIfcDirection([0.0, 0.0, 1.0]), float(depth))
        shape = model.createIfcShapeRepresentation(self.body, "Body", "SweptSolid", [solid])
        return model.createIfcProductDefinitionShape(None, None, [shape])

    def placed(self, origin: tuple[float, float, float], yaw: float) -> Any:
        return self.model.createIfcLocalPlacement(self.storey_placement, self.axes(origin, yaw))

    def wall(self, solid: Solid) -> Any:
        length, thickness, height = solid.size
        bottom = solid.centre[2] - height / 2
        start = (solid.centre[0] - math.cos(solid.yaw) * length / 2,
                 solid.centre[1] - math.sin(solid.yaw) * length / 2, bottom)
        wall = self.model.create_entity(
            "IfcWall", GlobalId=self.guid(), Name=f"wall_{solid.id}", ObjectPlacement=self.placed(start, solid.yaw),
            Representation=self.box_shape(length, thickness, height, centre_x=length / 2), PredefinedType="STANDARD")
        material = self.model.createIfcMaterial("wall")
        layers = self.model.createIfcMaterialLayerSet([self.model.createIfcMaterialLayer(material, float(thickness))],
                                                      f"wall_{solid.id}", None)
        usage = self.model.createIfcMaterialLayerSetUsage(layers, "AXIS2", "POSITIVE", -float(thickness) / 2, None)
        self.model.createIfcRelAssociatesMaterial(self.guid(), None, None, None, [wall], usage)
        return wall

    def opening(self, solid: Solid, wall: Any) -> Any:
        """A door or window; in a void of its wall when the wall exists."""
        width, depth, height = solid.size
        origin = (solid.centre[0], solid.centre[1], solid.centre[2] - height / 2)
        ifc_class = "IfcDoor" if solid.kind == "door" else "IfcWindow"
        element = self.model.create_entity(
            ifc_class, GlobalId=self.guid(), Name=f"{solid.kind}_{solid.id}",
            ObjectPlacement=self.placed(origin, solid.yaw), Representation=self.box_shape(width, depth, height),
            OverallHeight=float(height), OverallWidth=float(width))
        if wall is not None:
            void = self.model.create_entity(
                "IfcOpeningElement", GlobalId=self.guid(), Name=f"{solid.kind}_{solid.id} opening",
                ObjectPlacement=self.placed(origin, solid.yaw),
                Representation=self.box_shape(width, depth + 2 * OPENING_MARGIN_M, height), PredefinedType="OPENING")
            self.model.createIfcRelVoidsElement(self.guid(), None, None, None, wall, void)
            self.model.createIfcRelFillsElement(self.guid(), None, None, None, void, element)
        return element

    def furnishing(self, solid: Solid) -> Any:
        size_x, size_y, size_z = solid.size
        origin = (solid.centre[0], solid.centre[1], solid.centre[2] - size_z / 2)
        return self.model.create_entity(
            "IfcFurnishingElement", GlobalId=self.guid(), Name=f"bbox_{solid.id}", ObjectType=solid.name,
            ObjectPlacement=self.placed(origin, solid.yaw), Representation=self.box_shape(size_x, size_y, size_z))
