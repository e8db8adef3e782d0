"""Prefill and per-token decode of stock float32 against the CPU fast path (`--quantize int8`), interleaved in one
run, at SpatialLM1.1-Qwen-0.5B's shape (`spatiallm1.1-qwen-0.5b-shape`, random weights) and at the shipped model's
(`spatialvlm-rooms`); ratios are to the stock float32 anchor (transformers' own KV cache) measured in the same run.

For each shape, in one process:
    speed      per repetition, three rows in turn (each leads in turn): stock float32 (transformers' dynamic KV
               cache), float32 on the tool's growing KV cache (`generation.kv_cache`, what `infer` runs), and int8 on
               it (`infer --quantize int8`); each one forward over a --length-token prompt (the decoder's prefill,
               logits of the last token) and --decode-tokens single-token steps on its KV cache; medians of process
               CPU time and wall time
    floor      the bytes a decode step must read (the decoder's linear weights and the LM head, in each path's
               dtype) over this machine's read bandwidth, measured in the same run (a 512 MB float32 sum, one thread)
    fidelity   on a held-out room's real prompt (its point tokens included): float32 generates --fidelity-tokens
               greedy tokens; both paths then score that text in one forward, and the share of positions where the
               fast path's argmax is float32's token is reported, with where the fast path's own greedy text first
               departs from float32's
Then, one child process per shape and model (float32, int8), the peak RSS of loading the model and running one
prefill and decode; and with --busy, the busy-machine figure: a child process per model and OMP_WAIT_POLICY (torch's
default spin-waiting, unset, against PASSIVE, the CLI's default) while another process keeps a core busy.

    python scripts/bench_decode.py                          # both shapes, 3 reps, 16 decode tokens, 800-token prompt
    python scripts/bench_decode.py --shapes 0.5b --reps 2 --busy
    python scripts/bench_decode.py --threads 1 --fidelity-tokens 512

The CPU may be shared with other jobs: read the ratios, not the absolute times, and the CPU-time columns when the
wall times are noisy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import logging as hf_logging

from spatialvlm_cli.generation.kv_cache import growing_cache
from spatialvlm_cli.io import read_point_cloud
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.model.loaded import LoadedModel
from spatialvlm_cli.model.quantize import DynamicInt8Linear, quantize_model
from spatialvlm_cli.preprocess import prepare_point_cloud
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache

SHAPES = {"0.5b": "spatiallm1.1-qwen-0.5b-shape", "shipped": "spatialvlm-rooms"}
PATHS = ("float32", "int8")  # the models: as loaded, and with --quantize int8
# The rows of the speed table: (model, whether the KV cache is the tool's growing cache). The first, transformers'
# own cache on the float32 model, is the anchor: stock transformers.
ROWS = {"float32, stock cache": ("float32", False), "float32, growing cache": ("float32", True),
        "int8, growing cache": ("int8", True)}
REPO = Path(__file__).resolve().parent.parent


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """(process CPU seconds, wall seconds, result) of fn(*args, **kwargs)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args, **kwargs)
    return time.process_time() - cpu, time.perf_counter() - wall, result


def speed(model: nn.Module, ids: torch.Tensor, decode_tokens: int, growing: bool) -> dict[str, float]:
    """Seconds: prefill over ids (1, L) and the median decode step after it (CPU and wall); growing: the KV cache
    is `growing_cache()` (what generate uses in this tool), else the model's default (transformers' dynamic cache)."""
    cache = {CACHE_ARGUMENT: growing_cache()} if growing else {}
    prefill_cpu, prefill_wall, out = timed(model, input_ids=ids, use_cache=True, logits_to_keep=1, **cache)
    steps = []
    for _ in range(decode_tokens):
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        cpu, wall, out = timed(model, input_ids=token, use_cache=True, **{CACHE_ARGUMENT: output_cache(out)})
        steps.append((cpu, wall))
    return {"prefill cpu": prefill_cpu, "prefill wall": prefill_wall,
            "decode cpu": statistics.median(cpu for cpu, _ in steps),
            "decode wall": statistics.median(wall for _, wall in steps)}


