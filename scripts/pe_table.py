"""Benchmark tables of room models and baselines on the held-out rooms (markdown on stdout).

    python scripts/pe_table.py runs/pe --baselines out/baselines          # the PE comparison, with baselines
    python scripts/pe_table.py --row spatialvlm-rooms=out/shipped --baselines out/baselines   # the model card's

Rows: every RUNS/<row>/ with seed runs RUNS/<row>/seed<k>/heldout/pred (`scripts/compare_pe.sh`; flags, minutes
and loss from each seed's training.json), each --row NAME=DIR (DIR/pred, as `scripts/eval_rooms.sh MODEL DIR`
writes it) and the baselines of `scripts/baseline_rooms.py` (--baselines OUT: OUT/constant, OUT/empty,
OUT/gt_noise, OUT/gt_bins). Every prediction folder is scored here against --gt, two ways
(`spatialvlm_cli.evaluation.benchmark`): F1 x100 under the exact metric (`eval --exact`: unsigned wall distance)
first, SpatialLM's wall F1@.25 as a second column, then the median over rooms of the geometric errors in metres
(`eval --geometry`: room extent, wall centre lines, door and window centres; 2 m, the cutoff, is the worst). F1
figures are per-class means over scenes (SpatialLM's aggregation). A row of several seeds gives each figure as the
mean over seeds ± their standard deviation. The best exact wall F1@.25 among several model rows is in bold.
"vs none": the mean per-room difference of exact wall F1@.25 (averaged over seeds) from the `none` row (same
rooms, so paired) ± its standard error over rooms; --versus ROW takes another row as the reference. That error
holds the seeds fixed; "± with seeds" adds training randomness: sqrt(SE_rooms² + sd_row²/n_row + sd_ref²/n_ref),
sd and n over each row's seeds of its mean exact wall F1 (0 for a baseline, which is deterministic; "–" where a
model row has one seed, whose spread is unknown): a difference of twice that survives other rooms and other seeds.

--per-seed prints, instead, each run row's seeds side by side (exact wall F1@.25 / median extent error in metres,
a column per seed folder) and their spread (largest minus smallest of each): the figure a difference between rows
has to beat.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from spatialvlm_cli.evaluation.benchmark import COLUMNS, BenchmarkRow, format_figure, score_row
from spatialvlm_cli.layout.request import DEFAULT_ALL_SHARE

REPO = Path(__file__).resolve().parent.parent
BASELINES = (("constant", "baseline: constant room"), ("empty", "baseline: empty layout"),
             ("gt_noise", "reference: ground truth + noise"), ("gt_bins", "reference: ground truth in bins"))


def paired_difference(rooms: dict[str, float], reference: dict[str, float]) -> tuple[float, float] | None:
    """Mean per-room difference of exact wall F1 (x100) from the reference and its standard error over rooms;
    None unless both scored the same rooms, at least two."""
    if rooms.keys() != reference.keys() or len(rooms) < 2:
        return None
    diffs = [rooms[name] - reference[name] for name in rooms]
    return statistics.mean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))


def training_flags(settings: dict) -> str:
    """The train_rooms.py flags that set a row apart (PE, recipe, steps), from a training.json's settings; the
    seed is the run folder's."""
    flags = [f"--VLM_PE {settings['vlm_pe'] or 'None'}"]
    if settings["merge_rule"]:
        flags.append(f"--PCD_PE_Merge_Rule {settings['merge_rule']}")
    flags += [f"--pe_option {key}={value}" for key, value in settings["pe_options"].items()]
    flags.append(f"--steps {settings['steps']}")
    for key, flag in (("dense_weight", "--dense-weight"), ("wall_offset_weight", "--wall-offset-weight"),
                      ("box_weight", "--box-weight"), ("pointer_weight", "--pointer-weight"),
                      ("read_weight", "--read-weight"),
                      ("read_from_step", "--read-from-step")):
        if settings.get(key):
            flags.append(f"{flag} {settings[key]:g}")
    if settings.get("mix_prompts"):
        flags.append("--mix-prompts")
        if settings.get("all_share", DEFAULT_ALL_SHARE) != DEFAULT_ALL_SHARE:
            flags.append(f"--all-share {settings['all_share']:g}")
    return " ".join(flags)


