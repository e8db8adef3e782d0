"""Scenes per hour of `spatialvlm infer -p FOLDER` three ways on the same rooms: one process scene by scene,
one process with `--batch_size B`, and R processes under torchrun (`--nproc-per-node R`), with the ratios.

    python scripts/bench_infer.py                       # 8 held-out rooms, shipped model, greedy, CPU
    python scripts/bench_infer.py --rooms 16 --batch-size 8 --ranks 2 --threads 1 --model tiny-qwen \
        --max-new-tokens 256

Each way is one fresh command, timed end to end (start-up and model load included: what a user waits for). Every
process gets --threads CPU threads, so R ranks use R times the cores of the other two ways. Greedy decoding: the
three ways must write the same text, which the script checks. Rooms come from the synthetic generator's held-out
seeds (as scripts/make_scenes.py writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spatialvlm_cli.synthetic import make_room, split_seed, write_ply


def _time(command: list[str], threads: int) -> float:
    """Seconds `command` takes; SystemExit with its last stderr line when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"error: {' '.join(command[:6])} … failed: {last}")
    return seconds


def _texts(folder: Path) -> dict[str, str]:
    return {path.stem: json.loads(path.read_text())["raw_text"] for path in sorted(folder.glob("*.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=8, help="Held-out rooms to run (indices 0 .. rooms-1).")
    parser.add_argument("--batch-size", type=int, default=4, help="--batch_size of the batched way.")
    parser.add_argument("--ranks", type=int, default=2, help="Processes of the torchrun way.")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every process (OMP_NUM_THREADS).")
    parser.add_argument("--model", default="spatialvlm-rooms", help="Anything --model takes.")
    parser.add_argument("--max-new-tokens", type=int, default=4096, help="--max_new_tokens of every way.")
    args = parser.parse_args()
    if min(args.rooms, args.batch_size, args.ranks, args.threads, args.max_new_tokens) < 1:
        parser.error("--rooms, --batch-size, --ranks, --threads and --max-new-tokens must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench_infer.") as tmp:
        root = Path(tmp)
        scenes = root / "scenes"
        scenes.mkdir()
        for index in range(args.rooms):
            room = make_room(split_seed("heldout", index))
            write_ply(scenes / f"room_{index:03d}.ply", room.points, room.colours)
        infer = ["-m", "spatialvlm_cli", "infer", "-p", str(scenes), "-m", args.model, "--greedy", "--device", "cpu",
                 "--max_new_tokens", str(args.max_new_tokens)]
        ways = [
            ("one process, scene by scene", [sys.executable, *infer, "-o", str(root / "sequential")]),
            (f"one process, --batch_size {args.batch_size}",
             [sys.executable, *infer, "-o", str(root / "batched"), "--batch_size", str(args.batch_size)]),
            (f"{args.ranks} processes (torchrun)",
             [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.ranks),
              *infer, "-o", str(root / "ranks")]),
        ]
        seconds = [_time(command, args.threads) for _, command in ways]
        same = _texts(root / "sequential") == _texts(root / "batched") == _texts(root / "ranks")
    print(f"{args.rooms} rooms, {args.model}, greedy, CPU, {args.threads} thread(s) per process; same text all three "
          f"ways: {'yes' if same else 'NO'}")
    print("| way | seconds | scenes per hour | ratio |")
    print("|---|---|---|---|")
    for (name, _), took in zip(ways, seconds, strict=True):
        print(f"| {name} | {took:.1f} | {args.rooms * 3600 / took:.0f} | {seconds[0] / took:.2f} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
