"""Does `--align` give a turned scan the layout its upright scan gets? (issue 17)

For N held-out synthetic rooms, the shipped model (greedy) reads the upright scan as it is, and the same scan turned
by a random roll and pitch (up to 90 degrees either way) and yaw, read through `preprocess.read_scan` with
alignment. The turned run's layout, written in the levelled frame, is turned back into the room's frame (the
levelled frame differs from it by a turn about z) and both are scored against the ground truth with
`eval --exact --geometry`. Prints one row per leg: F1 at 0.25 for walls, doors, windows and objects, and the median
geometric errors in metres.

    python scripts/eval_turned_rooms.py --count 8 --out out/turned
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from spatialvlm_cli.evaluation import evaluate_folders
from spatialvlm_cli.generation import GenerationSettings
from spatialvlm_cli.layout import format_layout
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.pipeline import SceneSettings, infer_scene
from spatialvlm_cli.preprocess import ScanOptions, read_scan
from spatialvlm_cli.preprocess.align import rotation_z
from spatialvlm_cli.synthetic import make_room, split_seed, write_ply


def _turn(rng: np.random.Generator) -> np.ndarray:
    """A random rotation (3, 3): yaw in [-180, 180] degrees about z, then pitch about y and roll about x, each in
    [-90, 90] degrees."""
    roll, pitch = np.radians(rng.uniform(-90.0, 90.0, 2))
    yaw = math.radians(rng.uniform(-180.0, 180.0))
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    about_x = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    about_y = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    return about_x @ about_y @ rotation_z(yaw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=8, help="held-out rooms")
    parser.add_argument("--out", type=Path, default=Path("out/turned"))
    parser.add_argument("--seed", type=int, default=17, help="seed of the random turns")
    args = parser.parse_args()
    loaded = load_spatiallm("spatialvlm-rooms", device="cpu")
    settings = SceneSettings(generation=GenerationSettings(greedy=True, max_new_tokens=1024))
    rng = np.random.default_rng(args.seed)
    legs = {name: args.out / name for name in ("gt", "upright", "turned")}
    for folder in legs.values():
        folder.mkdir(parents=True, exist_ok=True)
    for index in range(args.count):
        room = make_room(split_seed("heldout", index))
        name = f"room_{index:03d}"
        (legs["gt"] / f"{name}.txt").write_text(format_layout(room.layout) + "\n")
        upright = legs["upright"] / f"{name}.ply"
        write_ply(upright, room.points, room.colours)
        result = infer_scene(loaded, upright, settings)
        (legs["upright"] / f"{name}.txt").write_text(format_layout(result.layout) + "\n")
        turn = _turn(rng)
        turned = legs["turned"] / f"{name}.ply"
        write_ply(turned, room.points.astype(np.float64) @ turn.T, room.colours)
        scan = read_scan(turned, ScanOptions(align=True))
        transform = scan[1]
        written = infer_scene(loaded, turned, settings, scan=scan).layout  # in the levelled frame, yaw undone
        # The levelled frame is the room's frame turned about z by psi: turn the layout back by -psi.
        levelled = transform.gravity @ turn
        psi = math.atan2(levelled[1, 0], levelled[0, 0])
        in_room = written.turned(-psi, 1.0, (0.0, 0.0, 0.0))
        (legs["turned"] / f"{name}.txt").write_text(format_layout(in_room) + "\n")
        tilt = math.degrees(math.acos(min(1.0, float(levelled[2, 2]))))
        print(f"{name}: turned scan levelled to {tilt:.2f} degrees off vertical, yaw {math.degrees(psi):.1f} degrees")
    print(f"{'leg':<9} {'wall':>6} {'door':>6} {'window':>6} {'objects':>8} {'extent m':>9} {'walls m':>8}")
    for leg in ("upright", "turned"):
        report = evaluate_folders(legs[leg], legs["gt"], exact=True, geometry=True)
        f1 = [report.f1(kind, 0.25) for kind in ("wall", "door", "window")]
        objects = report.group_mean("objects", 0.25)
        extent, walls = (report.geometry.summary(metric).median for metric in ("extent", "wall"))
        cells = [f"{100 * value:6.1f}" if value is not None else "     -" for value in f1]
        print(f"{leg:<9} {' '.join(cells)} {100 * (objects or 0.0):8.1f} {extent:9.3f} {walls:8.3f}")


if __name__ == "__main__":
    main()
