"""Drop near-duplicate entity lines and make ids unique, so a model that repeats itself writes a clean layout.

A small model often emits the same line twice (`door_0=Door(wall_1,...)` twice, or with one value a bin apart),
and sometimes gives two different entities the same id. `dedupe_layout` keeps the first of every group of
near-duplicates and renumbers the repeated ids:

  * near-duplicates: same kind (wall, door, window; a box of the same class) and every numeric value within
    `tolerance` of an entity already kept (in the layout's own units: 1 = one bin for model output, where
    `pipeline.decode_layout` applies it; metres for a metric layout). A door's or window's wall reference is not
    compared: two openings at the same place are one opening;
  * repeated ids: among the kept entities of one kind, the first with an id keeps it, each later one gets the next
    unused id above the largest (so ids stay unique and earlier lines keep theirs);
  * wall references: a door or window names the *last* wall with its id (SpatialLM's dict lookup, so scoring
    agrees); after dropping and renumbering it names that wall's kept copy by its new id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from spatialvlm_cli.layout.entities import Bbox, Door, Entity, Layout, Wall, Window

E = TypeVar("E", Wall, Door, Window, Bbox)


@dataclass(frozen=True)
class DedupeStats:
    """What `dedupe_layout` changed: near-duplicate entities dropped, entities given a new id."""

    dropped: int = 0
    renumbered: int = 0

    def __bool__(self) -> bool:
        return bool(self.dropped or self.renumbered)


def is_near_duplicate(a: Entity, b: Entity, tolerance: float = 1.0) -> bool:
    """Same kind (and box class) and every numeric value within `tolerance` (the layout's units)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Bbox) and isinstance(b, Bbox) and a.class_name != b.class_name:
        return False
    return all(abs(getattr(a, name) - getattr(b, name)) <= tolerance for name in a.numeric_fields)


def dedupe_layout(layout: Layout, tolerance: float = 1.0) -> tuple[Layout, DedupeStats]:
    """The layout without near-duplicate entities and with unique ids per kind (see the module docstring).

    tolerance: largest difference of any value for two entities to count as one (1 = one bin in model output)."""
    walls, wall_source = _first_of_each(layout.walls, tolerance)
    walls, wall_renumbered = _unique_ids(walls)
    # wall id as the openings name it -> the last wall with that id -> its kept copy -> that copy's final id
    last_with_id = {wall.id: index for index, wall in enumerate(layout.walls)}

    def rehome(opening: E) -> E:
        original = last_with_id.get(opening.wall_id)  # type: ignore[union-attr]
        if original is None:  # names no wall: left as it is (scoring drops it, as SpatialLM)
            return opening
        return dataclasses.replace(opening, wall_id=walls[wall_source[original]].id)

    groups: dict[str, list] = {"walls": walls}
    dropped = len(layout.walls) - len(walls)
    renumbered = wall_renumbered
    for key in ("doors", "windows", "bboxes"):
        original: Sequence[Entity] = getattr(layout, key)
        kept, _ = _first_of_each(original, tolerance)
        kept, count = _unique_ids(kept)
        if key != "bboxes":
            kept = [rehome(opening) for opening in kept]
        groups[key] = kept
        dropped += len(original) - len(kept)
        renumbered += count
    return Layout(**groups), DedupeStats(dropped, renumbered)


def _first_of_each(entities: Sequence[E], tolerance: float) -> tuple[list[E], list[int]]:
    """Kept entities (first of each near-duplicate group, in order) and, for every input entity, the index of the
    kept entity it became."""
    kept: list[E] = []
    source: list[int] = []
    for entity in entities:
        match = next((k for k, other in enumerate(kept) if is_near_duplicate(entity, other, tolerance)), None)
        if match is None:
            kept.append(entity)
            match = len(kept) - 1
        source.append(match)
    return kept, source


def _unique_ids(entities: list[E]) -> tuple[list[E], int]:
    """Later repeats of an id get the next unused ids above the largest; returns the entities and how many
    changed."""
    seen: set[int] = set()
    next_id = max((entity.id for entity in entities), default=-1) + 1
    result: list[E] = []
    changed = 0
    for entity in entities:
        if entity.id in seen:
            entity = dataclasses.replace(entity, id=next_id)
            next_id += 1
            changed += 1
        seen.add(entity.id)
        result.append(entity)
    return result, changed