@dataclass
class Row:
    """One table row: the scored prediction folders of its seeds (one for --row and baselines), their folder
    names (seed<k>; empty for --row and baselines) and their training.json files (empty for --row and
    baselines)."""

    name: str
    seeds: list[BenchmarkRow]
    seed_labels: list[str]
    trainings: list[dict]
    is_model: bool

    @cached_property
    def seed_figures(self) -> list[dict[str, float | None]]:
        """Every seed's COLUMNS figures, computed once."""
        return [seed.figures() for seed in self.seeds]

    def figure(self, key: str) -> tuple[float | None, float | None]:
        """Mean over seeds and standard deviation (None for one seed) of one COLUMNS figure."""
        values = [figures[key] for figures in self.seed_figures]
        if any(value is None for value in values):
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None

    @cached_property
    def seed_room_wall_f1(self) -> list[dict[str, float]]:
        """Every seed's exact wall F1@.25 (x100) per scored room, computed once."""
        return [seed.room_wall_f1() for seed in self.seeds]

    def room_wall_f1(self) -> dict[str, float]:
        """Exact wall F1@.25 (x100) per room scored by every seed, averaged over the seeds."""
        per_seed = self.seed_room_wall_f1
        rooms = set.intersection(*(set(rooms) for rooms in per_seed))
        return {room: statistics.fmean(rooms_f1[room] for rooms_f1 in per_seed) for room in sorted(rooms)}

    def seed_variance_of_mean(self) -> float | None:
        """Squared standard error that training randomness puts on the row's mean exact wall F1 (x100): the
        variance over seeds of each seed's mean over rooms, over the seed count; 0 for a baseline (deterministic),
        None for a model row of one seed."""
        if not self.is_model:
            return 0.0
        if len(self.seeds) < 2:
            return None
        seed_means = [statistics.fmean(rooms.values()) for rooms in self.seed_room_wall_f1]
        return statistics.variance(seed_means) / len(seed_means)

    def cell(self, key: str) -> str:
        mean, sd = self.figure(key)
        text = format_figure(key, mean)
        return text if sd is None else f"{text} ± {format_figure(key, sd)}"


def difference_cells(row: Row, reference: Row) -> list[str]:
    """The "vs REFERENCE" cell (paired mean difference ± standard error over rooms) and the "± with seeds" cell
    (that error with both rows' seed variance added; the reference against itself has none)."""
    paired = paired_difference(row.room_wall_f1(), reference.room_wall_f1())
    if paired is None:
        return ["–", "–"]
    mean, rooms_se = paired
    seed_terms = [0.0] if row is reference else [row.seed_variance_of_mean(), reference.seed_variance_of_mean()]
    known = [term for term in seed_terms if term is not None]
    with_seeds = f"{math.sqrt(rooms_se**2 + sum(known)):.1f}" if len(known) == len(seed_terms) else "–"
    return [f"{mean:+.1f} ± {rooms_se:.1f}", with_seeds]


def seed_runs(runs: Path) -> list[tuple[str, list[Path]]]:
    """(row name, its seed run folders) for every RUNS/<row>/seed<k>/heldout/pred, rows sorted by name."""
    rows: dict[str, list[Path]] = {}
    for pred in sorted(runs.glob("*/seed*/heldout/pred")):
        seed_run = pred.parent.parent
        rows.setdefault(seed_run.parent.name, []).append(seed_run)
    return sorted(rows.items())


