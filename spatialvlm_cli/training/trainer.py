"""Plain-PyTorch training loop for SpatialLM-style models: resumable, deterministic by seed.

Why not the transformers Trainer: one batch here is a list of variable-size point clouds beside the token ids, the
loss is our own (`objective.py`) and we run on 2 CPU cores as well as on GPUs. The loop is short enough to read
whole, and its state (model, heads, AdamW, step) is all a resume needs, since the data order is a function of
(seed, epoch).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.distributed import Ranks
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.layout.request import ALL, DEFAULT_ALL_SHARE, Request
from spatialvlm_cli.training.augment import Augmentation, augment_example
from spatialvlm_cli.training.curve_plot import write_curve_png
from spatialvlm_cli.training.data import ExampleBuilder, LayoutExample, PromptMix, sample_request
from spatialvlm_cli.training.heldout import heldout_rooms, log_heldout
from spatialvlm_cli.training.loss import NumberVocabulary, init_number_embeddings
from spatialvlm_cli.training.memory import release_free_heap
from spatialvlm_cli.training.model import load_for_training
from spatialvlm_cli.training.objective import Objective
from spatialvlm_cli.training.parameters import add_lora, check_freeze, merge_lora, set_trainable

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "resume.pt"
REPORT_FILE = "training.json"
# One line per logged window: step, mean loss, its weighted loss terms, learning rate, seconds.
PROGRESS_FILE = "progress.jsonl"
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


@dataclass
class TrainSettings:
    """Everything that decides the trained weights (with the examples). model: what training starts from, anything
    `--model` takes (a preset starts from its seeded random weights); vlm_pe, merge_rule, pe_options: the PE swapped
    in at load time, as `infer --VLM_PE` does. lr: peak AdamW learning rate, linear warm-up then cosine decay to
    lr * min_lr_ratio at `steps`; sigma_bins: width of the ordinal number targets (used where every bin is one
    token, as in the bundled tokenizer; elsewhere, e.g. Qwen2's digit-by-digit numbers, plain cross-entropy);
    ordinal_init: start a preset's number-token embeddings as sinusoids of their value (never a checkpoint's).
    dense_weight: weight of the dense per-token loss (`dense.py`; 0 turns it off); mix_prompts: draw each example's
    request (detect type, categories) from `REQUEST_MIX` and filter its answer, else always 'all'; all_share: the
    share of those requests that ask for everything (the rest teach the prompt: a lower share, more of it).
    read_weight: weight of the read loss: a linear head on the decoder's last hidden state at every answer position
    must give the room extent (`dense.py`), so the text positions are pushed to gather it from the point tokens.
    read_from_step: the first step with the read loss. Its gradient is ~20x the layout loss's at the start (measured:
    norm 7.9 against 0.4 on the model's weights at step 500), so under the global gradient clip a read loss from
    step 0 starves the layout text; starting it later lets the text come first.
    wall_offset_weight: weight of the dense head's wall-offset loss (`dense.py`; needs dense_weight > 0): where in
    its cell each near-wall token's wall runs, which the occupied cells alone cannot tell. box_weight: weight of the
    box head's loss (`dense.py`; needs dense_weight > 0): for each token in a box, that box's centre and size.
    pointer_weight: weight of the box pointer loss (`dense.py`; needs dense_weight > 0): every state that writes a
    box line must point at the point tokens holding that box. pointer_layer: -1 scores that pointing with a head of
    its own (`dense.PointerHead`); a decoder layer index asks it of the first attention head of that layer instead,
    so what the head finds flows on into the states that write the numbers (the model then trains with eager
    attention, which returns the weights).
    freeze: parameter groups that keep their weights (`parameters.FREEZABLE_GROUPS`); lora_rank: above 0, train
    LoRA adapters of this rank (scale lora_alpha / lora_rank, dropout lora_dropout) on the decoder instead of its
    weights, merged into the saved model (`parameters.py`). precision: fp32 | tf32 | bf16 | fp16 (autocast; the
    weights stay float32; tf32 and fp16 need CUDA); gradient_checkpointing: recompute the decoder layers'
    activations in the backward pass (less memory, more time). augment_rotation ("none" | "right" | "uniform") and
    augment_scale: every example of every step turned and scaled about its centre as SpatialLM's fine-tuning does
    (`augment.py`).
    init_from: a run folder whose resume.pt model (and heads) the weights start from (a warm start)."""

    model: str
    vlm_pe: str | None = None
    merge_rule: str | None = None
    pe_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    sigma_bins: float = 1.5
    ordinal_init: bool = True
    seed: int = 0
    checkpoint_every: int = 200
    dense_weight: float = 0.0
    mix_prompts: bool = False
    all_share: float = DEFAULT_ALL_SHARE
    read_weight: float = 0.0
    read_from_step: int = 0
    wall_offset_weight: float = 0.0
    box_weight: float = 0.0
    pointer_weight: float = 0.0
    pointer_layer: int = -1
    freeze: tuple[str, ...] = ()
    lora_rank: int = 0
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    augment_rotation: str = "none"
    augment_scale: float = 0.0
    init_from: str | None = None

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> TrainSettings:
        """Settings as a checkpoint stored them (`asdict`); checkpoints written before `model` named the starting
        point stored it as `architecture`."""
        values = dict(values)
        if "architecture" in values:
            values["model"] = values.pop("architecture")
        return cls(**values)

    def __post_init__(self) -> None:
        self.freeze = tuple(self.freeze)  # a list when read back from JSON
        check_freeze(self.freeze)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        Augmentation(self.augment_rotation, self.augment_scale)  # raises for values it cannot apply
        if not 0 < self.all_share < 1:
            raise ConfigError(f"the share of 'all' requests must lie between 0 and 1, got {self.all_share}")
        if max(self.wall_offset_weight, self.box_weight, self.pointer_weight) > 0 and self.dense_weight <= 0:
            raise ValueError("the wall-offset, box and pointer losses are parts of the dense loss: they need a dense "
                             "weight above 0")
        if self.pointer_layer >= 0 and self.pointer_weight <= 0:
            raise ConfigError("pointer_layer chooses where the pointer loss points: it needs a pointer weight above 0")

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(self.augment_rotation, self.augment_scale)

    def learning_rate(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


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
