"""Serialise a layout exactly as SpatialLM's `to_language_string`, and the JSON form of the same data.

Text form (one entity a line, "\\n"-joined, walls, doors, windows, boxes):

    wall_0=Wall(ax,ay,az,bx,by,bz,height,thickness)
    door_0=Door(wall_0,position_x,position_y,position_z,width,height)
    window_0=Window(wall_1,position_x,position_y,position_z,width,height)
    bbox_0=Bbox(class_name,position_x,position_y,position_z,angle_z,scale_x,scale_y,scale_z)

Numbers are written with Python's str(): ints as ints (model bins), floats unrounded (repr, e.g.
2.3750000000000004). Door, window and box ids are written modulo 1000, wall ids as they are (as SpatialLM).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout.entities import Bbox, Door, Entity, Layout, Wall, Window


def format_entity(entity: Entity) -> str:
    """One line of SpatialLM's text form for `entity`."""
    values = ",".join(str(getattr(entity, name)) for name in entity.numeric_fields)
    if isinstance(entity, Wall):
        return f"wall_{entity.id}=Wall({values})"
    if isinstance(entity, (Door, Window)):
        return f"{entity.label}_{entity.id % 1000}={entity.label.capitalize()}(wall_{entity.wall_id},{values})"
    return f"bbox_{entity.id % 1000}=Bbox({entity.class_name},{values})"


def format_layout(layout: Layout) -> str:
    """SpatialLM's text form of the whole layout, lines joined by "\\n" with no trailing newline."""
    return "\n".join(format_entity(entity) for entity in layout.entities())


_ENTITY_TYPES: dict[str, type] = {"walls": Wall, "doors": Door, "windows": Window, "bboxes": Bbox}


def layout_to_json(layout: Layout) -> dict[str, list[dict[str, Any]]]:
    """{"walls": [{"id", "ax", ...}], "doors": [{"id", "wall_id", ...}], "windows": [...], "bboxes": [...]}.

    Values are the entities' own (metres/radians or bins); keys are SpatialLM's field names."""
    return {
        key: [_entity_to_dict(entity) for entity in getattr(layout, key)]
        for key in _ENTITY_TYPES
    }


def _entity_to_dict(entity: Entity) -> dict[str, Any]:
    return {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}


def layout_from_json(data: dict[str, Any]) -> Layout:
    """Inverse of `layout_to_json`. Missing groups are empty; raises InputError on unknown keys or bad values."""
    if not isinstance(data, dict):
        raise InputError(f"a layout JSON must be an object with walls/doors/windows/bboxes, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_ENTITY_TYPES))
    if unknown:
        raise InputError(f"unknown layout JSON key(s) {unknown}; expected {sorted(_ENTITY_TYPES)}")
    groups: dict[str, list[Entity]] = {}
    for key, entity_type in _ENTITY_TYPES.items():
        items = data.get(key, [])
        if not isinstance(items, list):
            raise InputError(f"layout JSON '{key}' must be a list, got {type(items).__name__}")
        groups[key] = [_entity_from_dict(entity_type, item, key, index) for index, item in enumerate(items)]
    return Layout(**groups)


def _entity_from_dict(entity_type: type, item: Any, key: str, index: int) -> Entity:
    names = [f.name for f in dataclasses.fields(entity_type)]
    if not isinstance(item, dict) or set(item) != set(names):
        got = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise InputError(f"layout JSON {key}[{index}] must have exactly the fields {names}, got {got}")
    for name in names:
        value = item[name]
        if name == "class_name":
            ok = isinstance(value, str)
        elif name in ("id", "wall_id"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise InputError(f"layout JSON {key}[{index}].{name} has an invalid value {value!r}")
    return entity_type(**item)
