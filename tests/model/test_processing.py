"""Processor: SpatialLM's prompt through the chat template, placeholder expansion to M point ids, left padding."""

from __future__ import annotations

import pytest
import torch

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.prompt import code_template


def _block(ids: list[int], config) -> tuple[int, int]:
    """Index of <|point_start|> and of <|point_end|> in a row of ids."""
    return ids.index(config.point_start_token_id), ids.index(config.point_end_token_id)


def test_expands_placeholder_to_exactly_m_point_ids(tiny, make_cloud, expected_tokens):
    cloud = make_cloud((100, 60, 40), 3000, seed=1)
    inputs = tiny.processor([cloud])
    config = tiny.model.config
    ids = inputs["input_ids"][0].tolist()
    start, end = _block(ids, config)
    m = expected_tokens(cloud)
    assert m > 10
    assert ids[start + 1 : end] == [config.point_token_id] * m
    assert ids.count(config.point_token_id) == m
    # Everything but the block is the unexpanded prompt.
    prompt = tiny.processor.prompt_ids()
    assert ids[: start + 1] + ids[end:] == prompt[: start + 1] + prompt[start + 2 :]
    assert inputs["input_ids"].shape == inputs["attention_mask"].shape == (1, len(prompt) - 1 + m)
    assert inputs["attention_mask"].all()


def test_batch_is_left_padded_and_rows_match_single_runs(tiny_qwen, make_cloud):
    small, large = make_cloud((40, 40, 20), 400, seed=2), make_cloud((160, 90, 50), 4000, seed=3)
    batch = tiny_qwen.processor([small, large])
    singles = [tiny_qwen.processor([cloud]) for cloud in (small, large)]
    lengths = [s["input_ids"].shape[1] for s in singles]
    assert lengths[0] < lengths[1] == batch["input_ids"].shape[1]
    pad = lengths[1] - lengths[0]
    assert batch["attention_mask"][0].tolist() == [0] * pad + [1] * lengths[0]
    assert (batch["input_ids"][0, :pad] == tiny_qwen.tokenizer.pad_token_id).all()
    assert torch.equal(batch["input_ids"][0, pad:], singles[0]["input_ids"][0])
    assert torch.equal(batch["input_ids"][1], singles[1]["input_ids"][0])


def test_nan_padded_tensor_equals_list_input(tiny_qwen, make_cloud):
    a, b = make_cloud((50, 50, 30), 500, seed=4), make_cloud((80, 30, 30), 300, seed=5)
    padded = torch.full((2, 500, 9), float("nan"))
    padded[0], padded[1, :300] = a, b
    from_list, from_tensor = tiny_qwen.processor([a, b]), tiny_qwen.processor(padded)
    assert torch.equal(from_list["input_ids"], from_tensor["input_ids"])
    assert [c.shape[0] for c in from_tensor["point_clouds"]] == [500, 300]
    assert torch.equal(from_tensor["point_clouds"][1], b)


def test_qwen_prompt_is_spatiallm_chatml_with_system_turn(tiny_qwen):
    text = tiny_qwen.processor.prompt_text("object", ["bed", "nightstand"])
    user = (
        "<|point_start|><|point_pad|><|point_end|>Detect bed, nightstand. The reference code is as followed: "
        + code_template()
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_llama_prompt_is_spatiallm_llama3_without_system_turn(tiny_llama):
    text = tiny_llama.processor.prompt_text("arch", ["bed"])  # categories do not apply to 'arch'
    user = "<|point_start|><|point_pad|><|point_end|>Detect walls, doors, windows. The reference code is as followed: "
    assert text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{user}{code_template()}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    ids = tiny_llama.processor.prompt_ids("arch")
    assert ids[0] == tiny_llama.tokenizer.bos_token_id
    assert ids.count(tiny_llama.tokenizer.bos_token_id) == 1


@pytest.mark.parametrize(
    ("detect_type", "categories", "message"),
    [("rooms", (), "detect_type"), ("all", ("bed", "spaceship"), "spaceship"), ("object", ("Bed",), "Bed")],
)
def test_bad_request_raises_config_error(tiny_qwen, make_cloud, detect_type, categories, message):
    with pytest.raises(ConfigError, match=message):
        tiny_qwen.processor([make_cloud((20, 20, 20), 50, seed=6)], detect_type=detect_type, categories=categories)
