"""Train a SpatialLM-style model on synthetic rooms (CPU-friendly), save it as a checkpoint `infer` can load.

    python scripts/train_rooms.py --out runs/3d_rope --VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_only
    python scripts/train_rooms.py --out runs/none --VLM_PE None --steps 20 --train-rooms 16   # a quick try
    python scripts/train_rooms.py --out runs/3d_rope ... --resume                            # after an interruption
    torchrun --standalone --nproc-per-node 2 scripts/train_rooms.py --out runs/none --threads 1 ...  # 2 processes

The training rooms (generator seeds split_seed('train', 0..N-1)) are prepared once into --data and reused, so
every PE variant trains on identical batches. Held-out rooms come from disjoint seeds (scripts/make_scenes.py
--split heldout). The result in --out: config.json, model.safetensors, tokenizer files, training.json.
Under torchrun every process trains its share of each batch (gloo; same result as one process, see
spatialvlm_cli/distributed.py); rank 0 builds the room cache, shows progress and writes the files. The run itself is
`spatialvlm_cli.training.run`, which `spatialvlm train` shares.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from spatialvlm_cli.layout.request import DEFAULT_ALL_SHARE

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/rooms"),
                        help="Run folder: checkpoint, final model, training.json.")
    parser.add_argument("--model", default=os.path.relpath(REPO / "configs" / "train-rooms.yaml"),
                        help="What training starts from: a preset name or YAML (its seeded random weights; default: "
                             "the shipped model's architecture), a checkpoint folder, shipped model or hub id.")
    parser.add_argument("--VLM_PE", "--vlm-pe", dest="vlm_pe", default="None",
                        help="None, 3D_RoPE, MixedRoPE3D or 3D_Sinusoidal.")
    parser.add_argument("--PCD_PE_Merge_Rule", "--pcd-pe-merge-rule", dest="merge_rule", default=None,
                        help="3D_only or 3D_with_1D (default: the variant's).")
    parser.add_argument("--pe_option", "--pe-option", dest="pe_options", action="append", default=[],
                        help="PE option KEY=VALUE, repeatable (e.g. layout=interleaved).")
    parser.add_argument("--data", type=Path, default=None,
                        help="Example cache (.pt); built when missing. Default: data/train-<N>.pt.")
    parser.add_argument("--train-rooms", type=int, default=3000, help="Training rooms (seeds 0..N-1).")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--sigma-bins", type=float, default=1.5, help="Width of the ordinal number targets; 0: CE.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dense-weight", type=float, default=0.0,
                        help="Weight of the dense per-token loss (occupancy + room extent; 0: off).")
    parser.add_argument("--read-weight", type=float, default=0.0,
                        help="Weight of the read loss: the room extent from every answer position's last hidden state.")
    parser.add_argument("--read-from-step", type=int, default=0,
                        help="First step with the read loss (earlier steps learn the layout text first).")
    parser.add_argument("--wall-offset-weight", type=float, default=0.0,
                        help="Weight of the dense head's wall offset: where in its cell each near-wall token's wall "
                             "runs (needs --dense-weight; 0: off).")
    parser.add_argument("--box-weight", type=float, default=0.0,
                        help="Weight of the box head: each box token's box centre and size (needs --dense-weight; "
                             "0: off).")
    parser.add_argument("--pointer-weight", type=float, default=0.0,
                        help="Weight of the box pointer: every state writing a box line points at that box's tokens "
                             "(needs --dense-weight; 0: off).")
    parser.add_argument("--pointer-layer", type=int, default=-1,
                        help="Point with the first attention head of this decoder layer instead of a head of its own "
                             "(-1: its own head).")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="Warm start: begin from this run folder's resume.pt weights (not its optimizer).")
    parser.add_argument("--mix-prompts", action="store_true",
                        help="Train with SpatialLM's detect types and category prompts (answers filtered).")
    parser.add_argument("--all-share", type=float, default=DEFAULT_ALL_SHARE,
                        help="With --mix-prompts: the share of requests that ask for everything.")
    parser.add_argument("--then", action="append", default=[],
                        help="A further leg, the settings it changes as KEY=VALUE words (as spatialvlm train).")
    parser.add_argument("--heldout", type=Path, default=REPO / "data" / "heldout",
                        help="Held-out rooms (.ply + .txt) for the evaluation during training.")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="Score greedy layouts of --eval-rooms held-out rooms every N steps into curve.jsonl.")
    parser.add_argument("--eval-rooms", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--workers", type=int, default=2, help="Processes that prepare the training rooms.")
    parser.add_argument("--resume", action="store_true", help="Continue from --out/resume.pt if it exists.")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="Stop (and save) after this many steps of the --steps schedule; --resume finishes it.")
    parser.add_argument("--prepare-only", action="store_true", help="Build the --data cache, then stop.")
    parser.add_argument("--export", type=Path, default=None,
                        help="Only save --out/resume.pt's model as a checkpoint folder here (runs alongside training).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rich.logging import RichHandler
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from spatialvlm_cli.errors import SpatialVLMError
    from spatialvlm_cli.flags import parse_key_values, parse_vlm_pe
    from spatialvlm_cli.training import TrainSettings
    from spatialvlm_cli.training.run import TrainingJob, join_torchrun, parse_legs, prepare_examples, run_training

    if args.export:
        from spatialvlm_cli.training.trainer import export_checkpoint

        step = export_checkpoint(args.out, args.export)
        print(f"{args.export}: step {step} of {args.out}")
        return 0
    world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun's variables
    launch = (int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else None
    is_main = launch is None or launch[0] == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(show_path=False)])
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    try:
        settings = TrainSettings(
            model=args.model,
            vlm_pe=parse_vlm_pe(args.vlm_pe),
            merge_rule=args.merge_rule,
            pe_options=parse_key_values(args.pe_options, "--pe_option"),
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            warmup_steps=min(args.warmup_steps, args.steps),
            sigma_bins=args.sigma_bins,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
            dense_weight=args.dense_weight,
            mix_prompts=args.mix_prompts,
            all_share=args.all_share,
            read_weight=args.read_weight,
            read_from_step=args.read_from_step,
            wall_offset_weight=args.wall_offset_weight,
            box_weight=args.box_weight,
            pointer_weight=args.pointer_weight,
            pointer_layer=args.pointer_layer,
            init_from=str(args.init_from) if args.init_from else None,
        )
        job = TrainingJob(settings, args.out, rooms=args.train_rooms,
                          cache=args.data or REPO / "data" / f"train-{args.train_rooms}.pt", resume=args.resume,
                          stop_after=args.stop_after, heldout=args.heldout, eval_every=args.eval_every,
                          eval_rooms=args.eval_rooms, workers=args.workers, threads=args.threads,
                          then=parse_legs(args.then))
        job.legs()  # a leg's bad settings fail before anything is built
        with Progress(*columns, disable=not is_main) as progress:
            tasks: dict[str, TaskID] = {}

            def on_built(total: int) -> None:
                if "rooms" not in tasks:
                    tasks["rooms"] = progress.add_task("rooms", total=total, status="")
                progress.advance(tasks["rooms"])

            def on_step(step: int, loss: float) -> None:
                if "train" not in tasks:
                    tasks["train"] = progress.add_task("train", total=job.total_steps, status="")
                progress.update(tasks["train"], completed=step, status=f"loss {loss:.3f}")

            if args.prepare_only:
                examples = prepare_examples(job, join_torchrun(launch), on_built)
                print(f"{job.cache}: {len(examples)} rooms")
                return 0
            report = run_training(job, launch, on_built, on_step)
    except (SpatialVLMError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; continue with --resume (checkpoint every {args.checkpoint_every} steps)", file=sys.stderr)
        return 130
    if is_main and not report.losses:
        print(f"{args.out}: already trained ({report.steps} steps)")
    elif is_main:
        print(f"{args.out}: {report.parameters / 1e6:.2f}M parameters, {report.steps} steps, "
              f"{report.seconds / 60:.1f} min, final loss {report.losses[-1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
