"""Benchmark `spatialvlm eval` on synthetic scenes, optionally against SpatialLM's own eval.py.

Generates N room-like scene pairs (4-6 walls, doors, windows, ~15 boxes of the 59 classes; predictions are the
ground truth perturbed, quantised to 1280 bins, with misses, false positives and relabelled boxes) into a
temporary folder, then times `evaluate_folders` on them (reading, parsing and scoring included).

    python scripts/bench_eval.py                        # 1000 scenes, prints the time and the F1 tables
    python scripts/bench_eval.py --scenes 200 --keep out/bench
    # Same data through SpatialLM's eval.py (needs its dependencies: torch, shapely, bbox==0.9.4, numpy<2, pandas,
    # terminaltables; the folder holding eval.py must also hold the `spatiallm` package):
    python scripts/bench_eval.py --compare-with ~/SpatialLM/eval.py --compare-python ~/venvs/spatiallm/bin/python
"""

from __future__ import annotations

import argparse
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spatialvlm_cli.evaluation import DEFAULT_MAPPING, EvalReport, evaluate_folders
from spatialvlm_cli.layout import CATEGORIES, Bbox, Door, Layout, Wall, Window, format_layout

NUM_BINS = 1280


def make_room(rng: np.random.Generator) -> Layout:
    """A rectangular room (sometimes with a partition wall) with openings and furniture, metres."""
    width, depth = rng.uniform(3.0, 8.0), rng.uniform(3.0, 7.0)
    x0, y0, height = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(2.5, 3.1)
    corners = [(x0, y0), (x0 + width, y0), (x0 + width, y0 + depth), (x0, y0 + depth)]
    edges = zip(corners, corners[1:] + corners[:1], strict=True)
    walls = [Wall(i, *a, 0.0, *b, 0.0, height, 0.2) for i, (a, b) in enumerate(edges)]
    if rng.random() < 0.5:
        x = x0 + rng.uniform(0.3, 0.7) * width
        walls.append(Wall(4, x, y0, 0.0, x, y0 + rng.uniform(0.4, 0.9) * depth, 0.0, height, 0.1))
    doors, windows = [], []
    # (width, height, centre z) metres
    for kind, count, size in ((Door, rng.integers(1, 3), (0.9, 2.0, 1.0)),
                              (Window, rng.integers(1, 4), (1.4, 1.2, 1.5))):
        for i in range(count):
            wall = walls[rng.integers(0, 4)]
            t = rng.uniform(0.2, 0.8)
            centre = (wall.ax + t * (wall.bx - wall.ax), wall.ay + t * (wall.by - wall.ay), size[2])
            opening = kind(i, wall.id, *centre, size[0] * rng.uniform(0.8, 1.3), size[1] * rng.uniform(0.9, 1.1))
            (doors if kind is Door else windows).append(opening)
    boxes = []
    for i in range(int(rng.integers(10, 21))):
        scale = rng.uniform([0.3, 0.3, 0.2], [2.2, 1.5, 2.0])
        angle = rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2])
        angle += rng.normal(0, 0.3) if rng.random() < 0.3 else 0.0
        centre = (x0 + rng.uniform(0.5, width - 0.5), y0 + rng.uniform(0.5, depth - 0.5), scale[2] / 2)
        boxes.append(Bbox(i, str(rng.choice(CATEGORIES)), *centre, float(angle), *map(float, scale)))
    return Layout(walls, doors, windows, boxes)


def perturb(gt: Layout, rng: np.random.Generator) -> Layout:
    """A plausible model output: jittered, with misses, extras and relabelled boxes, quantised to model bins."""
    def jitter(value: float, sigma: float) -> float:
        return float(value + rng.normal(0.0, sigma))

    walls = [Wall(w.id, jitter(w.ax, 0.08), jitter(w.ay, 0.08), w.az, jitter(w.bx, 0.08), jitter(w.by, 0.08), w.bz,
                  jitter(w.height, 0.05), w.thickness) for w in gt.walls if rng.random() > 0.1]
    if rng.random() < 0.3:
        w = gt.walls[0]
        walls.append(Wall(9, w.ax + 1.0, w.ay + 0.6, 0.0, w.bx - 1.0, w.by + 0.6, 0.0, w.height, 0.1))
    wall_ids = {w.id for w in walls}
    doors = [Door(d.id, d.wall_id, jitter(d.position_x, 0.1), jitter(d.position_y, 0.1), jitter(d.position_z, 0.05),
                  jitter(d.width, 0.1), jitter(d.height, 0.1)) for d in gt.doors if d.wall_id in wall_ids]
    windows = [Window(d.id, d.wall_id, jitter(d.position_x, 0.15), jitter(d.position_y, 0.15),
                      jitter(d.position_z, 0.1), jitter(d.width, 0.2), jitter(d.height, 0.1))
               for d in gt.windows if d.wall_id in wall_ids and rng.random() > 0.2]
    boxes = []
    for b in gt.bboxes:
        if rng.random() < 0.2:
            continue
        name = str(rng.choice(CATEGORIES)) if rng.random() < 0.1 else b.class_name
        sx, sy, angle = b.scale_x, b.scale_y, b.angle_z
        if rng.random() < 0.15:  # the same box described with swapped extents and a quarter turn
            sx, sy, angle = sy, sx, angle + math.pi / 2
        boxes.append(Bbox(b.id, name, jitter(b.position_x, 0.12), jitter(b.position_y, 0.12),
                          jitter(b.position_z, 0.08), jitter(angle, 0.05), sx * rng.uniform(0.8, 1.2),
                          sy * rng.uniform(0.8, 1.2), b.scale_z * rng.uniform(0.8, 1.2)))
    for i in range(int(rng.integers(0, 4))):
        boxes.append(Bbox(100 + i, str(rng.choice(CATEGORIES)), *rng.uniform(1.0, 6.0, 2), 0.5, 0.0,
                          *rng.uniform(0.3, 1.5, 3)))
    # Through the model's bins, as saved predictions are; positions must stay inside the 0-32 m world range.
    return Layout(walls, doors, windows, boxes).discretize(NUM_BINS).undiscretize(NUM_BINS)


