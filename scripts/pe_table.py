"""Benchmark tables of room models and baselines on the held-out rooms (markdown on stdout).

    python scripts/pe_table.py runs/pe --baselines out/baselines          # the PE comparison, with baselines
    python scripts/pe_table.py --row spatialvlm-rooms=out/shipped --baselines out/baselines   # the model card's

Rows: every RUNS/<row>/heldout/pred folder (`scripts/compare_pe.sh`; flags, minutes and loss from
RUNS/<row>/training.json), each --row NAME=DIR (DIR/pred, as `scripts/eval_rooms.sh MODEL DIR` writes it) and the
baselines of `scripts/baseline_rooms.py` (--baselines OUT: OUT/constant, OUT/empty, OUT/gt_noise, OUT/gt_bins).
Every row is scored here from its predictions against --gt, two ways (`spatialvlm_cli.evaluation.benchmark`): F1
x100 under the exact metric (`eval --exact`: unsigned wall distance) first, SpatialLM's wall F1@.25 as a second
column, then the median over rooms of the geometric errors in metres (`eval --geometry`: room extent, wall centre
lines, door and window centres; 2 m, the cutoff, is the worst). F1 figures are per-class means over scenes
(SpatialLM's aggregation); the best exact wall F1@.25 among several model rows is in bold. "vs none": the mean
per-room difference of exact wall F1@.25 from the `none` row (same rooms, so paired) ± its standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from spatialvlm_cli.evaluation.benchmark import COLUMNS, BenchmarkRow, format_figure, score_row

REPO = Path(__file__).resolve().parent.parent
BASELINES = (("constant", "baseline: constant room"), ("empty", "baseline: empty layout"),
             ("gt_noise", "reference: ground truth + noise"), ("gt_bins", "reference: ground truth in bins"))


def paired_difference(rooms: dict[str, float], baseline: dict[str, float] | None) -> str:
    if baseline is None or rooms.keys() != baseline.keys() or len(rooms) < 2:
        return "–"
    diffs = [rooms[name] - baseline[name] for name in rooms]
    return f"{statistics.mean(diffs):+.1f} ± {statistics.stdev(diffs) / math.sqrt(len(diffs)):.1f}"


def pe_flags(settings: dict) -> str:
    flags = [f"--VLM_PE {settings['vlm_pe'] or 'None'}"]
    if settings["merge_rule"]:
        flags.append(f"--PCD_PE_Merge_Rule {settings['merge_rule']}")
    flags += [f"--pe_option {key}={value}" for key, value in settings["pe_options"].items()]
    return " ".join(flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="?", help="Folder of runs (compare_pe.sh), e.g. runs/pe.")
    parser.add_argument("--row", action="append", default=[], metavar="NAME=DIR",
                        help="Another row: DIR/pred holds its predictions (repeatable).")
    parser.add_argument("--baselines", type=Path, help="Output folder of scripts/baseline_rooms.py.")
    parser.add_argument("--gt", type=Path, default=REPO / "data" / "heldout", help="Ground-truth folder.")
    parser.add_argument("--cutoff", type=float, default=2.0, help="Geometric errors' cutoff, metres.")
    args = parser.parse_args()

    sources: list[tuple[str, Path, dict | None, bool]] = []  # name, pred folder, training.json, is a model
    if args.runs is not None:
        for pred in sorted(args.runs.glob("*/heldout/pred")):
            run = pred.parent.parent
            training = run / "training.json"
            sources.append((run.name, pred, json.loads(training.read_text()) if training.is_file() else None, True))
    for spec in args.row:
        name, sep, folder = spec.partition("=")
        if not sep or not name:
            parser.error(f"--row takes NAME=DIR, got '{spec}'")
        sources.append((name, Path(folder) / "pred", None, True))
    if args.baselines is not None:
        sources += [(title, args.baselines / key / "pred", None, False) for key, title in BASELINES
                    if (args.baselines / key / "pred").is_dir()]
    if not sources:
        where = f"no RUNS/<row>/heldout/pred folder in '{args.runs}'" if args.runs is not None else "no RUNS given"
        sys.exit(f"error: nothing to tabulate: {where}, no --row, no --baselines with predictions "
                 "(scripts/compare_pe.sh or scripts/eval_rooms.sh write them)")

    rows: list[tuple[BenchmarkRow, dict | None, bool]] = [
        (score_row(name, pred, args.gt, args.cutoff), training, is_model) for name, pred, training, is_model in sources
    ]
    by_name = {row.name: row for row, _, _ in rows}
    baseline = by_name["none"].room_wall_f1() if "none" in by_name else None
    with_training = any(training is not None for _, training, _ in rows)
    model_f1 = [row.figures()["wall_f1_25"] or 0.0 for row, _, is_model in rows if is_model]
    best = max(model_f1) if len(model_f1) > 1 else None  # bold only picks among several models

    headers = ["row"] + (["training flags"] if with_training else [])
    headers += [title for _, title in COLUMNS[:2]] + (["vs none"] if baseline is not None else [])
    headers += [title for _, title in COLUMNS[2:]] + (["train min", "final loss"] if with_training else [])
    print("| " + " | ".join(headers) + " |")
    print("|---" * len(headers) + "|")
    for row, training, is_model in rows:
        figures = row.figures()
        cells = {key: format_figure(key, figures[key]) for key, _ in COLUMNS}
        if is_model and best is not None and figures["wall_f1_25"] == best:
            cells["wall_f1_25"] = f"**{cells['wall_f1_25']}**"
        line = [row.name]
        if with_training:
            line.append(f"`{pe_flags(training['settings'])}`" if training else "–")
        line += [cells[key] for key, _ in COLUMNS[:2]]
        if baseline is not None:
            line.append(paired_difference(row.room_wall_f1(), baseline))
        line += [cells[key] for key, _ in COLUMNS[2:]]
        if with_training:
            line += [f"{training['report']['seconds'] / 60:.1f}", f"{training['report']['losses'][-1]:.3f}"] \
                if training else ["–", "–"]
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
