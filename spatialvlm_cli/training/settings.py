"""What decides a training run's weights (with its examples): `TrainSettings`, as `spatialvlm train`, the scripts
and a run's checkpoint hold them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.layout.request import DEFAULT_ALL_SHARE
from spatialvlm_cli.training.augment import Augmentation
from spatialvlm_cli.training.parameters import check_freeze

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
