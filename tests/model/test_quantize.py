"""The CPU fast path (`--quantize int8`): the int8 linear layer's arithmetic, what `load_spatiallm(quantize=...)`
quantizes and what it leaves in float32, generation on it, and the flag's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.generation import GenerationSettings, stream_generate
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.model.quantize import QUANTIZERS, DynamicInt8Linear, check_quantize, quantize_model
from spatialvlm_cli.pipeline import QUANTIZE_MODES


def _linear(in_features: int, out_features: int, bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(in_features, out_features, bias=bias)


def test_int8_product_is_exact_on_the_int8_grid() -> None:
    """Weights and inputs that are int8 codes times a scale go through unrounded: the result is the float product."""
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(-127, 128, (24, 40), generator=generator, dtype=torch.int8)
    codes[:, 0] = 127  # every row reaches the full range, so its scale is exactly the one chosen below
    weight_scale = torch.rand(24, generator=generator) + 0.5
    layer = DynamicInt8Linear(codes, weight_scale, None)
    x_codes = torch.randint(-127, 128, (3, 5, 40), generator=generator).float()
    x_codes[..., 1] = -127
    x = x_codes * 0.25  # per-row scale 0.25: a power of two, so the division back to codes is exact
    expected = (x_codes.double() @ codes.double().t()) * 0.25 * weight_scale.double()
    torch.testing.assert_close(layer(x).double(), expected, rtol=1e-6, atol=0)
    assert layer(x).shape == (3, 5, 24)


def test_int8_linear_error_is_about_one_percent() -> None:
    linear = _linear(256, 96)
    quantized = DynamicInt8Linear.from_linear(linear)
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = linear(x)
        error = (quantized(x) - reference).norm() / reference.norm()
        weight_error = (quantized.dequantized_weight() - linear.weight).abs().max(dim=1).values
    assert 1e-4 < error < 0.02
    # each weight is off by at most half its row's step
    assert torch.all(weight_error <= quantized.weight_scale / 2 + 1e-7)
    assert quantized.weight.dtype == torch.int8 and quantized.weight.abs().max() == 127


def test_zero_rows_bias_and_dtype() -> None:
    linear = _linear(32, 16)
    quantized = DynamicInt8Linear.from_linear(linear)
    with torch.no_grad():
        out = quantized(torch.zeros(2, 32))
        assert torch.equal(out, linear.bias.expand(2, 16))  # no NaN from a zero scale
        half = quantized(torch.randn(4, 32).bfloat16())
    assert half.dtype == torch.bfloat16
    unbiased = DynamicInt8Linear.from_linear(_linear(32, 16, bias=False))
    assert unbiased.bias is None and torch.equal(unbiased(torch.zeros(1, 32)), torch.zeros(1, 16))


def test_int8_linear_refuses_a_float_weight() -> None:
    with pytest.raises(ConfigError, match="int8 weight"):
        DynamicInt8Linear(torch.zeros(4, 4), torch.ones(4), None)


def test_flag_choices_match_the_library() -> None:
    assert set(QUANTIZE_MODES) == {"none", *QUANTIZERS}


def test_check_quantize_refuses_other_devices_and_modes() -> None:
    check_quantize("int8", torch.device("cpu"))
    check_quantize("none", torch.device("meta"))
    with pytest.raises(ConfigError, match="CPU fast path"):
        check_quantize("int8", torch.device("meta"))
    with pytest.raises(ConfigError, match="none or int8"):
        check_quantize("int4", torch.device("cpu"))


@pytest.fixture(scope="module")
def fast_qwen():
    return load_spatiallm("tiny-qwen", device="cpu", quantize="int8")


def test_what_the_fast_path_quantizes(fast_qwen, tiny_qwen) -> None:
    model = fast_qwen.model
    layers = model.config.num_hidden_layers
    quantized = [name for name, module in model.named_modules() if isinstance(module, DynamicInt8Linear)]
    assert len(quantized) == 7 * layers + 1 and "lm_head" in quantized
    assert all(name.startswith("model.layers.") for name in quantized if name != "lm_head")
    # the point encoder, the projector, the PE and the embedding lookup stay float32
    assert not any(isinstance(module, DynamicInt8Linear) for module in model.point_backbone.modules())
    assert isinstance(model.point_proj, nn.Linear) and model.point_proj.weight.dtype == torch.float32
    assert model.get_input_embeddings().weight.dtype == torch.float32
    # the tied head's int8 copy is the embedding, rounded
    head = model.lm_head.dequantized_weight()
    embedding = model.get_input_embeddings().weight
    assert (head - embedding).abs().max() <= model.lm_head.weight_scale.max() / 2 + 1e-7
    # the stock model loaded beside it in the same process is untouched
    assert type(tiny_qwen.model.lm_head) is nn.Linear


def test_quantize_none_is_the_identity(tiny_qwen) -> None:
    before = {name: type(module) for name, module in tiny_qwen.model.named_modules()}
    quantize_model(tiny_qwen.model, "none")
    assert {name: type(module) for name, module in tiny_qwen.model.named_modules()} == before


def test_generation_on_the_fast_path_follows_float32(fast_qwen, tiny_qwen, make_cloud) -> None:
    """Random weights make near-ties common, so the greedy texts need not agree to the end: the first tokens do, and
    the next-token distributions stay close."""
    cloud = make_cloud((40, 30, 20), 300, seed=5)
    inputs = fast_qwen.processor([cloud])
    settings = GenerationSettings(max_new_tokens=12, greedy=True)
    fast = stream_generate(fast_qwen.model, fast_qwen.tokenizer, inputs, settings)
    reference = stream_generate(tiny_qwen.model, tiny_qwen.tokenizer, inputs, settings)
    assert fast.num_new_tokens == reference.num_new_tokens == 12
    with torch.no_grad():
        fast_logits = fast_qwen.model(**inputs).logits[0, -1]
        float_logits = tiny_qwen.model(**inputs).logits[0, -1]
    assert fast_logits.argmax() == float_logits.argmax()
    assert (fast_logits - float_logits).abs().max() < 0.05 * float_logits.abs().max()


def test_infer_quantize_flag(tmp_path: Path) -> None:
    from spatialvlm_cli.synthetic import make_room, split_seed, write_ply

    room = make_room(split_seed("heldout", 0))
    ply = tmp_path / "room.ply"
    write_ply(ply, room.points, room.colours)
    runner = CliRunner()
    result = runner.invoke(app, ["infer", "-p", str(ply), "-o", str(tmp_path / "out"), "-m", "tiny-qwen", "--greedy",
                                 "--max_new_tokens", "8", "--quantize", "int8", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "room.json").read_text())
    assert record["quantize"] == "int8"
    bad = runner.invoke(app, ["infer", "-p", str(ply), "-o", str(tmp_path / "bad"), "--quantize", "int4"])
    assert bad.exit_code == 1 and "--quantize must be one of none, int8" in bad.stderr
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()
    image = runner.invoke(app, ["infer", "--image", str(ply), "--quantize", "int8"])
    assert image.exit_code == 1 and "point-cloud models only" in image.stderr
