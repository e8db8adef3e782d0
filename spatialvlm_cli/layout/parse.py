"""Parse SpatialLM's layout text (model output in bins, or saved files in metres) without ever raising.

The rules are those of SpatialLM's `Layout.from_str`, so a file scores the same here as in its eval.py:
  * each line is `<label>_<id>=...(<v0>,<v1>,...)`; the label before the first '_' picks the entity
    (wall, door, window, bbox); the name before '(' is not checked;
  * values are the text between the first '(' and the first ')'; anything after ')' is ignored;
  * extra values beyond those an entity needs are ignored; too few, or one that is not a number, skips the line;
  * a door or window is skipped when its `wall_N` was not defined by an earlier wall line;
  * unknown labels (e.g. `pose_0=...`) are skipped.
Skipped lines are returned as `ParseIssue`s (1-based line number in `text`, the line, the reason); blank lines are
not reported. One deliberate difference: a line with no '(' or no ')' is skipped. SpatialLM would slice it with
find() == -1 and could accept a truncated last line with its final digit cut off (`...,1.25` read as `1.2`).
"""

from __future__ import annotations

from dataclasses import dataclass

from spatialvlm_cli.layout.entities import Bbox, Door, Entity, Layout, Wall, Window


@dataclass(frozen=True)
class ParseIssue:
    """A line that was skipped: line_no is 1-based in the parsed text, line is its text, reason says why."""

    line_no: int
    line: str
    reason: str


class _SkipLine(Exception):
    """Internal: the current line cannot become an entity; the message is the reason."""


def parse_layout(text: str) -> tuple[Layout, list[ParseIssue]]:
    """SpatialLM layout text -> (Layout, skipped-line diagnostics). Never raises on malformed text."""
    layout = Layout()
    issues: list[ParseIssue] = []
    stripped = text.lstrip("\n")
    first_line_no = 1 + len(text) - len(stripped)
    defined_wall_ids: set[int] = set()
    for offset, line in enumerate(stripped.split("\n")):
        if not line.strip():
            continue
        try:
            entity = _parse_line(line, defined_wall_ids)
        except _SkipLine as skip:
            issues.append(ParseIssue(first_line_no + offset, line, str(skip)))
            continue
        if isinstance(entity, Wall):
            defined_wall_ids.add(entity.id)
            layout.walls.append(entity)
        elif isinstance(entity, Window):
            layout.windows.append(entity)
        elif isinstance(entity, Door):
            layout.doors.append(entity)
        else:
            layout.bboxes.append(entity)
    return layout, issues


_VALUE_COUNTS = {"wall": 8, "door": 6, "window": 6, "bbox": 8}


def _parse_line(line: str, defined_wall_ids: set[int]) -> Entity:
    label_text = line.split("=")[0]
    label, _, id_text = label_text.partition("_")
    if not id_text:
        raise _SkipLine("no entity label such as 'wall_0' before '='")
    entity_id = _parse_int(id_text.split("_")[0], "entity id")
    if label not in _VALUE_COUNTS:
        raise _SkipLine(f"unknown entity label '{label}' (expected wall, door, window or bbox)")
    open_pos, close_pos = line.find("("), line.find(")")
    if open_pos < 0 or close_pos < 0:
        raise _SkipLine("no '(' ... ')' around the values (truncated line?)")
    params = line[open_pos + 1 : close_pos].split(",")

    if label in ("door", "window"):
        wall_ref = params[0].split("_")
        if len(wall_ref) < 2:
            raise _SkipLine(f"first value must name a wall like 'wall_0', got '{params[0]}'")
        wall_id = _parse_int(wall_ref[1], "wall id")
        if wall_id not in defined_wall_ids:
            raise _SkipLine(f"{label} refers to wall_{wall_id}, which no earlier line defines")
    needed = _VALUE_COUNTS[label]
    if len(params) < needed:
        raise _SkipLine(f"{label.capitalize()} needs {needed} values, got {len(params)}")

    if label == "wall":
        return Wall(entity_id, *_parse_numbers(params[0:8]))
    if label == "bbox":
        return Bbox(entity_id, params[0], *_parse_numbers(params[1:8]))
    opening_type = Door if label == "door" else Window
    return opening_type(entity_id, wall_id, *_parse_numbers(params[1:6]))


def _parse_int(token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise _SkipLine(f"{what} '{token}' is not an integer") from None


def _parse_numbers(tokens: list[str]) -> list[float]:
    """Python's float() of each token ('1e-3', ' 2.5 ' are fine), kept as int where the token is an integer literal
    (model bins), so that formatting gives the text back."""
    try:
        values: list[float] = list(map(float, tokens))
    except ValueError:
        for token in tokens:
            try:
                float(token)
            except ValueError:
                raise _SkipLine(f"value '{token}' is not a number") from None
        raise
    for i, value in enumerate(values):
        if value.is_integer():
            digits = tokens[i].strip()
            if digits.lstrip("+-").isdigit():
                values[i] = int(digits)
    return values