def write_scenes(root: Path, num_scenes: int, seed: int) -> tuple[Path, Path, Path, Path]:
    """pred/, gt/, test.csv and benchmark_categories.tsv (our default table) under root."""
    rng = np.random.default_rng(seed)
    pred_dir, gt_dir = root / "pred", root / "gt"
    pred_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    names = [f"scene{i:05d}" for i in range(num_scenes)]
    for name in names:
        gt = make_room(rng)
        (gt_dir / f"{name}.txt").write_text(format_layout(gt))
        (pred_dir / f"{name}.txt").write_text(format_layout(perturb(gt, rng)))
    metadata = root / "test.csv"
    metadata.write_text("id,pcd,layout\n" + "".join(f"{n},pcd/{n}.ply,layout/{n}.txt\n" for n in names))
    mapping = root / "benchmark_categories.tsv"
    mapping.write_text("spatiallm59\tspatiallm20\n" + "".join(f"{k}\t{v}\n" for k, v in DEFAULT_MAPPING.items()))
    return pred_dir, gt_dir, metadata, mapping


def run_spatiallm(eval_py: Path, python: str, pred_dir: Path, gt_dir: Path, metadata: Path,
                  mapping: Path) -> tuple[float, dict[str, tuple[float | None, float | None]]]:
    """Run SpatialLM's eval.py; its wall time and its table rows {class: (F1@.25, F1@.50)}."""
    env = {**os.environ, "PYTHONPATH": str(eval_py.parent)}
    command = [python, str(eval_py), "--metadata", str(metadata), "--gt_dir", str(gt_dir), "--pred_dir",
               str(pred_dir), "--label_mapping", str(mapping)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"SpatialLM eval.py failed:\n{done.stderr[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"SpatialLM eval.py CPU time: {usage.ru_utime + usage.ru_stime:.1f} s (imports included)")
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("Layouts", "Objects") and not re.match(r"^[-+]*$", line.strip()):
            rows[cells[0]] = tuple(None if v == "--" else float(v) for v in cells[1:])
    return seconds, rows


def compare(report: EvalReport, rows: dict[str, tuple[float | None, float | None]]) -> int:
    """Print every class whose F1 differs from SpatialLM's; return how many differ."""
    differences = 0
    for class_name in (*report.layout_classes, *report.object_classes):
        ours = (report.f1(class_name, 0.25), report.f1(class_name, 0.5))
        theirs = rows.get(class_name)
        if theirs != ours:
            differences += 1
            print(f"  DIFFERENT {class_name}: ours {ours} SpatialLM {theirs}")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="time the evaluation this many times; report the best")
    parser.add_argument("--keep", type=Path, help="write the scenes here instead of a temporary folder")
    parser.add_argument("--compare-with", type=Path, help="SpatialLM's eval.py, run on the same scenes")
    parser.add_argument("--compare-python", default=sys.executable, help="interpreter for SpatialLM's eval.py")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        start = time.perf_counter()
        pred_dir, gt_dir, metadata, mapping = write_scenes(root, args.scenes, args.seed)
        print(f"generated {args.scenes} scene pairs in {time.perf_counter() - start:.1f} s under {root}")

        timings, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            report = evaluate_folders(pred_dir, gt_dir, metadata=metadata)
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        # On a shared machine wall time includes waiting for a core; CPU time is what an idle machine would take.
        print(f"spatialvlm eval: {args.scenes} scenes in {min(timings):.2f} s wall, {min(cpu):.2f} s CPU "
              f"(best of {args.repeats}; wall: {', '.join(f'{t:.2f}' for t in timings)})")
        for class_name in (*report.layout_classes, *report.object_classes):
            f1 = [report.f1(class_name, t) for t in report.thresholds]
            print(f"  {class_name:16s} " + "  ".join("--" if v is None else f"{v:.4f}" for v in f1))

        if args.compare_with:
            seconds, rows = run_spatiallm(args.compare_with, args.compare_python, pred_dir, gt_dir, metadata, mapping)
            print(f"SpatialLM eval.py: {args.scenes} scenes in {seconds:.1f} s "
                  f"({seconds / min(timings):.1f}x the time of spatialvlm eval)")
            differences = compare(report, rows)
            print("identical F1 for every class" if differences == 0 else f"{differences} class(es) differ")
            sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
