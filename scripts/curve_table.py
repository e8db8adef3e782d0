"""The held-out learning curve of training runs as a markdown table (stdout).

    python scripts/curve_table.py runs/rooms
    python scripts/curve_table.py runs/r80 runs/r40          # several runs, one after the other

Reads RUN/curve.jsonl (`train_rooms.py --eval-every N`: greedy layouts of the first --eval-rooms held-out rooms,
exact F1@.25 x100 per class, median room-extent and wall centre-line errors in metres) and the training minutes
at each evaluated step from RUN/progress.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="Run folders of scripts/train_rooms.py.")
    args = parser.parse_args()
    missing = [str(run) for run in args.runs if not (run / "curve.jsonl").is_file()]
    if missing:
        sys.exit(f"error: no curve.jsonl in {', '.join(missing)} (train with --eval-every N)")

    def figure(value: float | None, digits: int) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    # Curves written since the held-out evaluation checks the prompt get a column for it.
    obedience = any("arch_with_boxes" in entry for run in args.runs for entry in read_lines(run / "curve.jsonl"))
    print("| run | step | training min | rooms | wall F1@.25 | door | window | boxes | extent err m (median) "
          "| wall err m (median) |" + (" prompt ignored (arch, categories) |" if obedience else ""))
    print("|---" * (11 if obedience else 10) + "|")
    for run in args.runs:
        progress = run / "progress.jsonl"
        seconds = {entry["step"]: entry["seconds"] for entry in read_lines(progress)} if progress.is_file() else {}
        for entry in read_lines(run / "curve.jsonl"):
            minutes = seconds.get(entry["step"])
            cells = [run.name, str(entry["step"]), figure(None if minutes is None else minutes / 60, 1),
                     str(entry["rooms"]), figure(entry["wall"], 1), figure(entry["door"], 1),
                     figure(entry["window"], 1), figure(entry["boxes"], 1), figure(entry["extent_median_m"], 2),
                     figure(entry["wall_error_median_m"], 2)]
            if obedience:
                cells.append(f"{figure(entry.get('arch_with_boxes'), 2)}, {figure(entry.get('categories_other'), 2)}")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