def print_per_seed(rows: list[Row]) -> None:
    """A row per run row: each seed's exact wall F1@.25 / median extent error (metres), a column per seed
    folder name ("–" where the row lacks that seed), then the spread of both over the row's seeds."""
    labels = sorted({label for row in rows for label in row.seed_labels}, key=lambda label: (len(label), label))
    print("| row: exact wall F1@.25 / extent err m (median) | "
          + " | ".join(label.replace("seed", "seed ") for label in labels) + " | spread |")
    print("|---" * (len(labels) + 2) + "|")
    for row in rows:
        pairs = {label: (figures["wall_f1_25"], figures["extent_m"])
                 for label, figures in zip(row.seed_labels, row.seed_figures, strict=True)}
        cells = [f"{format_figure('wall_f1_25', pairs[label][0])} / {format_figure('extent_m', pairs[label][1])}"
                 if label in pairs else "–" for label in labels]
        walls = [wall for wall, _ in pairs.values() if wall is not None]
        extents = [extent for _, extent in pairs.values() if extent is not None]
        spread = (f"{format_figure('wall_f1_25', max(walls) - min(walls))} / "
                  f"{format_figure('extent_m', max(extents) - min(extents))}"
                  if len(walls) > 1 and len(extents) > 1 else "–")
        print(f"| {row.name} | " + " | ".join(cells) + f" | {spread} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="?", help="Folder of runs (compare_pe.sh), e.g. runs/pe.")
    parser.add_argument("--row", action="append", default=[], metavar="NAME=DIR",
                        help="Another row: DIR/pred holds its predictions (repeatable).")
    parser.add_argument("--baselines", type=Path, help="Output folder of scripts/baseline_rooms.py.")
    parser.add_argument("--gt", type=Path, default=REPO / "data" / "heldout", help="Ground-truth folder.")
    parser.add_argument("--cutoff", type=float, default=2.0, help="Geometric errors' cutoff, metres.")
    parser.add_argument("--versus", default="none", metavar="ROW",
                        help="Row the paired difference is taken from (default: none, when there is one).")
    parser.add_argument("--per-seed", action="store_true",
                        help="Print each run row's seeds side by side and their spread instead.")
    args = parser.parse_args()

    def score(name: str, pred: Path) -> BenchmarkRow:
        return score_row(name, pred, args.gt, args.cutoff)

    rows: list[Row] = []
    if args.runs is not None:
        for name, seeds in seed_runs(args.runs):
            trainings = [json.loads((run / "training.json").read_text()) for run in seeds
                         if (run / "training.json").is_file()]
            rows.append(Row(name, [score(name, run / "heldout" / "pred") for run in seeds],
                            [run.name for run in seeds], trainings, True))
    for spec in args.row:
        name, sep, folder = spec.partition("=")
        if not sep or not name:
            parser.error(f"--row takes NAME=DIR, got '{spec}'")
        rows.append(Row(name, [score(name, Path(folder) / "pred")], [], [], True))
    if args.baselines is not None:
        rows += [Row(title, [score(title, args.baselines / key / "pred")], [], [], False) for key, title in BASELINES
                 if (args.baselines / key / "pred").is_dir()]
    if not rows:
        where = (f"no RUNS/<row>/seed<k>/heldout/pred folder in '{args.runs}'" if args.runs is not None
                 else "no RUNS given")
        sys.exit(f"error: nothing to tabulate: {where}, no --row, no --baselines with predictions "
                 "(scripts/compare_pe.sh or scripts/eval_rooms.sh write them)")

    if args.per_seed:
        run_rows = [row for row in rows if row.seed_labels]
        if not run_rows:
            sys.exit("error: --per-seed tabulates the seed runs of RUNS (RUNS/<row>/seed<k>/heldout/pred), "
                     "and there are none; --row and --baselines have no seeds")
        print_per_seed(run_rows)
        return
    by_name = {row.name: row for row in rows}
    if args.versus != "none" and args.versus not in by_name:
        sys.exit(f"error: --versus names '{args.versus}', which is no row of this table "
                 f"(rows: {', '.join(by_name)})")
    reference = by_name.get(args.versus)
    with_training = any(row.trainings for row in rows)
    with_seeds = any(len(row.seeds) > 1 for row in rows)
    model_f1 = [row.figure("wall_f1_25")[0] or 0.0 for row in rows if row.is_model]
    best = max(model_f1) if len(model_f1) > 1 else None  # bold only picks among several models

    headers = ["row"] + (["seeds"] if with_seeds else []) + (["training flags"] if with_training else [])
    headers += [title for _, title in COLUMNS[:2]]
    headers += [f"vs {args.versus}", "± with seeds"] if reference is not None else []
    headers += [title for _, title in COLUMNS[2:]] + (["train min", "final loss"] if with_training else [])
    print("| " + " | ".join(headers) + " |")
    print("|---" * len(headers) + "|")
    for row in rows:
        cells = {key: row.cell(key) for key, _ in COLUMNS}
        if row.is_model and best is not None and row.figure("wall_f1_25")[0] == best:
            cells["wall_f1_25"] = f"**{cells['wall_f1_25']}**"
        line = [row.name] + ([str(len(row.seeds))] if with_seeds else [])
        if with_training:
            line.append(f"`{training_flags(row.trainings[0]['settings'])}`" if row.trainings else "–")
        line += [cells[key] for key, _ in COLUMNS[:2]]
        if reference is not None:
            line += difference_cells(row, reference)
        line += [cells[key] for key, _ in COLUMNS[2:]]
        if with_training:
            line += ([f"{statistics.fmean(t['report']['seconds'] for t in row.trainings) / 60:.1f}",
                      f"{statistics.fmean(t['report']['losses'][-1] for t in row.trainings):.3f}"]
                     if row.trainings else ["–", "–"])
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
