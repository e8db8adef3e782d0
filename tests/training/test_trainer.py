"""Training smoke tests on tiny shapes: loss goes down, the result loads as a checkpoint, resume is exact."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.training import TrainSettings, build_examples, train

REPO = Path(__file__).resolve().parents[2]
ARCHITECTURE = "tiny-qwen"


@pytest.fixture(scope="module")
def examples():
    return build_examples(ARCHITECTURE, "train", 0, 2, workers=1)


def settings(**changes) -> TrainSettings:
    base = dict(model=ARCHITECTURE, vlm_pe="3D_RoPE", merge_rule="3D_with_1D", steps=8, batch_size=2,
                lr=3e-3, warmup_steps=1, checkpoint_every=4)
    return TrainSettings(**{**base, **changes})


def test_loss_falls_and_the_result_loads_as_a_checkpoint(tmp_path, examples):
    report = train(settings(), examples, tmp_path / "run", log_every=4)
    assert report.steps == 8 and len(report.losses) == 2 and report.parameters > 0
    assert report.losses[1] < report.losses[0] - 0.5  # nats per target token

    loaded = load_spatiallm(str(tmp_path / "run"), device="cpu")
    assert loaded.source == "local" and not loaded.random_weights
    assert loaded.model.config.vlm_pe == "3D_RoPE" and loaded.model.config.pcd_pe_merge_rule == "3D_with_1D"
    trained = torch.load(tmp_path / "run" / "resume.pt", weights_only=False)["model"]
    state = loaded.model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in trained.items())
    assert set(load_file(tmp_path / "run" / "model.safetensors")) <= set(trained)


def test_resume_continues_exactly(tmp_path, examples):
    train(settings(), examples, tmp_path / "straight")

    def interrupt_after_checkpoint(step: int, loss: float) -> None:
        if step == 5:  # the step-4 checkpoint is on disk
            raise KeyboardInterrupt

    # Three legs: a time box (stop_after), then Ctrl-C, then to the end of the schedule.
    first = train(settings(), examples, tmp_path / "resumed", stop_after=2)
    assert first.steps == 2 and torch.load(tmp_path / "resumed" / "resume.pt", weights_only=False)["step"] == 2
    with pytest.raises(KeyboardInterrupt):
        train(settings(), examples, tmp_path / "resumed", resume=True, on_step=interrupt_after_checkpoint)
    assert torch.load(tmp_path / "resumed" / "resume.pt", weights_only=False)["step"] == 4
    report = train(settings(), examples, tmp_path / "resumed", resume=True)
    assert report.steps == 8
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.allclose(straight[name], resumed[name], atol=1e-6) for name in straight)

    with pytest.raises(ValueError, match="other settings"):
        train(settings(lr=1e-4), examples, tmp_path / "resumed", resume=True)


def test_fine_tuning_starts_from_a_checkpoint(tmp_path, examples):
    """A checkpoint as `model`: training starts from its weights (at lr 0 they come out unchanged, number-token
    embeddings included: no ordinal re-initialisation of trained weights), and a PE swap applies on top."""
    train(settings(steps=2), examples, tmp_path / "base")
    report = train(settings(model=str(tmp_path / "base"), steps=1, lr=0.0), examples, tmp_path / "tuned")
    assert report.steps == 1
    base, tuned = (load_file(tmp_path / name / "model.safetensors") for name in ("base", "tuned"))
    assert base.keys() == tuned.keys() and all(torch.equal(base[name], tuned[name]) for name in base)
    swapped = train(settings(model=str(tmp_path / "base"), steps=1, vlm_pe="MixedRoPE3D", merge_rule="3D_only"),
                    examples, tmp_path / "swapped")
    assert swapped.steps == 1
    assert load_spatiallm(str(tmp_path / "swapped"), device="cpu").model.config.vlm_pe == "MixedRoPE3D"


def _train_script():
    spec = importlib.util.spec_from_file_location("train_rooms", REPO / "scripts" / "train_rooms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_script_end_to_end(tmp_path, capsys):
    script = _train_script()
    common = ["--model", ARCHITECTURE, "--train-rooms", "2", "--data", str(tmp_path / "rooms.pt"),
              "--workers", "1", "--batch-size", "1", "--threads", "1"]
    assert script.main([*common, "--out", str(tmp_path / "run"), "--steps", "2", "--VLM_PE", "None",
                        "--then", "steps=1 lr=0.0005"]) == 0
    assert (tmp_path / "rooms.pt").is_file()
    for folder in (tmp_path / "run" / "leg-1", tmp_path / "run"):
        assert {"config.json", "model.safetensors", "tokenizer.json", "training.json"} <= {
            p.name for p in folder.iterdir()
        }
    last = json.loads((tmp_path / "run" / "training.json").read_text())["settings"]
    assert (last["steps"], last["lr"], last["init_from"]) == (1, 0.0005, str(tmp_path / "run" / "leg-1"))
    capsys.readouterr()
    assert script.main([*common, "--out", str(tmp_path / "bad"), "--VLM_PE", "4D_RoPE"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4D_RoPE" in err[0]


def test_gradient_checkpointing_trains_the_same_weights(tmp_path, examples):
    train(settings(steps=2), examples, tmp_path / "plain")
    train(settings(steps=2, gradient_checkpointing=True), examples, tmp_path / "checkpointed")
    plain, checkpointed = (load_file(tmp_path / name / "model.safetensors") for name in ("plain", "checkpointed"))
    assert all(torch.allclose(plain[name], checkpointed[name], atol=1e-5) for name in plain)


def test_bf16_autocast_keeps_float32_weights_and_a_close_loss(tmp_path, examples):
    fp32 = train(settings(steps=2), examples, tmp_path / "fp32", log_every=1)
    bf16 = train(settings(steps=2, precision="bf16"), examples, tmp_path / "bf16", log_every=1)
    assert abs(bf16.losses[0] - fp32.losses[0]) < 0.05 * fp32.losses[0]  # the same first step, rounded to bf16
    assert all(tensor.dtype == torch.float32 for tensor in load_file(tmp_path / "bf16" / "model.safetensors").values())


@pytest.mark.parametrize("precision", ["tf32", "fp16"])
def test_cuda_only_precisions_are_refused_on_cpu(tmp_path, examples, precision):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        train(settings(steps=1, precision=precision), examples, tmp_path / precision)


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="precision"):
        settings(precision="fp8")
