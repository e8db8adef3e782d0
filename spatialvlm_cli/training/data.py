"""Training examples: synthetic rooms -> (prepared cloud rows, layout target ids), cached, batched.

A room goes through exactly what `infer` does to a .ply (`prepare_point_cloud`, the processor's prompt with one
`<|point_pad|>` per encoder token), and its ground truth becomes the text the model should answer: the layout in
bins relative to the cleaned cloud's min corner (`decode_layout`'s inverse), then the end-of-turn token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from spatialvlm_cli.io import PointCloud
from spatialvlm_cli.layout import Layout, format_layout, parse_layout
from spatialvlm_cli.layout.request import ALL, DEFAULT_ALL_SHARE, REQUEST_MIX, Request, restrict_layout
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.preprocess import prepare_point_cloud
from spatialvlm_cli.synthetic import FURNITURE, SyntheticRoom, make_room, split_seed
from spatialvlm_cli.training.loss import IGNORE_INDEX

if TYPE_CHECKING:
    from spatialvlm_cli.model.processing import SpatialLMProcessor

log = logging.getLogger(__name__)

DATA_FORMAT_VERSION = 1


@dataclass
class LayoutExample:
    """rows: (V, 9) float32 prepared cloud (see `PreparedCloud`); target_ids: (T,) int64 layout text + eos, the
    answer to `request`; num_point_tokens: encoder tokens of the cloud (M); seed: the room's generator seed (a scan's
    index in its data set)."""

    rows: np.ndarray
    target_ids: np.ndarray
    num_point_tokens: int
    seed: int
    request: Request = field(default_factory=lambda: ALL)


class ExampleBuilder:
    """Turns rooms into examples for one model (its processor decides the point-token count)."""

    def __init__(self, processor: SpatialLMProcessor) -> None:
        self.processor = processor
        self.num_bins = int(processor.config.point_config["num_bins"])
        self.eos_id = int(processor.tokenizer.eos_token_id)

    def target_text(self, layout: Layout, min_extent: np.ndarray) -> str:
        """The answer text: a layout in metres (the scan's frame) in bins, relative to the prepared cloud's min
        corner, as `infer` decodes it back."""
        shift = tuple(-float(v) for v in min_extent)
        return format_layout(layout.translate(shift).discretize(self.num_bins))

    def from_cloud(self, cloud: PointCloud, layout: Layout, seed: int, request: Request | None = None,
                   clean: bool = True) -> LayoutExample:
        """One example: the cloud prepared exactly as `infer` prepares a scan (`clean`: with its outlier cleanup),
        and `layout` (metres, the answer to `request`, default all) as its target."""
        prepared = prepare_point_cloud(cloud, self.num_bins, clean=clean)
        text = self.target_text(layout, prepared.min_extent)
        ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos_id]
        (num_tokens,) = self.processor.num_point_tokens([torch.from_numpy(prepared.rows)])
        return LayoutExample(prepared.rows, np.asarray(ids, dtype=np.int64), int(num_tokens), seed, request or ALL)

    def __call__(self, room: SyntheticRoom, seed: int) -> LayoutExample:
        cloud = PointCloud(points=room.points.astype(np.float64), colors=room.colours.astype(np.float64) / 255.0)
        return self.from_cloud(cloud, room.layout, seed)


@cache
def worker_builder(model: str) -> ExampleBuilder:
    """The example builder of `model` in this process (built once per process: data workers reuse it)."""
    return ExampleBuilder(load_processor(model))


def _build_one(model: str, split: str, index: int) -> LayoutExample:
    seed = split_seed(split, index)
    return worker_builder(model)(make_room(seed), seed)


def build_examples(model: str, split: str, start: int, count: int, workers: int = 2,
                   on_done: Callable[[], None] | None = None) -> list[LayoutExample]:
    """Examples for rooms start..start+count-1 of `split` ('train' | 'heldout'), in index order.

    model: anything `--model` takes (its config decides num_bins and the encoder's token count). workers: processes.
    on_done: called once per finished example (progress)."""
    build = partial(_build_one, model, split)
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
        "requests": [[e.request.detect_type, *e.request.categories] for e in examples],
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_examples(path: Path) -> tuple[list[LayoutExample], dict[str, Any]]:
    """Inverse of `save_examples`. Raises ValueError for a file of another format version."""
    payload = torch.load(path, weights_only=True)
    if payload.get("version") != DATA_FORMAT_VERSION:
        raise ValueError(f"'{path}' is not a version-{DATA_FORMAT_VERSION} example cache")
    # Caches written before examples carried a request hold answers to 'all'.
    requests = [Request(kind, tuple(names)) for kind, *names in payload.get("requests", [])] or \
        [ALL] * len(payload["rows"])
    examples = [
        LayoutExample(rows.numpy(), targets.numpy(), int(tokens), int(seed), request)
        for rows, targets, tokens, seed, request in zip(
            payload["rows"], payload["targets"], payload["num_point_tokens"], payload["seeds"], requests, strict=True
        )
    ]
    return examples, payload["meta"]


def sample_request(generator: torch.Generator, present: list[str], all_share: float = DEFAULT_ALL_SHARE) -> Request:
    """A request drawn from REQUEST_MIX with 'all' drawn at `all_share` (0 < all_share < 1; the other kinds keep
    their proportions). present: the room's box classes (category prompts name one of them at least 70 % of the
    time, plus up to two other generator classes)."""
    kinds = [kind for kind, _ in REQUEST_MIX]
    rest = (1 - all_share) / (1 - DEFAULT_ALL_SHARE)
    weights = torch.tensor([all_share] + [share * rest for _, share in REQUEST_MIX[1:]])
    kind = kinds[int(torch.multinomial(weights, 1, generator=generator))]
    if not kind.startswith("categories"):
        return Request(kind)
    classes = list(FURNITURE)
    count = 1 + int(torch.randint(3, (1,), generator=generator))
    chosen: list[str] = []
    if present and float(torch.rand((), generator=generator)) < 0.7:
        chosen.append(present[int(torch.randint(len(present), (1,), generator=generator))])
    while len(chosen) < count:
        name = classes[int(torch.randint(len(classes), (1,), generator=generator))]
        if name not in chosen:
            chosen.append(name)
    return Request(kind.split("-")[1], tuple(chosen))


class PromptMix:
    """Collates batches where every example may carry its own request (prompt and filtered answer)."""

    def __init__(self, processor: SpatialLMProcessor) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.eos_id = int(processor.tokenizer.eos_token_id)
        self.point_token_id = int(processor.config.point_token_id)
        self.pad_token_id = int(processor.pad_token_id)
        self._prompts: dict[Request, list[int]] = {}

    def prompt(self, request: Request) -> list[int]:
        if request not in self._prompts:
            self._prompts[request] = self.processor.prompt_ids(request.detect_type, request.categories)
        return self._prompts[request]

    def prompt_with_points(self, request: Request, num_point_tokens: int) -> list[int]:
        """The prompt ids of `request` with its one point placeholder expanded to `num_point_tokens` of them."""
        prompt = self.prompt(request)
        at = prompt.index(self.point_token_id)
        return prompt[:at] + [self.point_token_id] * num_point_tokens + prompt[at + 1 :]

    def answer_text(self, example: LayoutExample) -> str:
        """The example's full answer text (without the end-of-turn token)."""
        return self.tokenizer.decode(example.target_ids[:-1].tolist())

    def target_ids(self, example: LayoutExample, request: Request) -> list[int]:
        """Answer ids for `request`: the example's own answer for its own request, else its answer filtered (an
        example answering 'all' can answer any request)."""
        if request == example.request:
            return example.target_ids.tolist()
        if example.request != ALL:
            raise ValueError(f"an example answering {example.request} cannot answer {request}")
        layout, _ = parse_layout(self.answer_text(example))
        text = format_layout(restrict_layout(layout, request)[0])
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos_id]

    def collate(self, examples: list[LayoutExample], requests: list[Request] | None = None) -> dict[str, Any]:
        """A left-padded batch, as generation sees it, with one request per example (default: each example's own).

        Returns input_ids, attention_mask, labels (B, L) int64 (labels: the answer ids where they stand in
        input_ids, IGNORE_INDEX elsewhere), point_clouds: B tensors (V_i, 9) float32, target_length (max T)."""
        requests = requests or [example.request for example in examples]
        rows = []
        for example, request in zip(examples, requests, strict=True):
            rows.append((self.prompt_with_points(request, example.num_point_tokens), self.target_ids(example, request)))
        input_ids, labels, attention_mask = left_padded(rows, self.pad_token_id)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "point_clouds": [torch.from_numpy(example.rows) for example in examples],
            "target_length": max(len(t) for _, t in rows),
        }


def answer_token_starts(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> tuple[str, list[int]] | None:
    """The text of answer `ids` (without the end-of-turn token) and the character offset where each id's token
    starts in it; None where the text does not tokenise back to `ids` (no offsets to trust)."""
    text = tokenizer.decode(ids)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if encoded["input_ids"] != ids:
        return None
    return text, [start for start, _ in encoded["offset_mapping"]]


def left_padded(rows: list[tuple[list[int], list[int]]], pad_token_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """(prompt ids, answer ids) per example -> input_ids, labels, attention_mask (B, L) int64, left-padded as
    generation needs; labels are the answer ids and IGNORE_INDEX elsewhere."""
    length = max(len(prompt) + len(target) for prompt, target in rows)
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for b, (prompt, target) in enumerate(rows):
        start = length - len(prompt) - len(target)
        input_ids[b, start:] = torch.tensor(prompt + target)
        labels[b, length - len(target) :] = torch.tensor(target)
        attention_mask[b, start:] = 1
    return input_ids, labels, attention_mask
