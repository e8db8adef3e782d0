"""Cost of each positional encoding relative to stock RoPE (`None`), at Qwen2-0.5B shapes on CPU.

One random-weight fp32 Qwen2 decoder (vocab 151936, hidden 896, 24 layers, 14 heads / 2 kv heads, head_dim 64,
tied embeddings; ~494 M parameters, ~2 GB, ~12 s to build) is shared by all variants: each is attached, measured
and detached in turn. Per repetition and variant:
    prefill   one forward of 800 tokens (550 point tokens at random Sonata-like grid cells), logits of the last token
    decode    single-token forwards on the KV cache after that prefill (full-vocab logits, as in generate)
    tables    building the point tables of a prefill (stock rotary + the variant's tables: what a forward adds)
and, at the end, one layer's q/k rotation with the stock shared table vs MixedRoPE3D's per-head tables.
Variants run in a rotated order in every repetition (the CPU is shared, so drifts hit all of them) and the report
gives medians and each median as a ratio to `None`. Both process CPU time and wall time are recorded: on a CPU
shared with other jobs, wall time mostly measures the neighbours, CPU time the work this process did.

    python scripts/bench_pe.py                 # 3 repetitions, 8 decode tokens
    python scripts/bench_pe.py --reps 5 --decode-tokens 16 --threads 2
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from spatialvlm_cli.model.attention import point_rotary_for, use_point_attention
from spatialvlm_cli.pe import PointPositions, apply_rotary, build_position_encoding, normalize_coords
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache

log = logging.getLogger("bench_pe")

VARIANTS = [  # (label, name, merge rule, options)
    ("None", "None", None, {}),
    ("3D_RoPE 3D_only", "3D_RoPE", "3D_only", {}),
    ("3D_RoPE 3D_with_1D", "3D_RoPE", "3D_with_1D", {}),
    ("MixedRoPE3D 3D_only", "MixedRoPE3D", "3D_only", {}),
    ("MixedRoPE3D 3D_with_1D seed-compatible", "MixedRoPE3D", "3D_with_1D", {"param_layout": "seed-compatible"}),
    ("3D_Sinusoidal 3D_only", "3D_Sinusoidal", "3D_only", {}),
]


def qwen2_05b_shapes() -> Qwen2Config:
    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=True,
                       bos_token_id=151643, eos_token_id=151645)


def scene_positions(length: int, n_points: int, start: int, generator: torch.Generator) -> PointPositions:
    """One sequence: text, `n_points` point tokens from `start`, text; grid cells of a 80 x 60 x 15 cell room."""
    point_mask = torch.zeros(1, length, dtype=torch.bool)
    point_mask[0, start:start + n_points] = True
    extent = torch.tensor([80, 60, 15])
    cells = (torch.rand(n_points, 3, generator=generator) * extent).floor()
    return PointPositions.from_point_blocks(point_mask, [cells])


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[tuple[float, float], Any]:
    """(process CPU seconds, wall seconds) taken by fn(*args, **kwargs), and its result."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.process_time() - cpu, time.perf_counter() - wall), result


def measure(model: Qwen2ForCausalLM, pe, embeds: torch.Tensor, positions: PointPositions,
            decode_tokens: int) -> dict[str, float]:
    """Seconds (CPU and wall): prefill, median decode step, median rotary-table call (point positions active)."""
    decoder = model.model

    def prefill_forward() -> Any:
        prefill_embeds = pe.embed_points(embeds, positions)
        rotary = point_rotary_for(decoder, pe, prefill_embeds, positions)
        return model(inputs_embeds=prefill_embeds, position_ids=positions.position_ids, point_rotary=rotary,
                     use_cache=True, logits_to_keep=1)

    prefill, out = timed(prefill_forward)
    cache, token = output_cache(out), out.logits[:, -1].argmax(-1, keepdim=True)
    position = positions.position_ids[:, -1:]
    steps = []
    for _ in range(decode_tokens):
        position = position + 1
        step, out = timed(model, input_ids=token, position_ids=position, use_cache=True, **{CACHE_ARGUMENT: cache})
        cache, token = output_cache(out), out.logits[:, -1].argmax(-1, keepdim=True)
        steps.append(step)
    tables = [timed(point_rotary_for, decoder, pe, embeds, positions)[0] for _ in range(10)]
    return {"prefill cpu": prefill[0], "prefill wall": prefill[1],
            "decode cpu": statistics.median(step[0] for step in steps),
            "decode wall": statistics.median(step[1] for step in steps),
            "tables cpu": statistics.median(table[0] for table in tables)}


