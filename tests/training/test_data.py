"""Training examples: the target text is the ground truth in the model's bins, batches are what generate() sees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialvlm_cli.layout import parse_layout
from spatialvlm_cli.layout.request import ALL
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.synthetic import make_room, split_seed
from spatialvlm_cli.training import (
    ExampleBuilder,
    batch_indices,
    build_examples,
    load_examples,
    save_examples,
)
from spatialvlm_cli.training.data import PromptMix
from spatialvlm_cli.training.loss import IGNORE_INDEX

ARCHITECTURE = "tiny-qwen"


@pytest.fixture(scope="module")
def processor():
    return load_processor(ARCHITECTURE)


@pytest.fixture(scope="module")
def examples():
    return build_examples(ARCHITECTURE, "train", 0, 3, workers=1)


def test_target_is_the_ground_truth_in_bins(processor):
    seed = split_seed("train", 5)
    room = make_room(seed)
    example = ExampleBuilder(processor)(room, seed)
    assert example.seed == seed and example.rows.dtype == np.float32 and example.rows.shape[1] == 9
    assert example.target_ids[-1] == processor.tokenizer.eos_token_id
    text = processor.tokenizer.decode(example.target_ids[:-1].tolist())
    layout_bins, issues = parse_layout(text)
    assert not issues
    assert [len(x) for x in (layout_bins.walls, layout_bins.doors, layout_bins.windows, layout_bins.bboxes)] == [
        len(x) for x in (room.layout.walls, room.layout.doors, room.layout.windows, room.layout.bboxes)
    ]
    # Back to metres in the room's frame: sizes within one bin, box centres (inside the room) within one bin.
    min_extent = room.points.min(axis=0).astype(np.float64)
    decoded = layout_bins.undiscretize(processor.config.point_config["num_bins"])
    for wall_bins, wall, wall_gt in zip(layout_bins.walls, decoded.walls, room.layout.walls, strict=True):
        assert abs(wall.height - wall_gt.height) <= 0.02 + 1e-9 and wall_bins.az == 0
    for box, box_gt in zip(decoded.bboxes, room.layout.bboxes, strict=True):
        assert box.class_name == box_gt.class_name
        assert abs(box.scale_x - box_gt.scale_x) <= 20 / 1280 + 1e-9
        # The cleaned cloud's min corner is within a few millimetres of the raw points' min corner.
        assert abs(box.position_x + min_extent[0] - box_gt.position_x) <= 0.025 + 0.01
        assert abs(box.position_y + min_extent[1] - box_gt.position_y) <= 0.025 + 0.01
    (count,) = processor.num_point_tokens([torch.from_numpy(example.rows)])
    assert example.num_point_tokens == count > 0


def test_collate_left_pads_and_labels_only_the_answer(processor, examples):
    mix = PromptMix(processor)
    batch = mix.collate(examples)
    prompt = mix.prompt(ALL)  # one <|point_pad|> placeholder
    input_ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert input_ids.shape == labels.shape == mask.shape and input_ids.shape[0] == len(examples)
    assert batch["target_length"] == max(len(e.target_ids) for e in examples)
    for row, example in enumerate(examples):
        target = torch.from_numpy(example.target_ids)
        length = len(prompt) - 1 + example.num_point_tokens + len(target)
        assert int(mask[row].sum()) == length and bool(mask[row, -length:].all())  # left padding
        assert torch.equal(input_ids[row, -len(target):], target)
        assert torch.equal(labels[row, -len(target):], target)
        assert bool((labels[row, : -len(target)] == IGNORE_INDEX).all())
        assert int((input_ids[row] == processor.config.point_token_id).sum()) == example.num_point_tokens
        assert torch.equal(batch["point_clouds"][row], torch.from_numpy(example.rows))
    # The prompt is the processor's, with the placeholder expanded: what inference feeds the model.
    inference = processor([batch["point_clouds"][0]])["input_ids"][0]
    assert torch.equal(input_ids[0, mask[0].bool()][: len(inference)], inference)


def test_batches_cover_each_epoch_once_and_are_reproducible():
    num_examples, batch_size = 10, 4
    first_epoch = [i for step in range(5) for i in batch_indices(step, batch_size, num_examples, seed=3)][:10]
    assert sorted(first_epoch) == list(range(num_examples))
    assert batch_indices(7, batch_size, num_examples, 3) == batch_indices(7, batch_size, num_examples, 3)
    second_epoch = [i for step in range(5, 10) for i in batch_indices(step, batch_size, num_examples, 3)][:10]
    assert second_epoch != first_epoch and sorted(second_epoch) == list(range(num_examples))


def test_example_cache_round_trip(tmp_path, examples):
    path = tmp_path / "rooms.pt"
    save_examples(path, examples, {"count": len(examples)})
    loaded, meta = load_examples(path)
    assert meta == {"count": len(examples)}
    for a, b in zip(examples, loaded, strict=True):
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.target_ids, b.target_ids)
        assert (a.num_point_tokens, a.seed) == (b.num_point_tokens, b.seed)
