"""A layout file as the commands take it: SpatialLM's text, `layout_to_json`'s JSON, or infer's JSON (the layout
under "layout")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.format import layout_from_json
from spatialvlm_cli.layout.parse import ParseIssue, parse_layout


@dataclass
class LayoutFile:
    """A layout file as read: layout (metres, as written); issues: the text lines skipped (none for JSON); record:
    the JSON object around the layout when infer wrote it (its `scan_transform`, `stats`...), else empty."""

    layout: Layout
    issues: list[ParseIssue] = field(default_factory=list)
    record: dict[str, object] = field(default_factory=dict)


def read_layout_file(path: Path) -> LayoutFile:
    """The layout in `path`, read once. InputError for a missing or unreadable file or invalid JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"layout '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read layout '{path}': {error}") from None
    if Path(path).suffix.lower() != ".json":
        return LayoutFile(*parse_layout(text))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"layout '{path}' is not valid JSON: {error}") from None
    if isinstance(data, dict) and "layout" in data:
        return LayoutFile(layout_from_json(data["layout"]), record=data)
    return LayoutFile(layout_from_json(data))
