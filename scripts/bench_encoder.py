"""Benchmark the pure-PyTorch Sonata encoder on a synthetic 100k-point room (CPU by default).

Reports the whole forward (SpatialLM 1.1 shapes, random weights): time, points/s, peak RSS; then the 24
submanifold convolutions of the encoder alone (kernel maps included), and, when spconv is installed, spconv's
``SubMConv3d`` doing the same convolutions on the same voxels and weights, timed interleaved with ours in
the same process so the ratio survives a noisy shared machine. The convolutions are timed with 1 thread
(the only setting where spconv's CPU build is correct) and with torch's default thread count.

    python scripts/bench_encoder.py                 # default: 100k points, 3 repeats
    python scripts/bench_encoder.py --repeats 5 --json
    python scripts/bench_encoder.py --threads 1     # e.g. to compare with spconv single-threaded
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

from spatialvlm_cli.encoders import build_point_encoder
from spatialvlm_cli.encoders.batch import VoxelBatch, batch_to_offset, offset_to_batch, sort_voxels
from spatialvlm_cli.encoders.voxels import downsample, spconv_offsets, submanifold_kernel_map
from spatialvlm_cli.model.presets import SPATIALLM_1_1_SHAPE, read_preset

logger = logging.getLogger("bench_encoder")

# SpatialLM 1.1's Sonata, from the preset of that model's sizes.
SONATA_1_1 = read_preset(SPATIALLM_1_1_SHAPE)["point_config"]


def make_room(num_points: int, grid_size_m: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 6 x 5 x 2.8 m room: floor, four walls and three boxes, points sampled uniformly by area with
    1.2 cm Gaussian noise, grid-sampled to one point per voxel (first point, scan order kept).

    Returns grid (V, 3) int64 cells and feat (V, 6) float32 [xyz metres from the min corner, rgb in [-1, 1]];
    100k points at 2.5 cm give ~87k voxels."""
    rng = np.random.default_rng(seed)
    length, width, height = 6.0, 5.0, 2.8
    # each rectangle: corner, edge u, edge v (metres)
    rects = [
        ((0, 0, 0), (length, 0, 0), (0, width, 0)),
        ((0, 0, 0), (length, 0, 0), (0, 0, height)),
        ((0, width, 0), (length, 0, 0), (0, 0, height)),
        ((0, 0, 0), (0, width, 0), (0, 0, height)),
        ((length, 0, 0), (0, width, 0), (0, 0, height)),
    ]
    for x, y, sx, sy, sz in [(1.0, 1.0, 1.2, 0.6, 0.8), (3.5, 2.5, 0.8, 0.8, 1.6), (4.5, 0.5, 1.0, 0.5, 0.5)]:
        rects += [
            ((x, y, sz), (sx, 0, 0), (0, sy, 0)),
            ((x, y, 0), (sx, 0, 0), (0, 0, sz)),
            ((x, y + sy, 0), (sx, 0, 0), (0, 0, sz)),
            ((x, y, 0), (0, sy, 0), (0, 0, sz)),
            ((x + sx, y, 0), (0, sy, 0), (0, 0, sz)),
        ]
    corner, u, v = (np.array([r[i] for r in rects], dtype=float) for i in range(3))
    area = np.linalg.norm(np.cross(u, v), axis=1)
    which = rng.choice(len(rects), size=num_points, p=area / area.sum())
    a, b = rng.random((num_points, 1)), rng.random((num_points, 1))
    xyz = corner[which] + a * u[which] + b * v[which] + rng.normal(0.0, 0.012, (num_points, 3))
    xyz -= xyz.min(axis=0)
    grid = np.floor(xyz / grid_size_m).astype(np.int64)
    _, first = np.unique(grid, axis=0, return_index=True)
    first = np.sort(first)
    rgb = rng.random((len(first), 3)) * 2 - 1
    feat = np.concatenate([xyz[first], rgb], axis=1).astype(np.float32)
    return torch.from_numpy(grid[first]), torch.from_numpy(feat)


def stage_voxels(grid: torch.Tensor) -> list[VoxelBatch]:
    """The voxels of the encoder's five stages (input order at stage 0, lexicographic afterwards)."""
    offset = torch.tensor([len(grid)])
    stages = [VoxelBatch(grid, offset_to_batch(offset), offset)]
    for _ in SONATA_1_1["stride"]:
        v = stages[-1]
        down = downsample(v.batch, v.grid_coord, 2, 1)
        stages.append(VoxelBatch(down.grid_coord, down.batch, batch_to_offset(down.batch, 1)))
    return stages


def time_ours(encoder, stages, feats) -> list[float]:
    """Seconds per stage: sort (stage 0), kernel map and the stage's CPE convolutions."""
    seconds = []
    for s, (voxels, feat) in enumerate(zip(stages, feats, strict=True)):
        start = time.perf_counter()
        if s == 0:  # the encoder sorts its input voxels first; count it
            voxels, perm = sort_voxels(voxels)
            feat = feat[perm]
        kernel_map = submanifold_kernel_map(voxels.batch, voxels.grid_coord, spconv_offsets(3))
        for block in [m for name, m in encoder.enc[f"enc{s}"].named_children() if name.startswith("block")]:
            block.cpe[0](feat, kernel_map)
        seconds.append(time.perf_counter() - start)
    return seconds


