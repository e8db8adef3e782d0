"""Training examples: synthetic rooms -> (prepared cloud rows, layout target ids), cached, batched.

A room goes through exactly what `infer` does to a .ply (`prepare_point_cloud`, the processor's prompt with one
`<|point_pad|>` per encoder token), and its ground truth becomes the text the model should answer: the layout in
bins relative to the cleaned cloud's min corner (`decode_layout`'s inverse), then the end-of-turn token.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spatialvlm_cli.io import PointCloud
from spatialvlm_cli.layout import format_layout
from spatialvlm_cli.preprocess import prepare_point_cloud
from spatialvlm_cli.synthetic import SyntheticRoom, make_room, split_seed
from spatialvlm_cli.training.loss import IGNORE_INDEX

log = logging.getLogger(__name__)

DATA_FORMAT_VERSION = 1


@dataclass
class LayoutExample:
    """rows: (V, 9) float32 prepared cloud (see `PreparedCloud`); target_ids: (T,) int64 layout text + eos;
    num_point_tokens: encoder tokens of the cloud (M); seed: the room's generator seed."""

    rows: np.ndarray
    target_ids: np.ndarray
    num_point_tokens: int
    seed: int


class ExampleBuilder:
    """Turns rooms into examples for one architecture (its processor decides the point-token count)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.num_bins = int(processor.config.point_config["num_bins"])
        self.eos_id = int(processor.tokenizer.eos_token_id)

    def target_text(self, room: SyntheticRoom, min_extent: np.ndarray) -> str:
        """The answer text: ground truth in bins, relative to the prepared cloud's min corner."""
        shift = tuple(-float(v) for v in min_extent)
        return format_layout(room.layout.translate(shift).discretize(self.num_bins))

    def __call__(self, room: SyntheticRoom, seed: int) -> LayoutExample:
        cloud = PointCloud(points=room.points.astype(np.float64), colors=room.colours.astype(np.float64) / 255.0)
        prepared = prepare_point_cloud(cloud, self.num_bins)
        text = self.target_text(room, prepared.min_extent)
        ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos_id]
        (num_tokens,) = self.processor.num_point_tokens([torch.from_numpy(prepared.rows)])
        return LayoutExample(prepared.rows, np.asarray(ids, dtype=np.int64), int(num_tokens), seed)


@cache
def _worker_builder(architecture: str) -> ExampleBuilder:
    from spatialvlm_cli.training.model import build_processor

    return ExampleBuilder(build_processor(architecture))


def _build_one(architecture: str, split: str, index: int) -> LayoutExample:
    seed = split_seed(split, index)
    return _worker_builder(architecture)(make_room(seed), seed)


def build_examples(architecture: str, split: str, start: int, count: int, workers: int = 2,
                   on_done: Any = None) -> list[LayoutExample]:
    """Examples for rooms start..start+count-1 of `split` ('train' | 'heldout'), in index order.

    architecture: preset name or YAML (decides num_bins and the encoder's token count). workers: processes.
    on_done: called once per finished example (progress)."""
    build = partial(_build_one, architecture, split)
    indices = range(start, start + count)
    examples = []
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        for example in (pool.map(build, indices) if pool else map(build, indices)):
            examples.append(example)
            if on_done:
                on_done()
    return examples


def save_examples(path: Path, examples: list[LayoutExample], meta: dict[str, Any]) -> None:
    """One torch file: the examples' arrays and `meta` (what built them, so a stale cache is detected)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": DATA_FORMAT_VERSION,
        "meta": meta,
        "rows": [torch.from_numpy(e.rows) for e in examples],
        "targets": [torch.from_numpy(e.target_ids) for e in examples],
        "num_point_tokens": [e.num_point_tokens for e in examples],
        "seeds": [e.seed for e in examples],
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_examples(path: Path) -> tuple[list[LayoutExample], dict[str, Any]]:
    """Inverse of `save_examples`. Raises ValueError for a file of another format version."""
    payload = torch.load(path, weights_only=True)
    if payload.get("version") != DATA_FORMAT_VERSION:
        raise ValueError(f"'{path}' is not a version-{DATA_FORMAT_VERSION} example cache")
    examples = [
        LayoutExample(rows.numpy(), targets.numpy(), int(tokens), int(seed))
        for rows, targets, tokens, seed in zip(
            payload["rows"], payload["targets"], payload["num_point_tokens"], payload["seeds"], strict=True
        )
    ]
    return examples, payload["meta"]


@dataclass(frozen=True)
class PromptTemplate:
    """The chat-templated prompt split around its single `<|point_pad|>`: prefix + M pads + suffix."""

    prefix: list[int]
    suffix: list[int]
    point_token_id: int
    pad_token_id: int

    @classmethod
    def from_processor(cls, processor: Any, detect_type: str = "all") -> PromptTemplate:
        ids = processor.prompt_ids(detect_type)
        at = ids.index(processor.config.point_token_id)
        return cls(ids[:at], ids[at + 1 :], processor.config.point_token_id, processor.pad_token_id)

    def collate(self, examples: list[LayoutExample]) -> dict[str, Any]:
        """A left-padded batch, as generation sees it.

        Returns input_ids, attention_mask, labels (B, L) int64 (labels: the target ids where they stand in
        input_ids, IGNORE_INDEX elsewhere), point_clouds: B tensors (V_i, 9) float32, target_length (max T)."""
        rows = []
        for example in examples:
            prompt = self.prefix + [self.point_token_id] * example.num_point_tokens + self.suffix
            rows.append((prompt, example.target_ids.tolist()))
        length = max(len(p) + len(t) for p, t in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for b, (prompt, target) in enumerate(rows):
            start = length - len(prompt) - len(target)
            input_ids[b, start:] = torch.tensor(prompt + target)
            labels[b, length - len(target) :] = torch.tensor(target)
            attention_mask[b, start:] = 1
        clouds: list[Tensor] = [torch.from_numpy(example.rows) for example in examples]
        target_length = max(len(t) for _, t in rows)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "point_clouds": clouds,
            "target_length": target_length,
        }
