"""SpatialLM's layout language: entities, the 59 categories, bins <-> metres, text and JSON forms. No torch here."""

from spatialvlm_cli.layout.bins import NORMALIZATION_PRESET, bin_size
from spatialvlm_cli.layout.categories import CATEGORIES, LAYOUT_LABELS
from spatialvlm_cli.layout.dedupe import DedupeStats, dedupe_layout
from spatialvlm_cli.layout.entities import Bbox, Door, Entity, Layout, Wall, Window
from spatialvlm_cli.layout.format import format_entity, format_layout, layout_from_json, layout_to_json
from spatialvlm_cli.layout.parse import ParseIssue, parse_layout

__all__ = [
    "CATEGORIES",
    "LAYOUT_LABELS",
    "NORMALIZATION_PRESET",
    "Bbox",
    "DedupeStats",
    "Door",
    "Entity",
    "Layout",
    "ParseIssue",
    "Wall",
    "Window",
    "bin_size",
    "dedupe_layout",
    "format_entity",
    "format_layout",
    "layout_from_json",
    "layout_to_json",
    "parse_layout",
]
