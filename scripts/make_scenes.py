"""Write procedural rooms (`spatialvlm_cli.synthetic`) as .ply point clouds with ground-truth .txt layouts.

Room `index` of a split uses seed split_seed(split, index) (train and held-out seeds are disjoint) and is written as
{prefix}_{index:03d}.ply (binary, float xyz, uchar rgb) and {prefix}_{index:03d}.txt (SpatialLM's layout language,
metres, same frame as the points). One line per room reports its point and entity counts.

    python scripts/make_scenes.py --out scenes --split heldout --start 0 --count 3   # the shipped rooms
    python scripts/make_scenes.py --out /tmp/train --split train --start 0 --count 1000 --prefix train
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatialvlm_cli.layout import format_layout
from spatialvlm_cli.synthetic import make_room, split_seed, write_ply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Output folder (created if missing).")
    parser.add_argument("--split", choices=("train", "heldout"), default="heldout", help="Seed range to draw from.")
    parser.add_argument("--start", type=int, default=0, help="First room index.")
    parser.add_argument("--count", type=int, default=3, help="Number of rooms: indices start .. start + count - 1.")
    parser.add_argument("--prefix", default="room", help="File name prefix.")
    args = parser.parse_args()
    if args.start < 0 or args.count < 0:
        parser.error("--start and --count must be >= 0")
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(args.start, args.start + args.count):
        room = make_room(split_seed(args.split, index))
        stem = f"{args.prefix}_{index:03d}"
        write_ply(args.out / f"{stem}.ply", room.points, room.colours)
        (args.out / f"{stem}.txt").write_text(format_layout(room.layout) + "\n")
        layout = room.layout
        print(f"{stem}: {len(room.points)} points, {len(layout.walls)} walls, {len(layout.doors)} doors, "
              f"{len(layout.windows)} windows, {len(layout.bboxes)} boxes")


if __name__ == "__main__":
    main()