def rotation_costs(config: Qwen2Config, length: int, positions: PointPositions, repeats: int = 20) -> None:
    """Per-layer rotation at prefill shape, CPU ms: transformers' apply with a shared table vs our per-head tables."""
    shape = (1, config.num_attention_heads, length, config.hidden_size // config.num_attention_heads)
    q, k = torch.randn(shape), torch.randn(shape[0], config.num_key_value_heads, *shape[2:])
    rows = []
    for label, name, rule, options in VARIANTS[:1] + VARIANTS[3:5]:
        pe = build_position_encoding(name, rule, config, options)
        stock = (torch.ones(1, length, shape[-1]), torch.zeros(1, length, shape[-1]))
        if name == "None":
            tables = stock
        else:
            coords = normalize_coords(positions.point_coords, positions.point_mask, pe.options.coord_unit)
            tables = pe.tables_from_units(*stock, positions.point_mask, coords).for_layer(0)
        times = [timed(apply_rotary, q, k, *tables)[0][0] for _ in range(repeats)]
        rows.append(f"| {label} | {1e3 * statistics.median(times):.2f} |")
    print(f"\nOne layer's q/k rotation at {length} tokens (median CPU ms of {repeats})\n")
    print("| tables | rotation CPU ms |\n|---|---|")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every variant (default 3)")
    parser.add_argument("--decode-tokens", type=int, default=8, help="decode steps per repetition (default 8)")
    parser.add_argument("--length", type=int, default=800, help="prefill tokens (default 800)")
    parser.add_argument("--points", type=int, default=550, help="point tokens among them (default 550)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    config = qwen2_05b_shapes()
    log.info("building Qwen2-0.5B-shaped model (random fp32 weights), %d threads", torch.get_num_threads())
    torch.manual_seed(0)
    model = Qwen2ForCausalLM._from_config(config, attn_implementation="sdpa")
    use_point_attention(model.model)  # what a SpatialLM model's decoder runs (fresh random weights)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    embeds = torch.randn(1, args.length, config.hidden_size, generator=generator) * 0.02
    positions = scene_positions(args.length, args.points, (args.length - args.points) // 2, generator)

    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with torch.inference_mode():
        for rep in range(args.reps):
            shift = rep % len(VARIANTS)
            for label, name, rule, options in VARIANTS[shift:] + VARIANTS[:shift]:
                pe = build_position_encoding(name, rule, config, options)
                for key, seconds in measure(model, pe, embeds, positions, args.decode_tokens).items():
                    results[label][key].append(seconds)
                last = {key: values[-1] for key, values in results[label].items()}
                log.info("rep %d %-40s prefill %.2f s cpu / %.2f s wall, decode %.1f ms cpu / %.1f ms wall", rep,
                         label, last["prefill cpu"], last["prefill wall"], 1e3 * last["decode cpu"],
                         1e3 * last["decode wall"])

    base = {key: statistics.median(values) for key, values in results["None"].items()}
    print(f"\nQwen2-0.5B shapes, fp32, CPU ({torch.get_num_threads()} threads), prefill {args.length} tokens "
          f"({args.points} points), {args.reps} reps x {args.decode_tokens} decode tokens; medians, ratio to None\n")
    print("| variant | prefill CPU s | ratio | decode CPU ms | ratio | prefill wall s | ratio | decode wall ms | ratio "
          "| tables CPU ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, *_ in VARIANTS:
        median = {key: statistics.median(values) for key, values in results[label].items()}
        cells = [f"{median[key] * scale:.{digits}f} | {median[key] / base[key]:.3f}"
                 for key, scale, digits in (("prefill cpu", 1, 2), ("decode cpu", 1e3, 1), ("prefill wall", 1, 2),
                                            ("decode wall", 1e3, 1))]
        print(f"| {label} | {' | '.join(cells)} | {1e3 * median['tables cpu']:.2f} |")
    rotation_costs(config, args.length, positions)


if __name__ == "__main__":
    main()
