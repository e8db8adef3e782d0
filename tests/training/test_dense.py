"""Dense per-token targets, prompt mixing (detect types, categories) and a training smoke run with both."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from spatialvlm_cli.distributed import Ranks
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, parse_layout
from spatialvlm_cli.layout.request import ALL, Request
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.training import build_examples, train
from spatialvlm_cli.training.data import PromptMix, sample_request
from spatialvlm_cli.training.dense import (
    DENSE_CLASSES,
    EXTENT_SCALE_M,
    DenseHead,
    PointerHead,
    box_loss,
    box_pointer_targets,
    dense_labels,
    dense_targets,
    nearest_wall_offset,
    token_cell_size_m,
)
from spatialvlm_cli.training.model import load_for_training
from spatialvlm_cli.training.objective import Objective
from spatialvlm_cli.training.settings import TrainSettings

ARCHITECTURE = "tiny-qwen"


def room_layout() -> Layout:
    """A 4 m wall along x (height 2.5 m), a door in it, a bed and a chair; metres from the min corner."""
    return Layout(
        walls=[Wall(0, 0.0, 0.1, 0.0, 4.0, 0.1, 0.0, 2.5, 0.2)],
        doors=[Door(0, 0, 2.0, 0.1, 1.0, 0.9, 2.0)],
        bboxes=[Bbox(0, "bed", 2.0, 2.0, 0.25, 0.0, 2.0, 1.6, 0.5), Bbox(1, "chair", 3.5, 3.5, 0.45, 0.0, 0.5, 0.5,
                                                                         0.9)],
    )


def test_cell_size_is_voxel_times_strides():
    assert token_cell_size_m(1280, [2, 2, 2, 2, 2]) == pytest.approx(0.8)
    assert token_cell_size_m(1280, [2, 2, 2, 2]) == pytest.approx(0.4)


def test_dense_labels_mark_the_cells_each_entity_touches():
    labels = dense_labels(room_layout(), 0.8)
    wall, door, bed, chair = (1 << DENSE_CLASSES.index(name) for name in ("wall", "door", "bed", "chair"))
    assert all(labels.cells[(x, 0, z)] & wall for x in range(6) for z in range(4))  # x 0..4 m, z 0..2.5 m
    assert labels.cells[(2, 0, 1)] & door and not labels.cells.get((0, 0, 3), 0) & door
    assert labels.cells[(2, 2, 0)] & bed and labels.cells[(4, 4, 0)] & chair
    assert not labels.cells.get((4, 4, 0), 0) & bed
    np.testing.assert_allclose(labels.extent, [0.0, 0.1, 4.0, 0.1], atol=1e-6)


def test_dense_targets_per_token_and_head_loss():
    labels = [dense_labels(room_layout(), 0.8), dense_labels(Layout(), 0.8)]
    grid = torch.tensor([[2, 0, 1], [7, 7, 7], [0, 0, 0]])
    targets = dense_targets(labels, grid, [2, 1], 0.8)
    occupancy, extent = targets.occupancy, targets.extent
    assert occupancy.shape == (3, len(DENSE_CLASSES)) and extent.shape == (3, 4)
    assert occupancy[0, DENSE_CLASSES.index("wall")] == 1 and occupancy[0, DENSE_CLASSES.index("door")] == 1
    assert occupancy[1].sum() == 0 and occupancy[2].sum() == 0  # empty cell; a room with no entities
    torch.testing.assert_close(extent[1], torch.tensor([0.0, 0.1, 4.0, 0.1]) / EXTENT_SCALE_M)
    # Cell (2, 0) has its centre at (2.0, 0.4) m; the wall runs along y = 0.1 m: 0.3 m = 0.375 cells below it.
    torch.testing.assert_close(targets.wall_offset[0], torch.tensor([0.0, -0.375]))
    assert targets.near_wall.tolist() == [True, False, False]  # (7, 7) is 5 m from the wall; no walls at all
    assert targets.wall_offset[1:].abs().sum() == 0
    losses = DenseHead(16).losses(torch.randn(3, 16), targets)
    assert set(losses) == {"occupancy", "extent"} and all(loss.ndim == 0 for loss in losses.values())
    head = DenseHead(16, wall_offset=True)
    assert head.linear.out_features == len(DENSE_CLASSES) + 6
    hidden = torch.randn(3, 16)
    expected = torch.nn.functional.smooth_l1_loss(head.linear(hidden)[:1, -2:], targets.wall_offset[:1], beta=0.05)
    torch.testing.assert_close(head.losses(hidden, targets)["wall_offset"], expected)


def test_box_targets_point_from_each_box_token_to_its_box_centre():
    """A 2.0 x 1.6 x 0.6 m bed centred at (2.0, 2.0) m, 0.8 m cells: cell (2, 2) is centred on it, cell (1, 1)
    (centre (1.2, 1.2) m) is one cell off in x and y; an empty cell is not scored."""
    layout = Layout(bboxes=[Bbox(id=0, class_name="bed", position_x=2.0, position_y=2.0, position_z=0.3,
                                 angle_z=0.0, scale_x=2.0, scale_y=1.6, scale_z=0.6)])
    labels = dense_labels(layout, 0.8)
    np.testing.assert_allclose(labels.boxes, [[2.0, 2.0, 2.0, 1.6, 0.6]])
    targets = dense_targets([labels], torch.tensor([[2, 2, 0], [1, 1, 0], [7, 7, 7]]), [3], 0.8)
    assert targets.in_box.tolist() == [True, True, False]
    torch.testing.assert_close(targets.box, torch.tensor([[0.0, 0.0, 2.5, 2.0, 0.75], [1.0, 1.0, 2.5, 2.0, 0.75],
                                                          [0.0, 0.0, 0.0, 0.0, 0.0]]))
    predicted = torch.randn(3, 5)
    expected = torch.nn.functional.smooth_l1_loss(predicted[:2], targets.box[:2], beta=0.05)
    torch.testing.assert_close(box_loss(predicted, targets), expected)
    empty = dense_targets([dense_labels(Layout(), 0.8)], torch.tensor([[0, 0, 0]]), [1], 0.8)
    assert box_loss(predicted[:1], empty) == 0


def test_box_pointer_targets_are_the_box_lines_tokens_and_the_boxes_cells():
    """1,280 bins: positions in 2.5 cm bins, sizes in 1.5625 cm bins; 0.8 m cells. A 1.0 x 1.0 x 0.5 m box centred
    at (1.2, 1.2, 0.25) m spans x, y 0.7..1.7 m: cells 0..2 in x and y, cell 0 in z. The tokens of its line (and
    only those) point at the point tokens in those cells."""
    wall_line = "wall_0=Wall(0,0,0,160,0,0,100,8)"
    text = wall_line + "\nbbox_0=Bbox(bed,48,48,10,0,64,64,32)"
    n = len(wall_line)
    starts = [0, 20, n, n + 1, n + 6, n + 12]  # the wall line and its newline, then three tokens of the bbox line
    grid = torch.tensor([[1, 1, 0], [3, 3, 0], [2, 0, 0], [1, 1, 1]])
    indices, targets = box_pointer_targets(text, starts, 1280, 0.8, grid)
    assert indices.tolist() == [3, 4, 5]
    assert targets.tolist() == [[True, False, True, False]] * 3
    head = PointerHead(8, dim=4)
    states, tokens = torch.randn(3, 8), torch.randn(4, 8)
    logits = head.query(states) @ head.key(tokens).T / 2.0
    expected = -(logits.softmax(-1)[:, [0, 2]].sum(-1)).log().mean()
    torch.testing.assert_close(head.loss(states, tokens, targets), expected)


def test_nearest_wall_offset_reaches_the_closest_point_of_the_closest_segment():
    walls = np.array([[0.0, 0.0, 4.0, 0.0], [4.0, 0.0, 4.0, 3.0]], dtype=np.float32)  # along x, then up y at x = 4
    points = np.array([[1.0, 0.5], [3.5, 1.0], [5.0, 4.0], [-1.0, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(nearest_wall_offset(walls, points),
                               [[0.0, -0.5], [0.5, 0.0], [-1.0, -1.0], [1.0, 1.0]], atol=1e-6)  # ends clamp
    assert np.isinf(nearest_wall_offset(walls[:0], points)).all()


def test_sample_request_is_a_function_of_the_generator():
    first = [sample_request(torch.Generator().manual_seed(3), ["bed"]) for _ in range(2)]
    assert first[0] == first[1]
    drawn = [sample_request(torch.Generator().manual_seed(s), ["bed", "chair"]) for s in range(200)]
    kinds = {(r.detect_type, bool(r.categories)) for r in drawn}
    assert kinds == {("all", False), ("arch", False), ("object", False), ("all", True), ("object", True)}


@pytest.mark.parametrize("all_share", [0.55, 0.2])
def test_sample_request_draws_all_at_its_share(all_share):
    # 4,000 draws: the share of plain 'all' requests within 3 standard errors; arch keeps its 1/3 of the rest.
    drawn = [sample_request(torch.Generator().manual_seed(s), ["bed"], all_share) for s in range(4000)]
    plain_all = sum(r == ALL for r in drawn) / len(drawn)
    arch = sum(r.detect_type == "arch" for r in drawn) / len(drawn)
    assert abs(plain_all - all_share) < 3 * (all_share * (1 - all_share) / 4000) ** 0.5
    assert abs(arch - (1 - all_share) / 3) < 0.025


@pytest.mark.parametrize("all_share", [0.0, 1.0])
def test_an_all_share_without_both_kinds_is_refused(all_share):
    with pytest.raises(ConfigError, match="share of 'all'"):
        TrainSettings(model=ARCHITECTURE, mix_prompts=True, all_share=all_share)


@pytest.fixture(scope="module")
def examples():
    return build_examples(ARCHITECTURE, "train", 0, 2, workers=1)


def test_prompt_mix_targets_and_prompts(examples):
    mix = PromptMix(load_processor(ARCHITECTURE))
    example = examples[0]
    assert mix.target_ids(example, ALL) == example.target_ids.tolist()
    full, _ = parse_layout(mix.answer_text(example))
    arch_ids = mix.target_ids(example, Request("arch"))
    arch, issues = parse_layout(mix.tokenizer.decode(arch_ids[:-1]))
    assert not issues and arch.walls == full.walls and not arch.bboxes and arch_ids[-1] == mix.eos_id
    batch = mix.collate(examples, [Request("arch"), Request("object", ("bed",))])
    text = mix.tokenizer.decode(batch["input_ids"][1])
    assert "Detect bed." in text and "Detect walls, doors, windows." in mix.tokenizer.decode(batch["input_ids"][0])
    assert batch["labels"].shape == batch["input_ids"].shape


def test_training_with_dense_loss_and_mixed_prompts_resumes_exactly(tmp_path, examples):
    settings = TrainSettings(model=ARCHITECTURE, steps=4, batch_size=2, lr=3e-3, warmup_steps=1,
                             checkpoint_every=2, dense_weight=1.0, mix_prompts=True, read_weight=1.0,
                             wall_offset_weight=1.0)
    train(settings, examples, tmp_path / "straight")
    train(settings, examples, tmp_path / "resumed", stop_after=2)
    state = torch.load(tmp_path / "resumed" / "resume.pt", weights_only=False)
    assert state["dense_head"] is not None and state["read_head"] is not None
    train(settings, examples, tmp_path / "resumed", resume=True)
    straight, resumed = (load_file(tmp_path / name / "model.safetensors") for name in ("straight", "resumed"))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_warm_start_begins_from_another_runs_weights(tmp_path, examples):
    first = TrainSettings(model=ARCHITECTURE, steps=2, batch_size=2, warmup_steps=1, dense_weight=1.0)
    train(first, examples, tmp_path / "first")
    warm = TrainSettings(model=ARCHITECTURE, steps=1, batch_size=2, lr=0.0, warmup_steps=1,
                         dense_weight=1.0, box_weight=1.0, init_from=str(tmp_path / "first"))  # a new head
    train(warm, examples, tmp_path / "warm")
    before, after = (load_file(tmp_path / name / "model.safetensors") for name in ("first", "warm"))
    assert all(torch.equal(before[name], after[name]) for name in before)  # lr 0: the warm start is kept as is


def test_wall_offset_needs_the_dense_loss():
    with pytest.raises(ValueError, match="dense weight"):
        TrainSettings(model=ARCHITECTURE, wall_offset_weight=1.0)
    with pytest.raises(ValueError, match="dense weight"):
        TrainSettings(model=ARCHITECTURE, box_weight=1.0)
    with pytest.raises(ValueError, match="dense weight"):
        TrainSettings(model=ARCHITECTURE, pointer_weight=1.0)


def test_read_loss_starts_at_read_from_step(tmp_path, examples):
    """Before read_from_step the read head gets no update (its weights stay at their seeded init), then it learns."""
    settings = TrainSettings(model=ARCHITECTURE, steps=3, batch_size=2, lr=3e-3, warmup_steps=1,
                             checkpoint_every=1, read_weight=1.0, read_from_step=2)

    def read_head_after(steps: int) -> torch.Tensor:
        train(settings, examples, tmp_path / "run", resume=steps > 1, stop_after=steps)
        return torch.load(tmp_path / "run" / "resume.pt", weights_only=False)["read_head"]["weight"]

    first, second, third = read_head_after(1), read_head_after(2), read_head_after(3)
    assert torch.equal(first, second) and not torch.equal(second, third)


def test_progress_logs_the_weighted_loss_terms(tmp_path, examples):
    settings = TrainSettings(model=ARCHITECTURE, steps=4, batch_size=2, lr=3e-3, warmup_steps=1,
                             dense_weight=1.0, read_weight=10.0, read_from_step=2, wall_offset_weight=2.0,
                             box_weight=1.0, pointer_weight=1.0)
    train(settings, examples, tmp_path / "run", log_every=2)
    first, second = (json.loads(line) for line in (tmp_path / "run" / "progress.jsonl").read_text().splitlines())
    assert set(first["terms"]) == {"layout", "dense", "wall_offset", "box", "pointer"}
    assert set(second["terms"]) == {"layout", "dense", "wall_offset", "box", "pointer", "read"}
    assert first["terms"]["pointer"] > 0.1  # a real cross-entropy over the rooms' box lines
    for line in (first, second):
        assert line["loss"] == pytest.approx(sum(line["terms"].values()), abs=1e-3)


def attention_pointer_term(model: str, settings: TrainSettings, examples) -> float:
    """The pointer term of `settings` (pointer_layer set) for `model` on one batch of `examples`, without dropout."""
    loaded = load_for_training(model, attention_weights=True)
    loaded.model.eval()
    mix = PromptMix(loaded.processor)
    batch = mix.collate(examples)
    with torch.no_grad():
        terms = Objective(settings, loaded, mix, None).terms(batch, examples, list(range(len(examples))), 0,
                                                             Ranks.current())
    return float(terms["pointer"])


def test_attention_pointer_trains_the_chosen_head_to_look_at_the_box(tmp_path, examples):
    settings = TrainSettings(model=ARCHITECTURE, steps=8, batch_size=2, lr=3e-3, warmup_steps=1, dense_weight=1.0,
                             pointer_weight=5.0, pointer_layer=1)
    before = attention_pointer_term(ARCHITECTURE, settings, examples)
    # 5 x -log of the head's attention mass on the box's tokens: little of it at the start (about 1.8 %)
    assert before > 5 * 3.0
    train(settings, examples, tmp_path / "run")
    after = attention_pointer_term(str(tmp_path / "run"), settings, examples)
    assert after < before - 5 * 0.5  # measured: 20.3 -> 15.5
    assert torch.load(tmp_path / "run" / "resume.pt", weights_only=False).get("pointer_head") is None  # no own head


def test_pointer_layer_needs_the_pointer_and_a_layer_of_the_decoder(tmp_path, examples):
    with pytest.raises(ConfigError, match="pointer weight"):
        TrainSettings(model=ARCHITECTURE, dense_weight=1.0, pointer_layer=0)
    with pytest.raises(ConfigError, match="not a layer"):
        train(TrainSettings(model=ARCHITECTURE, steps=1, batch_size=2, dense_weight=1.0, pointer_weight=1.0,
                            pointer_layer=9), examples, tmp_path / "run")
