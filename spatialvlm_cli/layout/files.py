"""A layout file as the commands take it: SpatialLM's text, `layout_to_json`'s JSON, or infer's JSON (the layout
under "layout")."""

from __future__ import annotations

import json
from pathlib import Path

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.layout.entities import Layout
from spatialvlm_cli.layout.format import layout_from_json
from spatialvlm_cli.layout.parse import ParseIssue, parse_layout


def read_layout_file(path: Path) -> tuple[Layout, list[ParseIssue]]:
    """The layout in `path` (metres, as written) and the text lines it skipped (none for JSON). InputError for a
    missing or unreadable file or invalid JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"layout '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read layout '{path}': {error}") from None
    if Path(path).suffix.lower() != ".json":
        return parse_layout(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"layout '{path}' is not valid JSON: {error}") from None
    return layout_from_json(data["layout"] if isinstance(data, dict) and "layout" in data else data), []
