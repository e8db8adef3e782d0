"""Scene augmentation: a turned layout by hand, the identity draw reproduces an example, a quarter turn swaps the
room's sides, draws are reproducible, and an augmented run resumes exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, parse_layout
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.training import TrainSettings, build_examples, train
from spatialvlm_cli.training.augment import Augmentation, augment_example
from spatialvlm_cli.training.data import ExampleBuilder, PromptMix

PRESET = "tiny-qwen"


def test_turned_layout_by_hand():
    """A quarter turn about (1, 1, 0) and a doubling: (0, 0) -> (2, 0), (2, 0) -> (2, 2), then sizes x2 about the
    centre; the box's yaw 3.0 turns to 3.0 + π/2, wrapped to 3.0 + π/2 - 2π."""
    layout = Layout(walls=[Wall(0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.5, 0.2)],
                    doors=[Door(0, 0, 1.0, 0.0, 1.0, 0.9, 2.0)],
                    bboxes=[Bbox(0, "bed", 1.0, 1.0, 0.5, 3.0, 2.0, 1.0, 0.5)])
    turned = layout.turned(math.pi / 2, 2.0, (1.0, 1.0, 0.0))
    wall, door, box = turned.walls[0], turned.doors[0], turned.bboxes[0]
    np.testing.assert_allclose([wall.ax, wall.ay, wall.bx, wall.by], [3.0, -1.0, 3.0, 3.0], atol=1e-12)
    assert (wall.height, wall.thickness, wall.az) == (5.0, 0.4, 0.0)
    np.testing.assert_allclose([door.position_x, door.position_y, door.position_z, door.width], [3.0, 1.0, 2.0, 1.8],
                               atol=1e-12)
    assert box.angle_z == pytest.approx(3.0 + math.pi / 2 - 2 * math.pi)
    assert (box.position_x, box.position_y, box.position_z) == pytest.approx((1.0, 1.0, 1.0))
    assert (box.scale_x, box.scale_y, box.scale_z) == pytest.approx((4.0, 2.0, 1.0))


@pytest.fixture(scope="module")
def room():
    return build_examples(PRESET, "train", 0, 1, workers=1)[0]


def test_the_identity_draw_gives_the_example_back(room):
    builder = ExampleBuilder(load_processor(PRESET))
    same = augment_example(room, 0.0, 1.0, builder)
    assert np.array_equal(same.rows, room.rows) and np.array_equal(same.target_ids, room.target_ids)
    assert same.num_point_tokens == room.num_point_tokens and same.request == room.request


def test_a_quarter_turn_swaps_the_rooms_sides(room):
    processor = load_processor(PRESET)
    builder, mix = ExampleBuilder(processor), PromptMix(processor)

    def wall_extent(example) -> np.ndarray:
        layout, _ = parse_layout(mix.answer_text(example))
        ends = np.array([[w.ax, w.ay] for w in layout.walls] + [[w.bx, w.by] for w in layout.walls])
        return ends.max(0) - ends.min(0)  # bins

    turned = augment_example(room, math.pi / 2, 1.0, builder)
    np.testing.assert_allclose(wall_extent(turned), wall_extent(room)[::-1], atol=2)  # within two 2.5 cm bins
    extent = np.ptp(room.rows[:, 3:5], axis=0)
    np.testing.assert_allclose(np.ptp(turned.rows[:, 3:5], axis=0), extent[::-1], atol=0.03)
    grown = augment_example(room, 0.0, 1.2, builder)
    np.testing.assert_allclose(wall_extent(grown), 1.2 * wall_extent(room), atol=2)


def test_draws_are_reproducible_and_in_range():
    right, uniform = Augmentation("right", 0.25), Augmentation("uniform")
    assert right.draw(0, 5, 3) == right.draw(0, 5, 3) != right.draw(0, 6, 3)
    for step in range(50):
        yaw, factor = right.draw(1, step, 0)
        assert yaw / (math.pi / 2) in (0, 1, 2, 3) and 0.75 <= factor <= 1.25
        yaw, factor = uniform.draw(1, step, 0)
        assert 0 <= yaw < 2 * math.pi and factor == 1.0
    assert not Augmentation().active
    with pytest.raises(ConfigError, match="rotation"):
        Augmentation("sideways")


def test_an_augmented_run_resumes_exactly(tmp_path):
    examples = build_examples(PRESET, "train", 0, 2, workers=1)
    settings = TrainSettings(model=PRESET, steps=4, batch_size=2, lr=3e-3, warmup_steps=1, checkpoint_every=2,
                             dense_weight=1.0, augment_rotation="uniform", augment_scale=0.25)
    train(settings, examples, tmp_path / "straight")
    train(settings, examples, tmp_path / "resumed", stop_after=2)
    train(settings, examples, tmp_path / "resumed", resume=True)
    straight, resumed = (load_file(tmp_path / name / "model.safetensors") for name in ("straight", "resumed"))
    assert all(torch.allclose(straight[name], resumed[name], atol=1e-6) for name in straight)