def decode_bytes(model: nn.Module) -> int:
    """Bytes one decode step reads from the weights: every linear layer of the decoder and the LM head (int8
    codes, scales and biases on the fast path), not the embedding lookup (one row)."""
    modules = [module for module in model.model.layers.modules() if isinstance(module, nn.Linear | DynamicInt8Linear)]
    modules.append(model.lm_head)
    tensors = [tensor for module in modules for tensor in (*module.parameters(), *module.buffers())]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def read_bandwidth() -> float:
    """Bytes per second one thread reads from memory: the best of three sums over 512 MB of float32."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = torch.ones(128 * 1024 * 1024)
    best = min(timed(data.sum)[1] for _ in range(3))
    torch.set_num_threads(threads)
    return data.numel() * data.element_size() / best


def room_inputs(loaded: LoadedModel, room: Path) -> dict[str, Any]:
    """The processor's inputs for a held-out room (its point tokens and the default prompt)."""
    prepared = prepare_point_cloud(read_point_cloud(room), loaded.num_bins)
    return loaded.processor([torch.from_numpy(prepared.rows)])


def fidelity(reference: nn.Module, fast: nn.Module, inputs: dict[str, Any], tokens: int) -> dict[str, float]:
    """Share of float32's greedy tokens that the fast path's argmax reproduces on float32's text (teacher-forced,
    one forward each), and the index of the first token where the fast path's own greedy text departs from it
    (-1: never, within the tokens float32 generated)."""
    settings = {"max_new_tokens": tokens, "do_sample": False, "pad_token_id": 0}
    prompt = inputs["input_ids"].shape[1]
    ours = reference.generate(**inputs, **settings)
    generated = ours[0, prompt:]
    theirs = fast.generate(**inputs, **settings)[0, prompt:]
    full = ours[:, :-1]
    forward = {"input_ids": full, "attention_mask": torch.ones_like(full), "point_clouds": inputs["point_clouds"]}
    predicted = fast(**forward).logits[0, prompt - 1:].argmax(-1)
    common = min(len(generated), len(theirs))
    departs = next((index for index in range(common) if generated[index] != theirs[index]), -1)
    if departs == -1 and len(theirs) != len(generated):
        departs = common
    return {"tokens": len(generated), "agreement": float((predicted == generated).float().mean()),
            "departs": departs}


def measure_shape(shape: str, args: argparse.Namespace, room: Path) -> dict[str, Any]:
    """Speed, decode floor and fidelity of both paths at one shape, in this process."""
    loaded = load_spatiallm(SHAPES[shape], device="cpu")
    models = {"float32": loaded.model, "int8": copy.deepcopy(loaded.model)}
    quantize_model(models["int8"], "int8")
    vocab = loaded.model.config.vocab_size
    ids = torch.randint(10, min(vocab, 30000), (1, args.length), generator=torch.Generator().manual_seed(0))
    results: dict[str, dict[str, list[float]]] = {row: {} for row in ROWS}
    names = list(ROWS)
    with torch.inference_mode():
        for rep in range(args.reps):
            for row in names[rep % len(names):] + names[:rep % len(names)]:  # each row leads in turn
                path, growing = ROWS[row]
                for key, value in speed(models[path], ids, args.decode_tokens, growing).items():
                    results[row].setdefault(key, []).append(value)
                print(f"  {shape} rep {rep} {row}: prefill {results[row]['prefill wall'][-1]:.2f} s wall, decode "
                      f"{1e3 * results[row]['decode wall'][-1]:.1f} ms wall", file=sys.stderr)
        quality = fidelity(models["float32"], models["int8"], room_inputs(loaded, room), args.fidelity_tokens)
    return {"speed": {row: {key: statistics.median(values) for key, values in metrics.items()}
                      for row, metrics in results.items()},
            "bytes": {path: decode_bytes(model) for path, model in models.items()},
            "fidelity": quality}


