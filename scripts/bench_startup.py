"""Wall time of the main job, `spatialvlm infer --point_cloud scenes/room_000.ply` (shipped model), against an
earlier commit of this repository in the same run, and of `scripts/batch_infer.sh` over a folder of rooms.

The earlier commit (--before, e.g. the last commit before the start-up work), and --after when given (else the
working tree as it is), are checked out into temporary git worktrees, removed at the end. Every run is a fresh
process (`python -m spatialvlm_cli`, run from the tree it measures), timed end to end: interpreter start, imports,
reading the scan, loading the model, generating, writing.
The two trees alternate, --runs times each; medians are reported with their ratio. Each run is done with
OMP_WAIT_POLICY unset (what a user's shell gives; the CLI now defaults it to PASSIVE itself) and with it set to
PASSIVE for both trees (the start-up work alone). Also in the same run: the import floor (`from transformers import
Qwen2ForCausalLM`, which any transformers model pays), `spatialvlm --help`, and one `-X importtime` breakdown of
the 'now' tree's run.

    python scripts/bench_startup.py --before d6f90dc --after HEAD
    python scripts/bench_startup.py --before HEAD~3 --runs 5 --folder-rooms 4
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from spatialvlm_cli.synthetic import make_room, split_seed, write_ply

REPO = Path(__file__).resolve().parent.parent
FLOOR = "from transformers import Qwen2ForCausalLM"


def run(command: list[str], cwd: Path, policy: str | None, env_extra: dict[str, str] | None = None) -> float:
    """Wall seconds of `command` run in `cwd`; SystemExit with its last stderr line when it fails."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    env.update({"HF_HUB_OFFLINE": "1", "NO_COLOR": "1", **(env_extra or {})})
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[:6])} … in {cwd} failed: "
                         f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}")
    return seconds


def import_breakdown(tree: Path, scene: Path, out: Path) -> dict[str, float]:
    """Seconds of import per package in one run of `tree` (`-X importtime`: the self time of every module, summed
    by its top-level package; the small ones together as 'other'), and the run's wall time."""
    command = [sys.executable, "-X", "importtime", "-m", "spatialvlm_cli", "infer", "--point_cloud", str(scene),
               "-o", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"})
    wall = time.perf_counter() - start
    totals: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if match:
            totals[match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    named = {name: seconds for name, seconds in totals.items() if seconds >= 0.1}
    return {**named, "other": sum(totals.values()) - sum(named.values()), "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the git commit to compare with (e.g. d6f90dc)")
    parser.add_argument("--after", default=None,
                        help="a git commit to measure as 'now' (default: this working tree as it is)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each tree and setting (default 3)")
    parser.add_argument("--scene", type=Path, default=REPO / "scenes" / "room_000.ply", help="the scan to run")
    parser.add_argument("--folder-rooms", type=int, default=3,
                        help="held-out rooms for the batch_infer.sh comparison (0: skip it)")
    args = parser.parse_args()
    if args.runs < 1 or args.folder_rooms < 0:
        parser.error("--runs must be at least 1 and --folder-rooms at least 0")
    scene = args.scene.resolve()
    if not scene.is_file():
        parser.error(f"--scene {scene} does not exist")
    with tempfile.TemporaryDirectory(prefix="bench_startup.") as tmp:
        root = Path(tmp)
        trees = {"before": root / "before", "now": REPO if args.after is None else root / "now"}
        for name, ref in (("before", args.before), ("now", args.after)):
            if ref is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(trees[name]),
                                ref], check=True)
        try:
            seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
            floor, helps = [], []
            for index in range(args.runs):
                for policy in (None, "PASSIVE"):
                    order = ("before", "now") if index % 2 == 0 else ("now", "before")
                    for name in order:
                        out = root / f"out-{name}-{policy}-{index}"
                        command = [sys.executable, "-m", "spatialvlm_cli", "infer", "--point_cloud", str(scene),
                                   "-o", str(out)]
                        seconds[(name, policy or "unset")].append(run(command, trees[name], policy))
                        print(f"run {index} {name:6s} OMP_WAIT_POLICY={policy or 'unset':7s} "
                              f"{seconds[(name, policy or 'unset')][-1]:.2f} s", file=sys.stderr)
                floor.append(run([sys.executable, "-c", FLOOR], REPO, "PASSIVE"))
                helps.append(run([sys.executable, "-m", "spatialvlm_cli", "--help"], REPO, None))
            folder = {}
            if args.folder_rooms:
                folder = batch_comparison(root, trees, args.folder_rooms)
            breakdown = import_breakdown(trees["now"], scene, root / "out-importtime")
        finally:
            for tree in trees.values():
                if tree != REPO:
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    print(f"\n`spatialvlm infer --point_cloud {scene.name}` (shipped model), {args.runs} runs each, medians; "
          f"before = {args.before}, now = {args.after or 'the working tree'}; load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print("| OMP_WAIT_POLICY | before s | now s | ratio |")
    print("|---|---|---|---|")
    for policy in ("unset", "PASSIVE"):
        then, now = (statistics.median(seconds[(name, policy)]) for name in ("before", "now"))
        print(f"| {policy} | {then:.2f} | {now:.2f} | {then / now:.2f}x |")
    print(f"\nimport floor, `python -c '{FLOOR}'`: {statistics.median(floor):.2f} s; `spatialvlm --help`: "
          f"{statistics.median(helps):.2f} s")
    parts = ", ".join(f"{name} {value:.2f} s" for name, value in sorted(breakdown.items(), key=lambda kv: -kv[1])
                      if name != "wall")
    print(f"imports of one 'now' run (-X importtime, {breakdown['wall']:.2f} s wall, "
          f"{sum(value for name, value in breakdown.items() if name != 'wall'):.2f} s importing): {parts}")
    if folder:
        print(f"\n`scripts/batch_infer.sh` over {args.folder_rooms} held-out rooms (OMP_WAIT_POLICY unset): before "
              f"{folder['before']:.1f} s, now {folder['now']:.1f} s, ratio {folder['before'] / folder['now']:.2f}x")
    return 0


def batch_comparison(root: Path, trees: dict[str, Path], rooms: int) -> dict[str, float]:
    """Seconds of each tree's scripts/batch_infer.sh over `rooms` held-out rooms (the synthetic generator's held-out
    seeds, as scripts/make_scenes.py writes them; a fresh output folder each)."""
    scenes = root / "scenes"
    scenes.mkdir()
    for index in range(rooms):
        room = make_room(split_seed("heldout", index))
        write_ply(scenes / f"room_{index:03d}.ply", room.points, room.colours)
    launcher = {"SPATIALVLM": f"{sys.executable} -m spatialvlm_cli"}
    return {name: run(["bash", str(tree / "scripts" / "batch_infer.sh"), str(scenes), str(root / f"batch-{name}")],
                      tree, None, launcher) for name, tree in trees.items()}


if __name__ == "__main__":
    sys.exit(main())
