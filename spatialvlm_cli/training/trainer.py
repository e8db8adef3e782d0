"""Plain-PyTorch training loop for SpatialLM-style models: resumable, deterministic by seed.

Why not the transformers Trainer: one batch here is a list of variable-size point clouds beside the token ids, the
loss is our own (`objective.py`) and we run on 2 CPU cores as well as on GPUs. The loop is short enough to read
whole, and its state (model, heads, AdamW, step) is all a resume needs, since the data order is a function of
(seed, epoch).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.distributed import Ranks
from spatialvlm_cli.layout.request import ALL, Request
from spatialvlm_cli.training.augment import augment_example
from spatialvlm_cli.training.curve_plot import write_curve_png
from spatialvlm_cli.training.data import ExampleBuilder, LayoutExample, PromptMix, sample_request
from spatialvlm_cli.training.heldout import heldout_rooms, log_heldout
from spatialvlm_cli.training.loss import NumberVocabulary, init_number_embeddings
from spatialvlm_cli.training.memory import release_free_heap
from spatialvlm_cli.training.model import load_for_training
from spatialvlm_cli.training.objective import Objective
from spatialvlm_cli.training.parameters import add_lora, merge_lora, set_trainable
from spatialvlm_cli.training.settings import TrainSettings

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "resume.pt"
REPORT_FILE = "training.json"
# One line per logged window: step, mean loss, its weighted loss terms, learning rate, seconds.
PROGRESS_FILE = "progress.jsonl"


@dataclass
class TrainReport:
    """steps run in total; seconds of this run's training (a resumed run adds its earlier seconds); losses: mean
    loss (nats per target token) of every logged window of steps."""

    steps: int
    seconds: float
    losses: list[float]
    parameters: int


@lru_cache(maxsize=2)
def _epoch_order(num_examples: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_examples, generator=generator).tolist()


def batch_indices(step: int, batch_size: int, num_examples: int, seed: int) -> list[int]:
    """The examples of one step: epochs are seeded permutations, so any step's batch can be recomputed."""
    first = step * batch_size
    return [_epoch_order(num_examples, seed, position // num_examples)[position % num_examples]
            for position in range(first, first + batch_size)]


def train(
    settings: TrainSettings,
    examples: list[LayoutExample],
    out: Path,
    resume: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    log_every: int = 25,
    stop_after: int | None = None,
    heldout: Path | None = None,
    eval_every: int = 0,
    eval_rooms: int = 8,
    device: str = "cpu",
) -> TrainReport:
    """Train, checkpoint into `out` every `checkpoint_every` steps, and save the final model with `save_pretrained`
    (loadable with `load_spatiallm(out)`). resume: continue from `out/resume.pt` when it exists.
    on_step(step, loss) is called after every step (progress display). stop_after: end after this many steps of
    the `settings.steps` schedule (a time box); the checkpoint lets a later `resume` finish the schedule.
    heldout, eval_every, eval_rooms: every `eval_every` steps (and at the end) score greedy layouts of the first
    `eval_rooms` rooms of the `heldout` folder, append them to out/curve.jsonl (see `heldout.py`) and redraw
    out/curve.png (`curve_plot.py`). device: where the model trains (auto | cpu | cuda[:N] | mps).
    Under torchrun (a process group initialised by the caller) every process trains its share of each batch and
    rank 0 alone writes files (`spatialvlm_cli/distributed.py`); the result equals a one-process run."""
    if not examples:
        raise ValueError("no training examples")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    loaded = load_for_training(settings.model, settings.vlm_pe, settings.merge_rule, settings.pe_options, device,
                               attention_weights=settings.pointer_layer >= 0)
    model, tokenizer = loaded.model, loaded.tokenizer
    autocast, scaler = _precision(settings.precision, model.device)
    try:
        numbers = NumberVocabulary.from_tokenizer(tokenizer, loaded.num_bins, model.config.vocab_size)
    except ValueError as error:
        numbers = None
        log.info("bins are scored with plain cross-entropy: %s", error)
    if settings.ordinal_init and numbers is not None and loaded.random_weights:
        init_number_embeddings(model.get_input_embeddings(), numbers)
    mix = PromptMix(loaded.processor)
    augmentation, builder = settings.augmentation, ExampleBuilder(loaded.processor)
    objective = Objective(settings, loaded, mix, numbers, cache_labels=not augmentation.active)
    heads = objective.heads
    if settings.init_from:
        warm = torch.load(Path(settings.init_from) / CHECKPOINT_FILE, weights_only=False, map_location="cpu")
        model.load_state_dict(warm["model"])
        for name, head in heads.items():
            if warm.get(name) is not None:
                head.load_state_dict(warm[name])
    for head in heads.values():
        head.to(model.device)
    if settings.lora_rank > 0:
        add_lora(model, settings.lora_rank, settings.lora_alpha, settings.lora_dropout)
    set_trainable(model, settings.freeze, lora=settings.lora_rank > 0)
    if settings.gradient_checkpointing:
        transformers_seam.enable_activation_checkpointing(model)
    # Weight decay on matrices only: not on embeddings, norms or biases.
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 and "embed" not in name else no_decay).append(parameter)
    for head in heads.values():
        for parameter in head.parameters():
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.98),
    )
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    start_step, seconds_before, losses = 0, 0.0, []
    checkpoint_path = out / CHECKPOINT_FILE
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
        if TrainSettings.from_saved(state["settings"]) != settings:
            raise ValueError(f"'{checkpoint_path}' was written with other settings; start a fresh run elsewhere")
        model.load_state_dict(state["model"])
        for name, head in heads.items():
            head.load_state_dict(state[name])
        optimizer.load_state_dict(state["optimizer"])
        start_step, seconds_before, losses = state["step"], state["seconds"], state["losses"]
        log.info("resuming at step %d of %d", start_step, settings.steps)

    ranks = Ranks.current()
    end_step = settings.steps if stop_after is None else min(stop_after, settings.steps)
    rooms = heldout_rooms(heldout, eval_rooms) if heldout is not None and eval_every > 0 else []
    model.train()
    started = time.perf_counter()
    window: list[float] = []
    window_terms: dict[str, list[float]] = {}  # the weighted loss terms of the window's steps
    for step in range(start_step, end_step):
        batch_of_step = batch_indices(step, settings.batch_size, len(examples), settings.seed)
        requests = _requests(settings, step, [examples[i] for i in batch_of_step], mix) if settings.mix_prompts \
            else None
        indices = ranks.shard(batch_of_step)  # this process's examples of the step's batch
        requests = ranks.shard(requests) if requests is not None else None
        mine = [augment_example(examples[i], *augmentation.draw(settings.seed, step, i), builder)
                if augmentation.active else examples[i] for i in indices]
        batch = _on_device(mix.collate(mine, requests), model.device)
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(step)
        with autocast:
            terms = objective.terms(batch, mine, indices, step, ranks)
        optimizer.zero_grad(set_to_none=True)
        loss = sum(terms.values())
        (scaler.scale(loss) if scaler else loss).backward()
        ranks.sum_gradients(parameters)
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, settings.grad_clip)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        step_terms = dict(zip(terms, ranks.totals([term.item() for term in terms.values()]), strict=True))
        step_loss = sum(step_terms.values())
        window.append(step_loss)
        for name, value in step_terms.items():
            window_terms.setdefault(name, []).append(value)
        if len(window) == log_every or step + 1 == end_step:
            losses.append(sum(window) / len(window))
            mean_terms = {name: round(sum(values) / len(values), 4) for name, values in window_terms.items()}
            window, window_terms = [], {}
            if ranks.is_main:
                with (out / PROGRESS_FILE).open("a") as handle:
                    handle.write(json.dumps({"step": step + 1, "loss": round(losses[-1], 4), "terms": mean_terms,
                                             "lr": settings.learning_rate(step),
                                             "seconds": round(seconds_before + time.perf_counter() - started, 1)})
                                 + "\n")
            release_free_heap()
        if on_step:
            on_step(step + 1, step_loss)
        done = step + 1
        if ranks.is_main and (done % settings.checkpoint_every == 0 or done == end_step):
            _save_checkpoint(checkpoint_path, model, optimizer, settings, done,
                             seconds_before + time.perf_counter() - started, losses, heads)
        if ranks.is_main and rooms and (done % eval_every == 0 or done == end_step):
            paused = time.perf_counter()
            log_heldout(loaded, rooms, out, done)
            write_curve_png(out)
            started += time.perf_counter() - paused  # evaluation time is not training time

    seconds = seconds_before + time.perf_counter() - started
    model.eval()
    if settings.lora_rank > 0:
        merge_lora(model)
    report = TrainReport(steps=max(end_step, start_step), seconds=seconds, losses=losses,
                         parameters=sum(p.numel() for p in model.parameters()))
    if ranks.is_main:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / REPORT_FILE).write_text(
            json.dumps({"settings": asdict(settings), "stop_after": stop_after, "report": asdict(report),
                        "examples": len(examples), "processes": ranks.world, "device": str(model.device)},
                       indent=2)
            + "\n"
        )
    ranks.barrier()  # the saved model is complete before any process returns
    return report


