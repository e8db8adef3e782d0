"""`spatialvlm train`: fine-tune any SpatialLM-style model (or train a preset from scratch) with the PE to study."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spatialvlm_cli.cli.console import terminal
from spatialvlm_cli.cli.options import MODEL_PANEL, ConfigOpt, DeviceOpt, MergeRuleOpt, PeOptionOpt, VlmPeOpt
from spatialvlm_cli.errors import InputError, OutputError
from spatialvlm_cli.layout.request import DEFAULT_ALL_SHARE

if TYPE_CHECKING:
    from spatialvlm_cli.training.run import TrainingJob

DATA_PANEL = "Data and held-out evaluation"
TRAIN_PANEL = "What to train"
SCHEDULE_PANEL = "Schedule and checkpoints"
RECIPE_PANEL = "Synthetic-room recipe (the shipped model's losses)"


def train_command(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run folder: checkpoints, the final model (loads with --model), "
                     "training.json, progress.jsonl, curve.jsonl (required)."),
    ] = None,
    model: Annotated[
        str,
        typer.Option("--model", "-m", rich_help_panel=MODEL_PANEL,
                     help="What training starts from: a checkpoint directory, hub id, shipped model, or a preset "
                     "(its seeded random weights: training from scratch)."),
    ] = "spatialvlm-rooms",
    vlm_pe: VlmPeOpt = None,
    pcd_pe_merge_rule: MergeRuleOpt = None,
    pe_option: PeOptionOpt = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", rich_help_panel=DATA_PANEL,
                     help="Training scans: a SpatialLM data folder (pcd/ + layout/), its ShareGPT .json, or a "
                     "folder of .ply + .txt pairs. Without it: --rooms synthetic rooms."),
    ] = None,
    rooms: Annotated[
        int, typer.Option("--rooms", rich_help_panel=DATA_PANEL, help="Synthetic training rooms, without --data.")
    ] = 0,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", rich_help_panel=DATA_PANEL,
                     help="Example cache (.pt), built when missing or stale. Default: OUTPUT/examples.pt."),
    ] = None,
    heldout: Annotated[
        Path | None,
        typer.Option("--heldout", rich_help_panel=DATA_PANEL,
                     help="Held-out .ply + .txt pairs scored (greedy, exact F1, metres) during training."),
    ] = None,
    eval_every: Annotated[
        int, typer.Option("--eval_every", "--eval-every", rich_help_panel=DATA_PANEL,
                          help="Score --eval_rooms held-out rooms every N steps into OUTPUT/curve.jsonl (0: never).")
    ] = 0,
    eval_rooms: Annotated[int, typer.Option("--eval_rooms", "--eval-rooms", rich_help_panel=DATA_PANEL)] = 8,
    workers: Annotated[
        int, typer.Option("--workers", rich_help_panel=DATA_PANEL, help="Processes that prepare examples.")
    ] = 2,
    augment_rotation: Annotated[
        str, typer.Option("--augment_rotation", "--augment-rotation", rich_help_panel=DATA_PANEL,
                          help="Turn every example about the vertical: none | right (a multiple of 90°, SpatialLM's "
                          "default) | uniform (any yaw, its random_rotation for scans not axis-aligned).")
    ] = "none",
    augment_scale: Annotated[
        float, typer.Option("--augment_scale", "--augment-scale", rich_help_panel=DATA_PANEL,
                            help="Scale every example by a factor in [1 - s, 1 + s] (SpatialLM: 0.25).")
    ] = 0.0,
    freeze: Annotated[
        list[str] | None,
        typer.Option("--freeze", rich_help_panel=TRAIN_PANEL,
                     help="Keep a group's weights (repeatable): point_backbone, projector, decoder. SpatialLM's "
                     "freeze_point_tower is point_backbone; its train_proj_only is point_backbone + decoder."),
    ] = None,
    lora_rank: Annotated[
        int, typer.Option("--lora_rank", "--lora-rank", rich_help_panel=TRAIN_PANEL,
                          help="Train LoRA adapters of this rank on the decoder instead of its weights (0: full; "
                          "needs pip install 'spatialvlm[lora]'); merged into the saved model.")
    ] = 0,
    lora_alpha: Annotated[
        float, typer.Option("--lora_alpha", "--lora-alpha", rich_help_panel=TRAIN_PANEL,
                            help="LoRA scale numerator (scale = alpha / rank).")
    ] = 32.0,
    lora_dropout: Annotated[float, typer.Option("--lora_dropout", "--lora-dropout", rich_help_panel=TRAIN_PANEL)] = 0.0,
    steps: Annotated[int, typer.Option("--steps", rich_help_panel=SCHEDULE_PANEL)] = 1000,
    batch_size: Annotated[
        int, typer.Option("--batch_size", "--batch-size", rich_help_panel=SCHEDULE_PANEL,
                          help="Scenes per step, over all processes.")
    ] = 4,
    lr: Annotated[
        float, typer.Option("--lr", rich_help_panel=SCHEDULE_PANEL,
                            help="Peak AdamW learning rate (warm-up, then cosine to a tenth).")
    ] = 1e-4,
    warmup_steps: Annotated[int, typer.Option("--warmup_steps", "--warmup-steps", rich_help_panel=SCHEDULE_PANEL)] = 30,
    seed: Annotated[
        int, typer.Option("--seed", rich_help_panel=SCHEDULE_PANEL, help="Initialisation and batch order.")
    ] = 0,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint_every", "--checkpoint-every", rich_help_panel=SCHEDULE_PANEL)
    ] = 100,
    stop_after: Annotated[
        int | None, typer.Option("--stop_after", "--stop-after", rich_help_panel=SCHEDULE_PANEL,
                                 help="Stop after this many steps of the schedule; --resume finishes it.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", rich_help_panel=SCHEDULE_PANEL,
                           help="Continue OUTPUT's run from its last checkpoint (same settings).")
    ] = False,
    then: Annotated[
        list[str] | None,
        typer.Option("--then", rich_help_panel=SCHEDULE_PANEL,
                     help="A further leg after this schedule (repeatable): the settings it changes as KEY=VALUE "
                     "words, e.g. --then 'steps=400 warmup_steps=20 all_share=0.2'. It starts from the previous "
                     "leg's last checkpoint with a new optimizer and schedule; earlier legs go to OUTPUT/leg-N, the "
                     "last to OUTPUT."),
    ] = None,
    init_from: Annotated[
        Path | None, typer.Option("--init_from", "--init-from", rich_help_panel=SCHEDULE_PANEL,
                                  help="Warm start: a new schedule from another run folder's last checkpoint "
                                  "(its weights and heads, not its optimizer).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", rich_help_panel=SCHEDULE_PANEL, help="torch threads per process.")
    ] = None,
    device: DeviceOpt = "auto",
    precision: Annotated[
        str, typer.Option("--precision", rich_help_panel=MODEL_PANEL,
                          help="fp32 | tf32 (CUDA) | bf16 | fp16 (CUDA): autocast; weights stay float32.")
    ] = "fp32",
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient_checkpointing", "--gradient-checkpointing", rich_help_panel=MODEL_PANEL,
                           help="Recompute the decoder layers' activations in the backward pass (less memory).")
    ] = False,
    sigma_bins: Annotated[
        float, typer.Option("--sigma_bins", "--sigma-bins", rich_help_panel=RECIPE_PANEL,
                            help="Width of the ordinal bin targets where every bin is one token (0: cross-entropy).")
    ] = 1.5,
    dense_weight: Annotated[
        float, typer.Option("--dense_weight", "--dense-weight", rich_help_panel=RECIPE_PANEL,
                            help="Per-point-token occupancy and room-extent loss (needs the generator's classes).")
    ] = 0.0,
    wall_offset_weight: Annotated[
        float, typer.Option("--wall_offset_weight", "--wall-offset-weight", rich_help_panel=RECIPE_PANEL,
                            help="Where in its cell each near-wall token's wall runs (needs --dense_weight).")
    ] = 0.0,
    box_weight: Annotated[
        float, typer.Option("--box_weight", "--box-weight", rich_help_panel=RECIPE_PANEL,
                            help="For each token in a box, that box's centre and size (needs --dense_weight).")
    ] = 0.0,
    pointer_weight: Annotated[
        float, typer.Option("--pointer_weight", "--pointer-weight", rich_help_panel=RECIPE_PANEL,
                            help="Every answer state that writes a box line must point at the point tokens holding "
                            "that box (needs --dense_weight).")
    ] = 0.0,
    pointer_layer: Annotated[
        int, typer.Option("--pointer_layer", "--pointer-layer", rich_help_panel=RECIPE_PANEL,
                          help="Point with the first attention head of this decoder layer instead of a head of its "
                          "own, so what it finds reaches the numbers (-1: its own head).")
    ] = -1,
    read_weight: Annotated[
        float, typer.Option("--read_weight", "--read-weight", rich_help_panel=RECIPE_PANEL,
                            help="The room extent from every answer position's last hidden state.")
    ] = 0.0,
    read_from_step: Annotated[int, typer.Option("--read_from_step", "--read-from-step", rich_help_panel=RECIPE_PANEL)
                              ] = 0,
    mix_prompts: Annotated[
        bool, typer.Option("--mix_prompts", "--mix-prompts", rich_help_panel=RECIPE_PANEL,
                           help="Draw SpatialLM's detect types and category prompts (answers filtered).")
    ] = False,
    all_share: Annotated[
        float, typer.Option("--all_share", "--all-share", rich_help_panel=RECIPE_PANEL,
                            help="With --mix_prompts: the share of requests that ask for everything.")
    ] = DEFAULT_ALL_SHARE,
    config: ConfigOpt = None,
) -> None:
    """Fine-tune a SpatialLM-style model (or train a preset from scratch) and save it as a checkpoint that loads
    with --model OUTPUT. Runs on CPU or a GPU; under torchrun every process trains its share of each batch.

    Examples:

    \b
      spatialvlm train -m spatialvlm-rooms -d scenes/ -o runs/ft --steps 200
      spatialvlm train -m ./SpatialLM1.1-Qwen-0.5B -o runs/lora \\
          -d arkitscenes-spatiallm/arkitscenes_train.json --lora_rank 16 \\
          --VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_only --freeze point_backbone
      spatialvlm train -m configs/train-rooms.yaml --rooms 3000 -o runs/rooms \\
          --steps 1500 --lr 1e-3 --dense_weight 1 --read_weight 10 \\
          --read_from_step 500 --mix_prompts \\
          --then 'steps=400 warmup_steps=20 all_share=0.2 read_from_step=0'
      spatialvlm train --config configs/train-shipped.yaml -o runs/shipped
      torchrun --standalone --nproc-per-node 2 -m spatialvlm_cli train \\
          ... --threads 1
    """
    from spatialvlm_cli.config import merge_config

    with terminal.err.status("checking flags and data …"):  # shown within a second, on a terminal
        job = build_job(merge_config(ctx, config))
    _run(job)


def build_job(values: dict[str, Any]) -> TrainingJob:
    """The training job the flags (merged with the YAML config) ask for. Raises InputError / OutputError /
    ConfigError before anything is trained."""
    from spatialvlm_cli.flags import parse_key_values
    from spatialvlm_cli.training import TrainSettings
    from spatialvlm_cli.training.run import TrainingJob, parse_legs, resolve_pe
    from spatialvlm_cli.training.scans import find_scans

    output = values["output"]
    if output is None:
        raise InputError("give the run folder with --output")
    if output.exists() and not output.is_dir():
        raise OutputError(f"'{output}' exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not values["resume"]:
        raise OutputError(f"'{output}' is not empty: add --resume to continue its run, or choose a new folder")
    if values["data"] is None and values["rooms"] <= 0:
        raise InputError("give training data: --data (scans) or --rooms N (synthetic rooms)")
    if values["data"] is not None:
        find_scans(values["data"])  # one line for a missing or empty data set, before the model loads
    if values["init_from"] is not None and not (values["init_from"] / "resume.pt").is_file():
        raise InputError(f"--init_from '{values['init_from']}' has no resume.pt (a run folder of spatialvlm train)")
    if values["heldout"] is not None and not values["heldout"].is_dir():
        raise InputError(f"--heldout '{values['heldout']}' is not a folder")
    vlm_pe, merge_rule, pe_options = resolve_pe(values["model"], values["vlm_pe"], values["pcd_pe_merge_rule"],
                                                parse_key_values(values["pe_option"], "--pe_option"))
    settings = TrainSettings(
        model=values["model"], vlm_pe=vlm_pe, merge_rule=merge_rule, pe_options=pe_options, steps=values["steps"],
        batch_size=values["batch_size"], lr=values["lr"], warmup_steps=min(values["warmup_steps"], values["steps"]),
        sigma_bins=values["sigma_bins"], seed=values["seed"], checkpoint_every=values["checkpoint_every"],
        dense_weight=values["dense_weight"], mix_prompts=values["mix_prompts"],
        all_share=values["all_share"], read_weight=values["read_weight"],
        read_from_step=values["read_from_step"], wall_offset_weight=values["wall_offset_weight"],
        box_weight=values["box_weight"], pointer_weight=values["pointer_weight"],
        pointer_layer=values["pointer_layer"],
        freeze=tuple(values["freeze"] or ()), lora_rank=values["lora_rank"], lora_alpha=values["lora_alpha"],
        lora_dropout=values["lora_dropout"], precision=values["precision"],
        gradient_checkpointing=values["gradient_checkpointing"], augment_rotation=values["augment_rotation"],
        augment_scale=values["augment_scale"],
        init_from=None if values["init_from"] is None else str(values["init_from"]),
    )
    job = TrainingJob(settings, output, scans=values["data"], rooms=values["rooms"], cache=values["cache"],
                      resume=values["resume"], stop_after=values["stop_after"], heldout=values["heldout"],
                      eval_every=values["eval_every"], eval_rooms=values["eval_rooms"], workers=values["workers"],
                      threads=values["threads"], device=values["device"], then=parse_legs(values["then"]))
    job.legs()  # a leg's bad settings fail here, before the model loads
    return job


def _run(job: TrainingJob) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
    from transformers.utils import logging as hf_logging

    from spatialvlm_cli.cli.environment import torchrun_launch
    from spatialvlm_cli.training.run import run_training

    hf_logging.disable_progress_bar()  # our bars say what is going on; transformers' would run into them
    launch = torchrun_launch()
    is_main = launch is None or launch[0] == 0
    settings = job.settings
    total = job.total_steps
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[status]}"), console=terminal.err, disable=not is_main) as progress:

        def on_built(count: int) -> None:
            if "examples" not in tasks:
                tasks["examples"] = progress.add_task("examples", total=count, status="")
            progress.advance(tasks["examples"])

        def on_step(step: int, loss: float) -> None:
            if "train" not in tasks:
                tasks["train"] = progress.add_task("train", total=total, status="")
            progress.update(tasks["train"], completed=step, status=f"loss {loss:.3f}")

        try:
            report = run_training(job, launch, on_built, on_step)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"continue with the same command and --resume (a checkpoint every "
                                    f"{settings.checkpoint_every} steps)") from None
    if not is_main:
        return
    if not report.losses:
        terminal.out.print(f"{job.out}: already trained ({report.steps} steps); load it with --model {job.out}",
                           markup=False, highlight=False)
        return
    terminal.out.print(f"{job.out}: {report.parameters / 1e6:.2f}M parameters, {report.steps} steps, "
                       f"{report.seconds / 60:.1f} min, final loss {report.losses[-1]:.3f}; "
                       f"load it with --model {job.out}", markup=False, highlight=False)