def child(shape: str, path: str, args: argparse.Namespace) -> None:
    """One path in a fresh process, as the tool runs it: load (and quantize), prefill and decode on the growing
    cache; prints JSON with the speed and the peak RSS (bytes)."""
    loaded = load_spatiallm(SHAPES[shape], device="cpu", quantize="int8" if path == "int8" else "none")
    ids = torch.randint(10, min(loaded.model.config.vocab_size, 30000), (1, args.length),
                        generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        result = speed(loaded.model, ids, args.decode_tokens, growing=True)
    result["peak rss"] = peak_rss()
    print(json.dumps(result))


def peak_rss() -> float:
    """This process's peak resident memory in bytes: VmHWM, which starts afresh at exec (getrusage's ru_maxrss keeps
    the forking parent's peak), or ru_maxrss where /proc is missing."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def run_child(shape: str, path: str, args: argparse.Namespace, policy: str | None) -> dict[str, float]:
    """`child` in a subprocess with OMP_WAIT_POLICY=policy (None: unset, torch's default)."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    env.update({"OMP_WAIT_POLICY": policy} if policy else {})
    command = [sys.executable, __file__, "--child", shape, path, "--length", str(args.length), "--decode-tokens",
               str(args.decode_tokens), "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: child {shape} {path} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def busy_figures(args: argparse.Namespace) -> dict[tuple[str | None, str], dict[str, float]]:
    """Both paths at the first shape, with OMP_WAIT_POLICY unset and PASSIVE, beside a process that keeps one core
    busy (a Python loop) for the whole measurement."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return {(policy, path): run_child(args.shapes[0], path, args, policy)
                for policy in (None, "PASSIVE") for path in PATHS}
    finally:
        burner.kill()
        burner.wait()


def report(shape: str, result: dict[str, Any], bandwidth: float, rss: dict[str, float],
           args: argparse.Namespace) -> None:
    """One shape's table (ratios to stock float32), its decode floors and its fidelity line."""
    anchor = result["speed"][next(iter(ROWS))]
    print(f"\n### {SHAPES[shape]}: prefill {args.length} tokens, {args.reps} reps x {args.decode_tokens} decode steps, "
          f"{torch.get_num_threads()} threads; medians, ratio = stock float32 / row (same run)\n")
    print("| row | prefill CPU s | ratio | prefill wall s | ratio | decode CPU ms | ratio | decode wall ms | ratio | "
          "decode floor ms | peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (path, _) in ROWS.items():
        row = result["speed"][name]
        cells = [f"{row[key] * scale:.{digits}f} | {anchor[key] / row[key]:.2f}x"
                 for key, scale, digits in (("prefill cpu", 1, 2), ("prefill wall", 1, 2), ("decode cpu", 1e3, 1),
                                            ("decode wall", 1e3, 1))]
        floor = 1e3 * result["bytes"][path] / bandwidth
        print(f"| {name} | {' | '.join(cells)} | {floor:.1f} ({result['bytes'][path] / 1e6:.0f} MB) | "
              f"{rss[path] / 1e9:.2f} |")
    quality = result["fidelity"]
    departs = "never" if quality["departs"] == -1 else f"at token {quality['departs']}"
    print(f"\nfidelity on a held-out room: the int8 argmax is float32's greedy token at "
          f"{100 * quality['agreement']:.1f} % of {quality['tokens']} positions (teacher-forced); int8's own greedy "
          f"text departs {departs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES), help="shapes to measure")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of both paths (default 3)")
    parser.add_argument("--decode-tokens", type=int, default=16, help="decode steps per repetition (default 16)")
    parser.add_argument("--length", type=int, default=800, help="prefill tokens (default 800)")
    parser.add_argument("--fidelity-tokens", type=int, default=256, help="greedy tokens scored for fidelity")
    parser.add_argument("--room", type=Path, default=REPO / "data" / "heldout" / "room_000.ply",
                        help="the held-out room whose prompt the fidelity is measured on")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--busy", action="store_true", help="also the busy-machine figure (child processes)")
    parser.add_argument("--child", nargs=2, metavar=("SHAPE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.reps, args.decode_tokens, args.length, args.fidelity_tokens) < 1:
        parser.error("--reps, --decode-tokens, --length and --fidelity-tokens must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    if args.child:
        child(*args.child, args)
        return 0
    if not args.room.is_file():
        parser.error(f"--room {args.room} does not exist (scripts/make_scenes.py --out data/heldout --split heldout)")
    load = os.getloadavg()[0]
    bandwidth = read_bandwidth()
    print(f"CPU read bandwidth, one thread: {bandwidth / 1e9:.1f} GB/s; load average {load:.1f} at the start; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    for shape in args.shapes:
        result = measure_shape(shape, args, args.room)
        rss = {path: run_child(shape, path, args, "PASSIVE")["peak rss"] for path in PATHS}
        report(shape, result, bandwidth, rss, args)
    if args.busy:
        figures = busy_figures(args)
        print(f"\n### busy machine: {SHAPES[args.shapes[0]]} beside one process spinning on a core "
              f"(load average {os.getloadavg()[0]:.1f} at the end), {torch.get_num_threads()} threads\n")
        print("| OMP_WAIT_POLICY | path | prefill wall s | decode wall ms |")
        print("|---|---|---|---|")
        for (policy, path), row in figures.items():
            print(f"| {policy or 'unset (torch default)'} | {path} | {row['prefill wall']:.2f} | "
                  f"{1e3 * row['decode wall']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
