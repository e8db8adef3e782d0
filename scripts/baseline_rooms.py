"""Baseline predictions for held-out rooms, scored like a model: constant room, empty layout, noisy ground truth.

    python scripts/baseline_rooms.py --heldout data/heldout --out out/baselines
    python scripts/baseline_rooms.py --heldout scenes --out out/baselines-scenes
    python scripts/baseline_rooms.py --results scripts/results/baselines   # also refresh the committed copy

For every `<room>.ply` in --heldout (with its ground truth `<room>.txt`) writes OUT/<baseline>/pred/<room>.txt:
  constant     the mean training room at the scan's min corner (`spatialvlm_cli.evaluation.baselines`): what a
               model that ignores the points can at best emit. The mean is taken over --train-rooms training rooms
               (the shipped model's 3,000 by default), each relative to its cleaned cloud's min corner as training
               sees it; cached in OUT/mean_room.json;
  empty        an empty layout;
  gt_noise     the ground truth with --noise metres of Gaussian noise on every position: a model that reads the
               scan well;
  gt_bins      the ground truth in --num-bins bins relative to the scan's min corner, read back: the best a room
               model can write (bins start at 0, so min-side walls are clipped onto the scan's min corner).
Then scores each folder as `eval_rooms.sh` scores a model (OUT/<baseline>/scores_exact.json with the geometry,
OUT/<baseline>/scores.json with SpatialLM's conventions) and prints one markdown row per baseline. With --results
DIR, each DIR/<baseline>/pred is replaced by a copy of OUT/<baseline>/pred (the committed predictions
`scripts/pe_table.py --baselines` reads, so they outlive the machine).
"""

from __future__ import annotations

import argparse
import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from spatialvlm_cli.evaluation.baselines import MeanRoom, binned_layout, constant_layout, mean_room, noisy_layout
from spatialvlm_cli.evaluation.benchmark import COLUMNS, format_figure, score_row
from spatialvlm_cli.io import PointCloud, read_point_cloud
from spatialvlm_cli.layout import Layout, format_layout, parse_layout
from spatialvlm_cli.preprocess import prepare_point_cloud
from spatialvlm_cli.synthetic import make_room, split_seed


def training_layout(index: int, num_bins: int) -> Layout:
    """Training room `index`'s ground truth relative to its cleaned cloud's min corner (metres), as training sees
    it."""
    room = make_room(split_seed("train", index))
    cloud = PointCloud(points=room.points.astype(np.float64), colors=room.colours.astype(np.float64) / 255.0)
    min_corner = prepare_point_cloud(cloud, num_bins).min_extent
    return room.layout.translate(tuple(-float(v) for v in min_corner))


def load_mean_room(out: Path, train_rooms: int, num_bins: int, workers: int) -> MeanRoom:
    cache = out / "mean_room.json"
    key = {"train_rooms": train_rooms, "num_bins": num_bins}
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return MeanRoom.from_json(data["mean_room"])
    with ProcessPoolExecutor(workers) as pool:
        layouts = list(pool.map(training_layout, range(train_rooms), [num_bins] * train_rooms, chunksize=50))
    room = mean_room(layouts)
    cache.write_text(json.dumps({"key": key, "mean_room": room.to_json()}, indent=1) + "\n")
    return room


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heldout", type=Path, default=Path("data/heldout"), help="Folder of <room>.ply + .txt.")
    parser.add_argument("--out", type=Path, default=Path("out/baselines"), help="Output folder.")
    parser.add_argument("--train-rooms", type=int, default=3000, help="Training rooms the mean is taken over.")
    parser.add_argument("--num-bins", type=int, default=1280, help="The model's bins (sets the cleanup voxel).")
    parser.add_argument("--noise", type=float, default=0.05, help="gt_noise: standard deviation, metres.")
    parser.add_argument("--workers", type=int, default=2, help="Processes for the training rooms.")
    parser.add_argument("--results", type=Path, help="Also copy each baseline's predictions to RESULTS/<name>/pred.")
    args = parser.parse_args()
    rooms = sorted(p for p in args.heldout.glob("*.ply") if p.with_suffix(".txt").is_file())
    if not rooms:
        parser.error(f"no <room>.ply with a <room>.txt in {args.heldout}")
    args.out.mkdir(parents=True, exist_ok=True)
    room = load_mean_room(args.out, args.train_rooms, args.num_bins, args.workers)
    print(f"mean room over {room.num_rooms} training rooms (metres from the min corner): x {room.x_min:.2f}.."
          f"{room.x_max:.2f}, y {room.y_min:.2f}..{room.y_max:.2f}")
    folders = {name: args.out / name / "pred" for name in ("constant", "empty", "gt_noise", "gt_bins")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for index, ply in enumerate(rooms):
        min_corner = prepare_point_cloud(read_point_cloud(ply), args.num_bins).min_extent
        gt, _ = parse_layout(ply.with_suffix(".txt").read_text(encoding="utf-8"))
        layouts = {"constant": constant_layout(room, min_corner), "empty": Layout(),
                   "gt_noise": noisy_layout(gt, args.noise, seed=index),
                   "gt_bins": binned_layout(gt, min_corner, args.num_bins)}
        for name, layout in layouts.items():
            (folders[name] / f"{ply.stem}.txt").write_text(format_layout(layout) + "\n", encoding="utf-8")
    print("| baseline | " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, folder in folders.items():
        row = score_row(name, folder, args.heldout)
        for report, file_name in ((row.exact, "scores_exact.json"), (row.spatiallm, "scores.json")):
            (args.out / name / file_name).write_text(json.dumps(report.to_json(), indent=1) + "\n")
        figures = row.figures()
        print(f"| {name} | " + " | ".join(format_figure(key, figures[key]) for key, _ in COLUMNS) + " |")
    if args.results is not None:
        for name, folder in folders.items():
            kept = args.results / name / "pred"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(folder, kept)
        print(f"predictions copied to {args.results}")


if __name__ == "__main__":
    main()
