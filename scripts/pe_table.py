"""The README's PE comparison table from `scripts/compare_pe.sh` results (markdown on stdout).

    python scripts/pe_table.py runs/pe

Reads every <row>/training.json and <row>/heldout/scores.json below the folder; F1 figures are x100, per-class
means over scenes (SpatialLM's eval.py aggregation); the best wall F1@.25 is in bold. "vs none": the mean
per-room difference of wall F1@.25 from the `none` row (same rooms, so paired) ± its standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def class_f1(summary: dict, group: str, name: str, threshold: str) -> float | None:
    return summary[group]["classes"][name][threshold]["f1"]


def room_wall_f1(scores: dict) -> dict[str, float]:
    """Wall F1@.25 of every scored room."""
    return {scene["scene"]: scene["classes"]["wall"]["0.25"]["f1"] for scene in scores["scenes"]
            if scene["status"] == "scored"}


def paired_difference(rooms: dict[str, float], baseline: dict[str, float] | None) -> str:
    if baseline is None or rooms.keys() != baseline.keys() or len(rooms) < 2:
        return "–"
    diffs = [100 * (rooms[name] - baseline[name]) for name in rooms]
    return f"{statistics.mean(diffs):+.1f} ± {statistics.stdev(diffs) / math.sqrt(len(diffs)):.1f}"


def pe_flags(settings: dict) -> str:
    flags = [f"--VLM_PE {settings['vlm_pe'] or 'None'}"]
    if settings["merge_rule"]:
        flags.append(f"--PCD_PE_Merge_Rule {settings['merge_rule']}")
    flags += [f"--pe_option {key}={value}" for key, value in settings["pe_options"].items()]
    return " ".join(flags)


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    args = parser.parse_args()
    rows = []
    baseline_path = args.runs / "none" / "heldout" / "scores.json"
    baseline = room_wall_f1(json.loads(baseline_path.read_text())) if baseline_path.is_file() else None
    for scores_path in sorted(args.runs.glob("*/heldout/scores.json")):
        run = scores_path.parent.parent
        training = json.loads((run / "training.json").read_text())
        scores = json.loads(scores_path.read_text())
        summary = scores["summary"]
        objects = summary["objects"]["mean"]["0.25"]["f1"]
        rows.append((
            run.name,
            pe_flags(training["settings"]),
            class_f1(summary, "layouts", "wall", "0.25"),
            paired_difference(room_wall_f1(scores), baseline),
            class_f1(summary, "layouts", "wall", "0.5"),
            class_f1(summary, "layouts", "door", "0.25"),
            class_f1(summary, "layouts", "window", "0.25"),
            objects,
            training["report"]["seconds"] / 60,
            training["report"]["losses"][-1],
        ))
    best = max((row[2] or 0.0 for row in rows), default=0.0)
    print("| row | training flags | wall F1@.25 | vs none | wall F1@.5 | door F1@.25 | window F1@.25 "
          "| boxes F1@.25 (mean) | train min | final loss |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, flags, wall, versus, wall50, door, window, boxes, minutes, loss in rows:
        wall_text = f"**{fmt(wall)}**" if wall is not None and wall == best else fmt(wall)
        print(f"| {name} | `{flags}` | {wall_text} | {versus} | {fmt(wall50)} | {fmt(door)} | {fmt(window)} "
              f"| {fmt(boxes)} | {minutes:.1f} | {loss:.3f} |")


if __name__ == "__main__":
    main()
