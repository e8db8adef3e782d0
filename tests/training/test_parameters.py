"""What a run trains: frozen groups stay bit-identical, LoRA fine-tunes and saves a plain checkpoint, and a PE swap
at fine-tune start leaves text-only logits as they were."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.training import TrainSettings, build_examples, load_for_training, train
from spatialvlm_cli.training.heldout import answer_loss
from spatialvlm_cli.training.parameters import parameter_group

PRESET = "tiny-qwen"


@pytest.fixture(scope="module")
def rooms():
    """8 synthetic training rooms and 2 held-out ones, prepared for the tiny preset."""
    return build_examples(PRESET, "train", 0, 8, workers=1), build_examples(PRESET, "heldout", 0, 2, workers=1)


@pytest.fixture(scope="module")
def base(tmp_path_factory, rooms) -> Path:
    """A briefly trained full model: the checkpoint the fine-tunes start from."""
    out = tmp_path_factory.mktemp("base")
    train(TrainSettings(model=PRESET, steps=6, batch_size=2, lr=3e-3, warmup_steps=1), rooms[0], out)
    return out


def settings(base: Path, **changes) -> TrainSettings:
    return TrainSettings(**{"model": str(base), "steps": 4, "batch_size": 2, "lr": 3e-3, "warmup_steps": 1,
                            **changes})


def groups_changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    assert before.keys() == after.keys()
    return {parameter_group(name) for name in before if not torch.equal(before[name], after[name])}


def test_parameter_groups_by_module():
    assert parameter_group("point_backbone.embedding.stem.weight") == "point_backbone"
    assert parameter_group("point_proj.weight") == "projector"
    assert parameter_group("position_encoding.layers.0.freqs_3d_kv") == "pe"
    assert parameter_group("model.layers.0.self_attn.q_proj.weight") == "decoder"
    assert parameter_group("lm_head.weight") == "decoder"


@pytest.mark.parametrize(("freeze", "trained"), [
    (("point_backbone",), {"projector", "decoder"}),
    (("point_backbone", "decoder"), {"projector"}),  # SpatialLM's train_proj_only
])
def test_frozen_groups_stay_bit_identical(tmp_path, rooms, base, freeze, trained):
    train(settings(base, freeze=freeze), rooms[0], tmp_path / "run")
    before, after = load_file(base / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert groups_changed(before, after) == trained


def test_unknown_group_is_refused():
    with pytest.raises(ConfigError, match="cannot freeze encoder"):
        TrainSettings(model=PRESET, freeze=("encoder",))


def test_lora_fine_tune_lowers_heldout_loss_and_saves_a_merged_checkpoint(tmp_path, rooms, base):
    train_rooms, heldout = rooms
    before = answer_loss(load_spatiallm(str(base), device="cpu"), heldout)
    report = train(settings(base, steps=12, lr=2e-2, lora_rank=4, lora_alpha=8, freeze=("point_backbone",)),
                   train_rooms, tmp_path / "lora")
    tuned = load_spatiallm(str(tmp_path / "lora"), device="cpu")
    assert answer_loss(tuned, heldout) < before - 0.05
    base_weights = load_file(base / "model.safetensors")
    tuned_weights = load_file(tmp_path / "lora" / "model.safetensors")
    assert not any("lora" in name for name in tuned_weights)  # merged: the base model's names and shapes
    assert report.parameters == sum(tensor.numel() for tensor in tuned_weights.values())
    assert groups_changed(base_weights, tuned_weights) == {"projector", "decoder"}
    changed = {name for name in base_weights if not torch.equal(base_weights[name], tuned_weights[name])}
    # LoRA adapts the attention and MLP projections; the decoder's embeddings and norms stay as they were.
    assert changed and all(name.startswith("point_proj.") or name.endswith("_proj.weight") for name in changed)


def test_resumed_lora_run_equals_an_uninterrupted_one(tmp_path, rooms, base):
    lora = settings(base, lora_rank=4, lora_alpha=8, checkpoint_every=2)
    train(lora, rooms[0], tmp_path / "straight")
    train(lora, rooms[0], tmp_path / "resumed", stop_after=2)
    train(lora, rooms[0], tmp_path / "resumed", resume=True)
    straight, resumed = (load_file(tmp_path / name / "model.safetensors") for name in ("straight", "resumed"))
    assert all(torch.allclose(straight[name], resumed[name], atol=1e-6) for name in straight)


@pytest.mark.parametrize(("vlm_pe", "options"), [("3D_RoPE", {}), ("MixedRoPE3D", {"init": "axial"})])
def test_pe_swap_at_fine_tune_start_keeps_text_only_logits(base, vlm_pe, options):
    """Text has no point tokens, so a 3-D PE must rotate it exactly as the base model's 1-D RoPE did (MixedRoPE3D's
    axial initialisation included): before the first step the swapped model's text logits are the base model's."""
    ids = torch.tensor([[3, 17, 42, 99, 5, 260, 7]])
    reference = load_spatiallm(str(base), device="cpu").model
    swapped = load_for_training(str(base), vlm_pe, "3D_with_1D", options).model.eval()
    with torch.no_grad():
        torch.testing.assert_close(swapped(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-5, rtol=0)