def _precision(precision: str, device: torch.device) -> tuple[AbstractContextManager, torch.amp.GradScaler | None]:
    """The autocast context and gradient scaler (None unless fp16) of a precision on `device`. fp32: plain;
    tf32: fp32 with TensorFloat-32 matmuls (CUDA); bf16: bfloat16 autocast; fp16: float16 autocast with loss scaling
    (CUDA). Weights and optimizer state stay float32. ValueError where the device lacks the precision."""
    if precision in ("tf32", "fp16") and device.type != "cuda":
        raise ValueError(f"precision {precision} needs a CUDA device, not {device.type}")
    if precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        return torch.autocast(device.type, dtype=dtype), scaler
    return nullcontext(), None


def _on_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A collated batch with its tensors (and every point cloud) on `device`."""
    moved = {name: value.to(device) if isinstance(value, Tensor) else value for name, value in batch.items()}
    moved["point_clouds"] = [cloud.to(device) for cloud in batch["point_clouds"]]
    return moved


def _requests(settings: TrainSettings, step: int, batch: list[LayoutExample], mix: PromptMix) -> list[Request]:
    """Each example's request at `step`: a function of (seed, step), so a resumed run draws the same ones. Only an
    example that answers 'all' can answer a drawn request; others keep their own."""
    generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step + 7)
    requests = []
    for example in batch:
        text = mix.answer_text(example)
        present = sorted({line.split("(", 1)[1].split(",", 1)[0] for line in text.splitlines()
                          if line.startswith("bbox_")})
        drawn = sample_request(generator, present, settings.all_share)
        requests.append(drawn if example.request == ALL else example.request)
    return requests


def _save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, settings: TrainSettings,
                     step: int, seconds: float, losses: list[float],
                     heads: dict[str, Any] | None = None) -> None:
    state = {
        "model": model.state_dict(),
        **{name: head.state_dict() for name, head in (heads or {}).items()},
        "optimizer": optimizer.state_dict(),
        "settings": asdict(settings),
        "step": step,
        "seconds": seconds,
        "losses": list(losses),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def export_checkpoint(run: Path, dest: Path) -> int:
    """Save the model of `run/resume.pt` as a loadable checkpoint folder `dest` (config, weights, tokenizer), e.g.
    to score or ship a run's latest checkpoint while it keeps training. Returns the checkpoint's step."""
    state = torch.load(run / CHECKPOINT_FILE, weights_only=False)
    settings = TrainSettings.from_saved(state["settings"])
    loaded = load_for_training(settings.model, settings.vlm_pe, settings.merge_rule, settings.pe_options)
    if settings.lora_rank > 0:
        add_lora(loaded.model, settings.lora_rank, settings.lora_alpha, settings.lora_dropout)
    loaded.model.load_state_dict(state["model"])
    if settings.lora_rank > 0:
        merge_lora(loaded.model)
    loaded.model.eval()
    dest.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(dest)
    loaded.tokenizer.save_pretrained(dest)
    (dest / REPORT_FILE).write_text(json.dumps({"settings": state["settings"], "exported_from": str(run),
                                                "step": state["step"], "seconds": state["seconds"],
                                                "losses": state["losses"]}, indent=2) + "\n")
    return int(state["step"])
