"""The nine prefill checkpoints: PASS on our variants, FAIL on reproductions of the seeds' defects."""

from __future__ import annotations

import logging

import pytest
import torch

from spatialvlm_cli.pe import build_position_encoding, observe_rotary
from spatialvlm_cli.pe.checks import PrefillChecker, check_cache_length
from spatialvlm_cli.pe.rope3d import RoPE3D


def checked_prefill(model, pe, prompt) -> tuple[PrefillChecker, object]:
    checker = PrefillChecker(pe)
    with torch.no_grad(), observe_rotary(checker), pe.positions(prompt.positions):
        out = model(inputs_embeds=prompt.embeds, attention_mask=prompt.attention_mask,
                    position_ids=prompt.positions.position_ids, use_cache=True)
    return checker, out


def failed(checker: PrefillChecker) -> set[str]:
    return {verdict.checkpoint.split()[0] for verdict in checker.verdicts if not verdict.passed}


@pytest.mark.parametrize("rule", ["3D_only", "3D_with_1D"])
@pytest.mark.parametrize(("name", "options"), [("3D_RoPE", {}), ("3D_RoPE", {"layout": "chunked"}),
                                               ("MixedRoPE3D", {"init": "random"})])
def test_every_checkpoint_passes_on_our_variants(lm, scene, rule: str, name: str, options: dict) -> None:
    model = lm("llama-hd24")
    pe = build_position_encoding(name, rule, model.config, options)
    pe.attach(model.model)
    prompt = scene(model, [5, 8])
    checker, out = checked_prefill(model, pe, prompt)
    assert checker.passed, checker.report()
    per_layer = {"1", "4", "5", "7", "8", "9"}
    assert [v.checkpoint.split()[0] for v in checker.verdicts if v.layer is None] == ["2", "3", "6"]
    assert {v.checkpoint.split()[0] for v in checker.verdicts if v.layer == 1} == per_layer
    # 3 pad + 3 text + <point_start>, then 5 points; 3 text + <point_start>, then 8 points
    assert checker.verdicts[0].detail.endswith("point-token spans [[(7, 12)], [(4, 12)]]")
    assert check_cache_length(out.past_key_values, prompt.attention_mask).passed

    decode = PrefillChecker(pe)
    with torch.no_grad(), observe_rotary(decode):
        model(input_ids=torch.tensor([[9], [9]]), past_key_values=out.past_key_values, use_cache=True,
              attention_mask=torch.cat((prompt.attention_mask, torch.ones(2, 1, dtype=torch.long)), dim=1),
              position_ids=prompt.positions.position_ids[:, -1:] + 1)
    assert decode.passed and {v.checkpoint for v in decode.verdicts} == {"decode detection"}


def test_seed_compatible_parameters_fail_checkpoint_9(lm, scene) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding("MixedRoPE3D", "3D_with_1D", model.config,
                                 {"init": "seed", "param_layout": "seed-compatible"})
    pe.attach(model.model)
    checker, _ = checked_prefill(model, pe, scene(model, [6]))
    assert failed(checker) == {"9"}


class GPTJStyle(RoPE3D):
    """Seed 001's tables: angles duplicated [a0, a0, a1, a1, ...] but applied with rotate_half."""

    def tables_from_units(self, stock_cos, stock_sin, point_mask, coords, attention_scaling=1.0):
        angles = self.point_angles(coords).repeat_interleave(2, dim=-1)
        select = point_mask[..., None].expand_as(stock_cos)
        return torch.where(select, angles.cos(), stock_cos), torch.where(select, angles.sin(), stock_sin)


class OneDOverwrites(RoPE3D):
    """Seed bug 3: the 1-D RoPE applied to all tokens wipes the 3-D rotation of point tokens."""

    def tables_from_units(self, stock_cos, stock_sin, point_mask, coords, attention_scaling=1.0):
        return stock_cos, stock_sin


@pytest.mark.parametrize(("cls", "expected"), [(GPTJStyle, {"4", "5", "9"}), (OneDOverwrites, {"7"})])
def test_seed_defects_fail_their_checkpoints(lm, scene, cls, expected: set[str]) -> None:
    model = lm("qwen2-hd16")
    pe = cls("3D_only", model.config, cls.Options())
    pe.attach(model.model)
    checker, _ = checked_prefill(model, pe, scene(model, [6]))
    assert failed(checker) == expected, checker.report()


def test_cache_shorter_than_mask_fails() -> None:
    class Cache:
        def get_seq_length(self) -> int:
            return 787

    verdict = check_cache_length(Cache(), torch.ones(1, 232))
    assert not verdict.passed and verdict.detail == "cache 787, mask 232"


def test_spatialvlm_verbose_logs_the_verdicts(lm, scene, monkeypatch, caplog) -> None:
    model = lm("qwen2-hd16")
    pe = build_position_encoding("3D_RoPE", "3D_with_1D", model.config)
    pe.attach(model.model)
    prompt = scene(model, [4])

    def prefill() -> None:
        with torch.no_grad(), pe.positions(prompt.positions):
            model(inputs_embeds=prompt.embeds, position_ids=prompt.positions.position_ids)

    with caplog.at_level(logging.INFO, logger="spatialvlm_cli.pe.checks"):
        monkeypatch.delenv("SPATIALVLM_VERBOSE", raising=False)
        prefill()
        assert not caplog.records
        monkeypatch.setenv("SPATIALVLM_VERBOSE", "1")
        prefill()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3 + 6 * model.config.num_hidden_layers
    assert all(line.startswith("[PASS]") for line in lines)
    assert any(line.startswith("[PASS] 9 relative position of point tokens layer 1") for line in lines)
