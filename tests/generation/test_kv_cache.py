"""The growing KV cache: the same keys and values as transformers' dynamic layer with no per-token reallocation,
and the same generated text, batched, with beam search (reordering) and on the fast path."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.generation.kv_cache import MIN_SPARE_TOKENS, GrowingLayer, growing_cache
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.transformers_seam import DynamicLayer


def _states(batch: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, length, 8, generator=generator), torch.randn(batch, 2, length, 6, generator=generator)


def test_growing_layer_holds_what_the_dynamic_layer_holds_without_reallocating() -> None:
    ours, reference = GrowingLayer(), DynamicLayer()
    steps = [_states(2, 5, 0)] + [_states(2, 1, seed) for seed in range(1, MIN_SPARE_TOKENS + 20)]
    pointers = []
    for keys, values in steps:
        got = ours.update(keys, values)
        expected = reference.update(keys, values)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        pointers.append(got[0].data_ptr())
    assert ours.get_seq_length() == reference.get_seq_length() == 5 + MIN_SPARE_TOKENS + 19
    # the buffer starts with room for MIN_SPARE_TOKENS more tokens, then doubles: two buffers in 276 steps
    assert len(set(pointers)) == 2


def test_growing_layer_after_batch_selection_and_crop() -> None:
    ours, reference = GrowingLayer(), DynamicLayer()
    for layer in (ours, reference):
        layer.update(*_states(3, 4, 0))
        layer.batch_select_indices(torch.tensor([2, 0]))
        layer.crop(-1)
    for seed in (1, 2):
        got, expected = ours.update(*_states(2, 1, seed)), reference.update(*_states(2, 1, seed))
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.fixture(scope="module")
def qwen_and_inputs(make_cloud_rows):
    loaded = load_spatiallm("tiny-qwen", device="cpu")
    return loaded, loaded.processor(make_cloud_rows)


@pytest.fixture(scope="module")
def make_cloud_rows():
    generator = torch.Generator().manual_seed(4)
    clouds = []
    for count in (300, 200):
        grid = torch.randint(0, 40, (count, 3), generator=generator).unique(dim=0).float()
        clouds.append(torch.cat([grid, grid * 0.025, torch.rand(len(grid), 3, generator=generator) * 2 - 1], dim=1))
    return clouds


@pytest.mark.parametrize("beams", [1, 2])
def test_generate_with_the_growing_cache_equals_the_dynamic_cache(qwen_and_inputs, beams: int) -> None:
    loaded, inputs = qwen_and_inputs
    settings = {"max_new_tokens": 10, "min_new_tokens": 10, "do_sample": False, "num_beams": beams,
                "pad_token_id": loaded.tokenizer.pad_token_id}
    with torch.no_grad():
        ours = loaded.model.generate(**inputs, **settings)  # the model's default: a growing cache
        dynamic = {transformers_seam.CACHE_ARGUMENT: DynamicCache(config=loaded.model.config)}
        reference = loaded.model.generate(**inputs, **settings, **dynamic)
    assert torch.equal(ours, reference)


def test_the_model_uses_the_growing_cache_unless_told_otherwise(qwen_and_inputs) -> None:
    loaded, _ = qwen_and_inputs
    model = loaded.model
    assert model._default_cache_wanted({})
    assert not model._default_cache_wanted({"use_cache": False})
    assert not model._default_cache_wanted({"cache_implementation": "static"})
    assert not model._default_cache_wanted({transformers_seam.CACHE_ARGUMENT: growing_cache()})
