"""Tiny transformers language models (stock, and with our point-aware attention) and point-cloud prompts for the
positional-encoding tests.

A "scene" mimics what the SpatialLM model hands the decoder at prefill: text tokens, <point_start>, M point-token
embeddings (random, like projected encoder features), <point_end>, more text; left-padded when batched. `prefill`
runs a forward with a variant's tables, as the SpatialLM model's forward does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from spatialvlm_cli.model.attention import point_rotary_for, use_point_attention
from spatialvlm_cli.pe import PointPositions, PositionEncoding
from spatialvlm_cli.transformers_seam import CACHE_ARGUMENT, output_cache

COMMON = dict(vocab_size=256, intermediate_size=128, num_hidden_layers=2, max_position_embeddings=2048,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=1, eos_token_id=2,
              pad_token_id=0)
# name -> (config class, model class, sizes); head_dim 16 (transformers-notes §5.1) and 24 (12 pairs, not 2^k).
LM_CASES = {
    "qwen2-hd16": (Qwen2Config, Qwen2ForCausalLM, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2)),
    "llama-hd16": (LlamaConfig, LlamaForCausalLM, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2)),
    "qwen2-hd24": (Qwen2Config, Qwen2ForCausalLM, dict(hidden_size=96, num_attention_heads=4, num_key_value_heads=2)),
    "llama-hd24": (LlamaConfig, LlamaForCausalLM,
                   dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=24)),
}
POINT_START, POINT_END = 250, 251


def make_config(case: str):
    config_cls, _, sizes = LM_CASES[case]
    return config_cls(**COMMON, **sizes)


def make_stock_lm(case: str, attn: str = "sdpa", seed: int = 0) -> PreTrainedModel:
    """A plain transformers Qwen2 / Llama causal LM with seeded random weights."""
    _, model_cls, _ = LM_CASES[case]
    torch.manual_seed(seed)
    return model_cls._from_config(make_config(case), attn_implementation=attn).eval()


def make_lm(case: str, attn: str = "sdpa", seed: int = 0) -> PreTrainedModel:
    """The same model and weights as `make_stock_lm`, its decoder using our point-aware attention."""
    model = make_stock_lm(case, attn, seed)
    state = model.state_dict()
    use_point_attention(model.model)
    model.load_state_dict(state)
    return model.eval()


def prefill(model: PreTrainedModel, pe: PositionEncoding, embeds: Tensor, positions: PointPositions, **kwargs):
    """A forward over `embeds` (B, S, C) whose attention rotates with `pe`'s tables for `positions`."""
    rotary = point_rotary_for(model.model, pe, embeds, positions)
    return model(inputs_embeds=embeds, position_ids=positions.position_ids, point_rotary=rotary, **kwargs)


def cache_of(out) -> dict:
    """The keyword argument that hands `out`'s KV cache to the next forward."""
    return {CACHE_ARGUMENT: output_cache(out)}


@dataclass
class Scene:
    embeds: Tensor           # (B, S, C) prefill embeddings, point tokens included
    attention_mask: Tensor   # (B, S) int64, 0 at left padding
    positions: PointPositions


def make_scene(model: PreTrainedModel, point_counts: list[int], seed: int = 0, text_before: int = 3,
               text_after: int = 4, coord_range: int = 12) -> Scene:
    """Left-padded batch, one sequence per entry of `point_counts`."""
    generator = torch.Generator().manual_seed(seed)
    embed = model.get_input_embeddings()
    rows, masks, coords = [], [], []
    for count in point_counts:
        before = torch.randint(3, 240, (text_before,), generator=generator)
        after = torch.randint(3, 240, (text_after,), generator=generator)
        with torch.no_grad():
            text = embed(torch.cat((before, torch.tensor([POINT_START]), torch.tensor([POINT_END]), after)))
        points = torch.randn(count, text.shape[1], generator=generator) * float(embed.weight.detach().std())
        rows.append(torch.cat((text[: text_before + 1], points, text[text_before + 1:])))
        is_point = torch.zeros(len(rows[-1]), dtype=torch.bool)
        is_point[text_before + 1: text_before + 1 + count] = True
        masks.append(is_point)
        coords.append(torch.randint(0, coord_range, (count, 3), generator=generator).float())
    length = max(len(row) for row in rows)
    pad = embed.weight[0].detach()
    embeds = torch.stack([torch.cat((pad.expand(length - len(row), -1), row)) for row in rows])
    attention_mask = torch.stack([torch.cat((torch.zeros(length - len(row)), torch.ones(len(row)))).long()
                                  for row in rows])
    point_mask = torch.stack([torch.cat((torch.zeros(length - len(m), dtype=torch.bool), m)) for m in masks])
    positions = PointPositions.from_point_blocks(point_mask, coords, attention_mask)
    return Scene(embeds, attention_mask, positions)


