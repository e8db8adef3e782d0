"""Loading: checkpoint round trip, real SpatialLM configs, presets, devices/dtypes and one-line load errors."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from spatialvlm_cli.device import resolve_device, resolve_dtype
from spatialvlm_cli.errors import ConfigError, ModelLoadError
from spatialvlm_cli.model import (
    DEFAULT_MODEL,
    SpatialLMLlamaForCausalLM,
    SpatialLMQwenConfig,
    SpatialLMQwenForCausalLM,
    list_presets,
    load_spatiallm,
)
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.model.presets import read_preset

# Same weights in another model instance: CPU GEMM kernels may round differently with memory alignment.
SAME_WEIGHTS_ATOL = 1e-6


@pytest.fixture(scope="module")
def saved_qwen(tmp_path_factory):
    """tiny-qwen saved as an ordinary checkpoint directory."""
    loaded = load_spatiallm("tiny-qwen", device="cpu")
    directory = tmp_path_factory.mktemp("ckpt")
    loaded.model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return loaded, directory


@torch.no_grad()
def test_save_and_reload_gives_identical_logits(saved_qwen, make_cloud):
    original, directory = saved_qwen
    inputs = original.processor([make_cloud((80, 60, 40), 1200, seed=30)], detect_type="all")
    expected = original.model(**inputs).logits

    auto = AutoModelForCausalLM.from_pretrained(directory).eval()
    assert type(auto) is SpatialLMQwenForCausalLM
    torch.testing.assert_close(auto(**inputs).logits, expected, rtol=0, atol=SAME_WEIGHTS_ATOL)

    reloaded = load_spatiallm(str(directory), device="cpu")
    assert (reloaded.source, reloaded.random_weights, reloaded.num_bins) == ("local", False, 1280)
    torch.testing.assert_close(reloaded.model(**inputs).logits, expected, rtol=0, atol=SAME_WEIGHTS_ATOL)
    again = reloaded.processor([inputs["point_clouds"][0]], detect_type="all")
    assert torch.equal(again["input_ids"], inputs["input_ids"])
    assert reloaded.tokenizer.chat_template == original.tokenizer.chat_template
    assert reloaded.tokenizer.eos_token == "<|im_end|>"


def test_reload_keeps_config_fields(saved_qwen):
    original, directory = saved_qwen
    config = AutoConfig.from_pretrained(directory)
    assert isinstance(config, SpatialLMQwenConfig)
    for name in (
        "point_backbone",
        "point_config",
        "projector",
        "point_start_token_id",
        "point_end_token_id",
        "point_token_id",
        "vlm_pe",
        "pcd_pe_merge_rule",
        "pe",
        "vocab_size",
        "hidden_size",
        "tie_word_embeddings",
    ):
        assert getattr(config, name) == getattr(original.model.config, name), name
    assert config.point_config["enc_channels"] == [8, 8, 16, 16, 32]


def test_real_spatiallm_config_without_our_fields_loads(tmp_path):
    """A SpatialLM config.json (no vlm_pe / pcd_pe_merge_rule / pe) gets stock 1-D RoPE."""
    spatiallm = {
        "model_type": "spatiallm_qwen",
        "architectures": ["SpatialLMQwenForCausalLM"],
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "rope_theta": 1000000.0,
        "point_backbone": "sonata",
        "point_config": {"in_channels": 6, "num_bins": 1280, "enc_mode": True, "mask_token": True},
        "point_start_token_id": 151652,
        "point_end_token_id": 151653,
        "point_token_id": 151654,
    }
    (tmp_path / "config.json").write_text(json.dumps(spatiallm))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, SpatialLMQwenConfig)
    assert (config.vlm_pe, config.pcd_pe_merge_rule, config.pe, config.projector) == (None, None, {}, "linear")
    assert config.point_token_id == 151654 and config.point_config["num_bins"] == 1280


def test_none_spelling_means_stock_rope():
    config = SpatialLMQwenConfig(vlm_pe="None", pcd_pe_merge_rule="none")
    assert config.vlm_pe is None and config.pcd_pe_merge_rule is None
    with pytest.raises(ConfigError, match="projector"):
        SpatialLMQwenConfig(projector="conv")


def test_presets_are_flagged_random_and_warn(caplog):
    assert {"tiny-qwen", "tiny-llama", "spatiallm1.1-qwen-0.5b-shape"} <= set(list_presets())
    assert "tiny-internvl" not in list_presets()  # panorama presets live in the same folder but are not offered here
    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli"):
        loaded = load_spatiallm("tiny-llama", device="cpu")
    assert loaded.random_weights and loaded.source == "preset"
    assert any("RANDOM" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli"):
        assert load_spatiallm("tiny-llama", device="cpu", warn_random=False).random_weights  # training from scratch
    assert not any("RANDOM" in record.getMessage() for record in caplog.records)
    assert type(loaded.model) is SpatialLMLlamaForCausalLM
    assert loaded.model.generation_config.eos_token_id == loaded.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert set(loaded.model.point_proj.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_preset_weights_depend_only_on_seed():
    a = load_spatiallm("tiny-qwen", device="cpu").model.state_dict()
    torch.manual_seed(1234)  # the global RNG must not matter
    b = load_spatiallm("tiny-qwen", device="cpu").model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_preset_yaml_path_and_strict_keys(tmp_path):
    from importlib.resources import files

    text = files("spatialvlm_cli").joinpath("assets/presets/tiny-qwen.yaml").read_text()
    good = tmp_path / "mine.yaml"
    good.write_text(text.replace("seed: 0", "seed: 7"))
    loaded = load_spatiallm(str(good), device="cpu")
    assert loaded.source == "preset" and loaded.spec == str(good)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "hiden_size: 3\n")
    with pytest.raises(ConfigError, match="hiden_size"):
        load_spatiallm(str(bad), device="cpu")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda text: text.replace("seed: 0", "seed: zero"), "seed must be an integer, got 'zero'"),
        (lambda text: text.replace("seed: 0", "seed: true"), "seed must be an integer, got True"),
        (lambda text: text.replace("chat_format: qwen\n", ""), "lacks chat_format"),
        (lambda text: "- a list\n", "must be a mapping of keys to values"),
    ],
)
def test_preset_values_are_checked(tmp_path, change, fragment):
    from importlib.resources import files

    text = files("spatialvlm_cli").joinpath("assets/presets/tiny-qwen.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(change(text))
    with pytest.raises(ConfigError, match=fragment):
        read_preset(str(bad))


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("remove", "named"),
    [("config.json", "config.json"), ("model.safetensors", "weights"), ("tokenizer.json", "tokenizer.json")],
)
def test_incomplete_checkpoint_names_missing_file(saved_qwen, tmp_path, remove, named):
    import shutil

    _, directory = saved_qwen
    copy = tmp_path / "ckpt"
    shutil.copytree(directory, copy)
    (copy / remove).unlink()
    with pytest.raises(ModelLoadError) as error:
        load_spatiallm(str(copy), device="cpu")
    assert named in _one_line(error)


def test_unknown_preset_lists_presets():
    with pytest.raises(ModelLoadError) as error:
        load_spatiallm("tiny-qwn", device="cpu")
    message = _one_line(error)
    assert "tiny-qwn" in message and "tiny-qwen" in message and "tiny-llama" in message


def test_offline_hub_id_fails_with_alternatives(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time upstream
    with pytest.raises(ModelLoadError) as error:
        load_spatiallm("spatialvlm-tests/no-such-model-0000", device="cpu")
    message = _one_line(error)
    assert "offline" in message and "local checkpoint directory" in message and "tiny-qwen" in message
    assert DEFAULT_MODEL == "spatialvlm-rooms"


def test_processor_without_weights_matches_the_loaded_one(saved_qwen, make_cloud):
    """load_processor reads only config and tokenizer, for a preset and a checkpoint alike, and prepares the same
    inputs as the processor load_spatiallm returns."""
    loaded, directory = saved_qwen
    cloud = make_cloud((40, 40, 20), 3000, 0)
    expected = loaded.processor([cloud])
    for spec in ("tiny-qwen", str(directory)):
        processor = load_processor(spec)
        assert processor.config.point_config == loaded.model.config.point_config
        got = processor([cloud])
        assert torch.equal(got["input_ids"], expected["input_ids"])
    with pytest.raises(ModelLoadError, match="tiny-qwn"):
        load_processor("tiny-qwn")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_processor("./no/such/checkpoint")


def test_device_and_dtype_resolution():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ConfigError, match="dtype"):
        resolve_dtype("int8", cpu)
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == cpu
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
