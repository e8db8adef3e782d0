"""A synthetic equirectangular panorama of a box room, ray-cast from its inside (for `spatialvlm infer --image`).

The camera stands 1.5 m above the floor of a 6 m × 6 m × 2.7 m room, off centre. Walls have different colours
(front: yaw 0 at the image centre; right: +90°; back: the 360° seam at the image edges; left: -90°), with a door
on the front wall, a window on the right wall, a red picture on the back wall straddling the seam, a tiled floor
and a white ceiling. Shading falls off with distance. 2×2 supersampling.

    python scripts/make_panorama.py --out scenes/pano_room.png --width 1024
    python scripts/make_panorama.py --qa data/pano_qa --count 10 --width 512   # a QA folder for eval --task vqa

The rooms and the renderer live in `spatialvlm_cli/synthetic/panorama_rooms.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from spatialvlm_cli.synthetic.panorama_rooms import SHIPPED_ROOM, render_room, write_qa_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("scenes/pano_room.png"), help="Output .png or .jpg.")
    parser.add_argument("--width", type=int, default=1024, help="Panorama width in pixels (height = width / 2).")
    parser.add_argument("--qa", type=Path, default=None,
                        help="Instead: write a QA folder of random rooms (room_NNN.png + questions.jsonl) here.")
    parser.add_argument("--count", type=int, default=10, help="Rooms in the --qa folder.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the first --qa room (room i: seed + i).")
    args = parser.parse_args()
    if args.width < 64 or args.width % 2:
        parser.error("--width must be an even number of at least 64")
    if args.qa is not None:
        if args.count < 1:
            parser.error("--count must be at least 1")
        records = write_qa_set(args.qa, args.count, seed=args.seed, width=args.width)
        print(f"wrote {args.count} panoramas and {len(records)} questions to {args.qa}")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_room(SHIPPED_ROOM, args.width)).save(args.out)
    print(f"wrote {args.out} ({args.width}×{args.width // 2})")


if __name__ == "__main__":
    main()
