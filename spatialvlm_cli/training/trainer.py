"""Plain-PyTorch training loop for SpatialLM-style models on synthetic rooms: resumable, deterministic by seed.

Why not the transformers Trainer: one batch here is a list of variable-size point clouds beside the token ids, the
loss is our own (`layout_loss`, ordinal targets for bins) and we run on 2 CPU cores. The loop is short enough to
read whole, and its state (model, AdamW, step) is all a resume needs, since the data order is a function of
(seed, epoch).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from spatialvlm_cli.training.data import LayoutExample, PromptTemplate
from spatialvlm_cli.training.loss import NumberVocabulary, init_number_embeddings, layout_loss
from spatialvlm_cli.training.model import build_untrained_model

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "resume.pt"
REPORT_FILE = "training.json"


@dataclass
class TrainSettings:
    """Everything that decides the trained weights (with the examples). lr: peak AdamW learning rate, linear
    warm-up then cosine decay to lr * min_lr_ratio at `steps`; sigma_bins: width of the ordinal number targets."""

    architecture: str
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
) -> TrainReport:
    """Train, checkpoint into `out` every `checkpoint_every` steps, and save the final model with `save_pretrained`
    (loadable with `load_spatiallm(out)`). resume: continue from `out/resume.pt` when it exists.
    on_step(step, loss) is called after every step (progress display). stop_after: end after this many steps of
    the `settings.steps` schedule (a time box); the checkpoint lets a later `resume` finish the schedule."""
    if not examples:
        raise ValueError("no training examples")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    loaded = build_untrained_model(settings.architecture, settings.vlm_pe, settings.merge_rule, settings.pe_options)
    model, tokenizer = loaded.model, loaded.tokenizer
    numbers = NumberVocabulary.from_tokenizer(tokenizer, loaded.num_bins, model.config.vocab_size)
    if settings.ordinal_init:
        init_number_embeddings(model.get_input_embeddings(), numbers)
    template = PromptTemplate.from_processor(loaded.processor)
    # Weight decay on matrices only: not on embeddings, norms or biases.
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (decay if parameter.ndim >= 2 and "embed" not in name else no_decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.98),
    )
    start_step, seconds_before, losses = 0, 0.0, []
    checkpoint_path = out / CHECKPOINT_FILE
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, weights_only=False)
        if state["settings"] != asdict(settings):
            raise ValueError(f"'{checkpoint_path}' was written with other settings; start a fresh run elsewhere")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, seconds_before, losses = state["step"], state["seconds"], state["losses"]
        log.info("resuming at step %d of %d", start_step, settings.steps)

    end_step = settings.steps if stop_after is None else min(stop_after, settings.steps)
    model.train()
    started = time.perf_counter()
    window: list[float] = []
    for step in range(start_step, end_step):
        batch = template.collate([examples[i] for i in batch_indices(step, settings.batch_size, len(examples),
                                                                      settings.seed)])
        target_length = batch["target_length"]
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(step)
        # Only the last target_length + 1 positions predict target tokens: skip the head on the prompt.
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            point_clouds=batch["point_clouds"],
            logits_to_keep=target_length + 1,
        ).logits
        labels = batch["labels"][:, -target_length:]
        loss = layout_loss(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), numbers,
                           settings.sigma_bins)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        step_loss = loss.item()
        window.append(step_loss)
        if len(window) == log_every or step + 1 == end_step:
            losses.append(sum(window) / len(window))
            window = []
        if on_step:
            on_step(step + 1, step_loss)
        done = step + 1
        if done % settings.checkpoint_every == 0 or done == end_step:
            _save_checkpoint(checkpoint_path, model, optimizer, settings, done,
                             seconds_before + time.perf_counter() - started, losses)

    seconds = seconds_before + time.perf_counter() - started
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = TrainReport(steps=max(end_step, start_step), seconds=seconds, losses=losses,
                         parameters=sum(p.numel() for p in model.parameters()))
    (out / REPORT_FILE).write_text(
        json.dumps({"settings": asdict(settings), "stop_after": stop_after, "report": asdict(report),
                    "examples": len(examples)}, indent=2)
        + "\n"
    )
    return report


def _save_checkpoint(path: Path, model: Any, optimizer: Any, settings: TrainSettings, step: int, seconds: float,
                     losses: list[float]) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "settings": asdict(settings),
        "step": step,
        "seconds": seconds,
        "losses": list(losses),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