def greedy_cached(model: PreTrainedModel, pe: PositionEncoding, scene: Scene, steps: int) -> tuple[Tensor, Tensor]:
    """Prefill under `pe.positions`, then plain one-token decode steps on the KV cache.
    Returns tokens (B, steps) and the logits of each step (B, steps, V)."""
    embeds = pe.embed_points(scene.embeds, scene.positions)
    mask, position_ids = scene.attention_mask, scene.positions.position_ids
    with torch.no_grad():
        out = prefill(model, pe, embeds, scene.positions, attention_mask=mask, use_cache=True)
        tokens, logits = [], []
        for _ in range(steps):
            logits.append(out.logits[:, -1])
            tokens.append(out.logits[:, -1].argmax(-1))
            mask = torch.cat((mask, torch.ones_like(mask[:, :1])), dim=1)
            position_ids = position_ids[:, -1:] + 1
            out = model(input_ids=tokens[-1][:, None], attention_mask=mask, position_ids=position_ids,
                        use_cache=True, **cache_of(out))
    return torch.stack(tokens, 1), torch.stack(logits, 1)


def greedy_recomputed(model: PreTrainedModel, pe: PositionEncoding, scene: Scene, steps: int) -> tuple[Tensor, Tensor]:
    """Same decode, but every step recomputes the whole sequence without a cache (explicit 2-D mask)."""
    embed = model.get_input_embeddings()
    base = pe.embed_points(scene.embeds, scene.positions)
    batch = base.shape[0]
    generated = torch.zeros(batch, 0, dtype=torch.long)
    tokens, logits = [], []
    with torch.no_grad():
        for _ in range(steps):
            n = generated.shape[1]
            embeds = torch.cat((base, embed(generated)), dim=1)
            mask = torch.cat((scene.attention_mask, torch.ones(batch, n, dtype=torch.long)), dim=1)
            last = scene.positions.position_ids[:, -1:]
            position_ids = torch.cat((scene.positions.position_ids, last + 1 + torch.arange(n)), dim=1)
            positions = PointPositions(
                position_ids,
                torch.cat((scene.positions.point_mask, torch.zeros(batch, n, dtype=torch.bool)), dim=1),
                torch.cat((scene.positions.point_coords, torch.zeros(batch, n, 3)), dim=1))
            out = prefill(model, pe, embeds, positions, attention_mask=mask, use_cache=False)
            logits.append(out.logits[:, -1])
            tokens.append(out.logits[:, -1].argmax(-1))
            generated = torch.cat((generated, tokens[-1][:, None]), dim=1)
    return torch.stack(tokens, 1), torch.stack(logits, 1)


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Tiny matrices: one intra-op thread is ~100x faster than two on a CPU shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def lm() -> Callable[..., PreTrainedModel]:
    return make_lm


@pytest.fixture
def stock_lm() -> Callable[..., PreTrainedModel]:
    return make_stock_lm


@pytest.fixture
def lm_config() -> Callable[[str], object]:
    return make_config


@pytest.fixture
def scene() -> Callable[..., Scene]:
    return make_scene


@pytest.fixture
def point_forward() -> Callable[..., object]:
    return prefill


@pytest.fixture
def decode() -> dict[str, Callable[..., tuple[Tensor, Tensor]]]:
    return {"cached": greedy_cached, "recomputed": greedy_recomputed}