def time_spconv(spconv, encoder, stages, feats) -> list[float]:
    """Seconds per stage for spconv SubMConv3d (rule book built once per stage via indice_key); its CPU
    path refuses a fused bias, so the bias is added after, as a separate op (counted)."""
    seconds = []
    for s, (voxels, feat) in enumerate(zip(stages, feats, strict=True)):
        blocks = [m for name, m in encoder.enc[f"enc{s}"].named_children() if name.startswith("block")]
        convs = []
        for block in blocks:
            ours = block.cpe[0]
            conv = spconv.SubMConv3d(ours.weight.shape[-1], ours.weight.shape[0], 3, bias=False, indice_key=f"s{s}")
            conv.weight.data = ours.weight.data
            convs.append((conv, ours.bias))
        indices = torch.cat([voxels.batch[:, None], voxels.grid_coord], dim=1).int()
        start = time.perf_counter()
        x = spconv.SparseConvTensor(feat, indices, (voxels.grid_coord.max(0).values + 96).tolist(), 1)
        for conv, bias in convs:
            conv(x).features + bias
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000, help="points sampled in the room")
    parser.add_argument("--grid-size-m", type=float, default=0.025, help="voxel size in metres")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (min and median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--skip-spconv", action="store_true", help="do not time spconv even if installed")
    parser.add_argument("--forward-only", action="store_true", help="skip the convolution timings")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    grid, feat = make_room(args.points, args.grid_size_m)
    encoder = build_point_encoder("sonata", SONATA_1_1).eval()
    offset = torch.tensor([len(grid)])
    report: dict[str, object] = {
        "points": args.points,
        "voxels": len(grid),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_start": os.getloadavg()[0],  # other work on the machine inflates every figure
    }

    forward_s = []
    with torch.inference_mode():
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = encoder(grid, feat, offset)
            forward_s.append(time.perf_counter() - start)
    report["tokens"] = len(out.features)
    report["forward_s_min"] = min(forward_s)
    report["forward_s_median"] = statistics.median(forward_s)
    report["points_per_s"] = args.points / min(forward_s)
    report["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: KiB
    logger.info("forward: %s s, peak RSS %.2f GB", [round(t, 2) for t in forward_s], report["peak_rss_gb"])

    if args.forward_only:
        print(json.dumps(report, indent=2) if args.json else report)
        return 0
    stages = stage_voxels(grid)
    report["stage_voxels"] = [len(v.grid_coord) for v in stages]
    generator = torch.Generator().manual_seed(1)
    channels = SONATA_1_1["enc_channels"]
    feats = [torch.randn(len(v.grid_coord), c, generator=generator) for v, c in zip(stages, channels, strict=True)]
    try:
        import spconv.pytorch as spconv
    except ImportError:
        spconv = None
    if args.skip_spconv:
        spconv = None
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        # spconv's CPU SubMConv3d is only correct single-threaded (anchors.md); time both settings
        torch.set_num_threads(threads)
        ours_runs, spconv_runs = [], []
        with torch.no_grad():  # spconv fails on inference tensors
            for _ in range(args.repeats):  # interleaved so both see the same machine load
                ours_runs.append(time_ours(encoder, stages, feats))
                logger.info("%d thread(s), 24 convs, ours: %.2f s", threads, sum(ours_runs[-1]))
                if spconv is not None:
                    spconv_runs.append(time_spconv(spconv, encoder, stages, feats))
                    logger.info("%d thread(s), 24 convs, spconv: %.2f s", threads, sum(spconv_runs[-1]))
        key = f"t{threads}_"
        best = min(ours_runs, key=sum)
        report[key + "convs24_s_min"] = sum(best)
        report[key + "convs24_s_median"] = statistics.median(sum(r) for r in ours_runs)
        report[key + "convs24_stage_s"] = [round(t, 3) for t in best]
        if spconv_runs:
            best_spconv = min(spconv_runs, key=sum)
            spconv_median = statistics.median(sum(r) for r in spconv_runs)
            report[key + "spconv_convs24_s_min"] = sum(best_spconv)
            report[key + "spconv_convs24_s_median"] = spconv_median
            report[key + "spconv_convs24_stage_s"] = [round(t, 3) for t in best_spconv]
            report[key + "speedup_vs_spconv_min"] = sum(best_spconv) / sum(best)
            report[key + "speedup_vs_spconv_median"] = spconv_median / report[key + "convs24_s_median"]
    torch.set_num_threads(default_threads)
    report["load_average_end"] = os.getloadavg()[0]

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value:.3f}" if isinstance(value, float) else f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
