"""Forward and generation of the SpatialLM-style models: point-token insertion, batching, KV cache."""

from __future__ import annotations

import pytest
import torch

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.model import load_spatiallm


def _greedy_without_cache(model, inputs, steps: int) -> tuple[list[int], list[torch.Tensor]]:
    """Reference decode: recompute the whole sequence at every step, no cache, explicit all-ones 2-D mask.
    Returns the tokens and each step's last-position logits (vocab,)."""
    ids = inputs["input_ids"]
    tokens, step_logits = [], []
    for _ in range(steps):
        logits = model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            point_clouds=inputs["point_clouds"],
            use_cache=False,
        ).logits[0, -1]
        step_logits.append(logits)
        tokens.append(int(logits.argmax()))
        ids = torch.cat([ids, torch.tensor([[tokens[-1]]])], dim=1)
    return tokens, step_logits


@torch.no_grad()
def test_cached_greedy_generate_equals_recomputation(tiny, make_cloud):
    inputs = tiny.processor([make_cloud((90, 70, 40), 1500, seed=10)], detect_type="object", categories=["bed"])
    steps = 6
    out = tiny.model.generate(
        **inputs,
        max_new_tokens=steps,
        min_new_tokens=steps,
        do_sample=False,
        return_dict_in_generate=True,
        output_logits=True,
    )
    tokens, logits = _greedy_without_cache(tiny.model, inputs, steps)
    assert out.sequences[0, inputs["input_ids"].shape[1] :].tolist() == tokens
    for step in range(steps):
        torch.testing.assert_close(out.logits[step][0], logits[step], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_point_features_replace_pad_embeddings(tiny_qwen, make_cloud):
    model, processor = tiny_qwen.model, tiny_qwen.processor
    inputs = processor([make_cloud((64, 64, 32), 800, seed=11)])
    other = dict(inputs, point_clouds=[make_cloud((64, 64, 32), 800, seed=12)])
    assert torch.equal(inputs["input_ids"], processor(other["point_clouds"])["input_ids"])  # same token count
    logits, other_logits = model(**inputs).logits[0], model(**other).logits[0]
    first_point = inputs["input_ids"][0].tolist().index(model.config.point_token_id)
    # Causal: positions before the point block cannot see the cloud; everything after it does.
    torch.testing.assert_close(logits[:first_point], other_logits[:first_point], rtol=0, atol=1e-6)
    assert (logits[-1] - other_logits[-1]).abs().max() > 1e-3


@torch.no_grad()
def test_padded_batch_equals_single_runs(tiny, make_cloud):
    clouds = [make_cloud((40, 40, 30), 500, seed=13), make_cloud((150, 100, 50), 3000, seed=14)]
    batch = tiny.processor(clouds)
    counts = (batch["input_ids"] == tiny.model.config.point_token_id).sum(dim=1)
    assert counts[0] < counts[1]
    batch_logits = tiny.model(**batch).logits
    for row, cloud in enumerate(clouds):
        single = tiny.processor([cloud])
        length = single["input_ids"].shape[1]
        single_logits = tiny.model(**single).logits[0]
        torch.testing.assert_close(batch_logits[row, -length:], single_logits, rtol=1e-4, atol=1e-4)
    generated = tiny.model.generate(**batch, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    for row, cloud in enumerate(clouds):
        single = tiny.processor([cloud])
        alone = tiny.model.generate(**single, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        assert generated[row, -4:].tolist() == alone[0, -4:].tolist()


@torch.no_grad()
def test_nan_padded_tensor_and_list_give_same_logits(tiny_qwen, make_cloud):
    a, b = make_cloud((60, 40, 30), 600, seed=15), make_cloud((70, 70, 20), 450, seed=16)
    inputs = tiny_qwen.processor([a, b])
    padded = torch.full((2, 600, 9), float("nan"))
    padded[0], padded[1, :450] = a, b
    from_list = tiny_qwen.model(**inputs).logits
    from_tensor = tiny_qwen.model(**dict(inputs, point_clouds=padded)).logits
    torch.testing.assert_close(from_list, from_tensor, rtol=0, atol=0)


def test_mismatched_point_token_count_names_both_numbers(tiny_qwen, make_cloud):
    small, large = make_cloud((30, 30, 30), 300, seed=17), make_cloud((120, 120, 40), 3000, seed=18)
    inputs = tiny_qwen.processor([small])
    ids_count = int((inputs["input_ids"] == tiny_qwen.model.config.point_token_id).sum())
    tokens = len(tiny_qwen.processor([large])["input_ids"][0]) - len(inputs["input_ids"][0]) + ids_count
    with pytest.raises(InputError, match=rf"has {ids_count} <\|point_pad\|> ids .* encodes to {tokens} tokens"):
        tiny_qwen.model(**dict(inputs, point_clouds=[large]))
    with pytest.raises(InputError, match="2 point clouds for a batch of 1"):
        tiny_qwen.model(**dict(inputs, point_clouds=[small, small]))


def test_rejects_bfloat16_point_rows(tiny_qwen, make_cloud):
    inputs = tiny_qwen.processor([make_cloud((30, 30, 30), 200, seed=19)])
    with pytest.raises(InputError, match="float32"):
        tiny_qwen.model(**dict(inputs, point_clouds=[inputs["point_clouds"][0].bfloat16()]))


@torch.no_grad()
def test_beam_search_repeats_clouds_with_beams(tiny_qwen, make_cloud):
    inputs = tiny_qwen.processor([make_cloud((50, 50, 30), 500, seed=20)])
    out = tiny_qwen.model.generate(
        **inputs, max_new_tokens=3, min_new_tokens=3, num_beams=2, num_return_sequences=2, do_sample=False
    )
    assert out.shape == (2, inputs["input_ids"].shape[1] + 3)


@torch.no_grad()
def test_bfloat16_decoder_keeps_float32_encoder(make_cloud):
    loaded = load_spatiallm("tiny-qwen", device="cpu", dtype="bfloat16")
    model = loaded.model
    assert {p.dtype for p in model.point_backbone.parameters()} == {torch.float32}
    assert model.point_proj.weight.dtype == model.model.embed_tokens.weight.dtype == torch.bfloat16
    reference = load_spatiallm("tiny-qwen", device="cpu", dtype="float32").model
    torch.testing.assert_close(model.point_proj.weight.float(), reference.point_proj.weight, rtol=1e-2, atol=1e-3)
    for name, parameter in model.point_backbone.named_parameters():
        assert torch.equal(parameter, reference.point_backbone.get_parameter(name)), name
    inputs = loaded.processor([make_cloud((50, 50, 30), 400, seed=21)])
    logits = model(**inputs).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


@torch.no_grad()
def test_a_blanket_cast_leaves_the_encoder_float32_at_forward(make_cloud):
    loaded = load_spatiallm("tiny-qwen", device="cpu")
    model = loaded.model.to(torch.bfloat16)
    logits = model(**loaded.processor([make_cloud((50, 50, 30), 400, seed=21)])).logits
    assert {p.dtype for p in model.point_backbone.parameters()} == {torch.float32}
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


def test_forward_signature_exposes_what_generate_inspects(tiny):
    import inspect

    parameters = inspect.signature(tiny.model.forward).parameters
    assert {"attention_mask", "position_ids", "logits_to_keep", "point_clouds"} <= set(parameters)


def test_empty_or_malformed_clouds_are_input_errors(tiny_qwen, make_cloud):
    with pytest.raises(InputError, match="no point clouds"):
        tiny_qwen.processor([])
    with pytest.raises(InputError, match=r"\(N, 9\)"):
        tiny_qwen.processor([make_cloud((10, 10, 10), 20, seed=22)[:, :6]])
    with pytest.raises(InputError, match="no points"):
        tiny_qwen.processor([torch.full((5, 9), float("nan"))])
