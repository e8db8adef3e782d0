"""The CPU fast path (`infer --quantize int8`): dynamic int8 for the decoder's linear layers and the LM head.

Decoding one token reads every decoder weight once, so on a CPU its time is the weights' bytes over the memory
bandwidth; int8 weights are a quarter of float32's. Prefill is matrix-multiply bound, and int8 products run on the
CPU's integer dot-product units (AVX512-VNNI / AMX on x86), which do four times the work per instruction.

How: every `nn.Linear` of the decoder layers (q, k, v, o, gate, up, down) and the LM head becomes a
`DynamicInt8Linear`: the weight is quantized once, symmetric per output channel (scale = max|W_row| / 127); at every
call the input is quantized per token the same way, the int8 x int8 -> int32 product runs in `torch._int_mm`, and
the result is rescaled to float32. This is what PyTorch's deprecated `torch.ao.quantization.quantize_dynamic` did
(per-tensor, through the deprecated quantized-tensor types) and what torchao's int8 dynamic-activation config does
on CPU (through tensor subclasses): the same kernel, here in one small module with no dependency. Weight-only int8
(`torch.ops.aten._weight_int8pack_mm`) keeps float32 activations but measured 3-10x slower than float32 on this
project's CPU, so it is not used.

Untouched, in float32: the point encoder, the projector, the positional encoding, the token embedding (a lookup; the
LM head gets its own int8 copy when the two are tied) and the norms. The change belongs to one model instance: its
modules are replaced, nothing in torch or transformers is patched. The PE's tables and the attention arithmetic are
the same code as without the fast path, so every `--VLM_PE` variant runs on it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spatialvlm_cli.errors import ConfigError

# The largest magnitude of a symmetric int8 code (-128 is left out so that the grid is symmetric).
INT8_MAX = 127


def _symmetric_scale(rows: Tensor) -> Tensor:
    """Per-row scale (R, 1) float32 of `rows` (R, K): max|row| / 127; rows of zeros get a tiny scale, not 0, so the
    division below stays finite (their codes are all 0)."""
    # max(max, -min): two plain reductions, ~10x faster on CPU than abs().amax() or an inf-norm on weight matrices.
    peak = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_())
    return peak.clamp_min_(torch.finfo(torch.float32).tiny).div_(INT8_MAX)


def _to_int8(rows: Tensor, scale: Tensor) -> Tensor:
    """The int8 codes (R, K) of float rows (R, K) at per-row `scale` (R, 1): round to nearest, |code| <= 127."""
    return torch.div(rows, scale).round_().to(torch.int8)


class DynamicInt8Linear(nn.Module):
    """A linear layer y = x W^T + b with an int8 weight and per-call int8 activations.

    weight (N, K) int8 with weight_scale (N,) float32 per output channel: W ~ weight * weight_scale[:, None].
    forward: x (..., K) any float dtype -> (..., N) in x's dtype; computed as
    round(x / s_x) @ weight^T (int32, exact) * s_x * weight_scale + bias, with s_x = max|x_row| / 127 per row.
    The error per output is bounded by the two rounding steps: |dy| <= (|x| s_W + |W| s_x) K / 2 in the worst case,
    about 1 % of |y| for typical rows (tests/model/test_quantize.py measures it)."""

    def __init__(self, weight: Tensor, weight_scale: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        if weight.dtype != torch.int8 or weight.dim() != 2:
            raise ConfigError(f"DynamicInt8Linear takes an (N, K) int8 weight, got {tuple(weight.shape)} "
                              f"{weight.dtype}")
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("weight_scale", weight_scale.to(torch.float32).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> DynamicInt8Linear:
        """Quantize a float linear layer's weight (N, K) per output channel; its bias is kept in float32."""
        weight = linear.weight.detach().to(torch.float32)
        scale = _symmetric_scale(weight)
        return cls(_to_int8(weight, scale), scale.squeeze(1), linear.bias)

    def dequantized_weight(self) -> Tensor:
        """The float32 weight (N, K) this layer multiplies by: codes times scales."""
        return self.weight.to(torch.float32) * self.weight_scale[:, None]

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features).to(torch.float32)
        scale = _symmetric_scale(rows)
        # (N, K) row-major passed as its transpose: the CPU kernel reads it column-major, measured faster than a
        # (K, N) copy at decode shapes.
        products = torch._int_mm(_to_int8(rows, scale), self.weight.t())
        out = products.mul(scale).mul_(self.weight_scale)  # int32 * float32 -> float32
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def quantize_decoder_int8(model: nn.Module) -> int:
    """Replace, in this model instance only, every `nn.Linear` of its decoder layers (`model.model.layers`) and its
    LM head (`model.lm_head`) with a `DynamicInt8Linear`; returns how many were replaced."""
    replaced = 0
    for layer in model.model.layers:
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, DynamicInt8Linear.from_linear(child))
                    replaced += 1
    if type(model.lm_head) is nn.Linear:
        # A tied head shares the embedding's weight: the head gets its own int8 copy, the lookup keeps float32.
        model.lm_head = DynamicInt8Linear.from_linear(model.lm_head)
        replaced += 1
    return replaced


# What `load_spatiallm(quantize=...)` accepts besides "none" (the CLI's --quantize choices are
# `spatialvlm_cli.pipeline.QUANTIZE_MODES`, which tests/model/test_quantize.py holds equal to these).
QUANTIZERS = {"int8": quantize_decoder_int8}


def check_quantize(mode: str, device: torch.device) -> None:
    """ConfigError unless `mode` is 'none' or one of QUANTIZERS and, for a quantizer, `device` is the CPU: the int8
    kernels here are the CPU fast path (on a GPU, bfloat16 is)."""
    if mode == "none":
        return
    if mode not in QUANTIZERS:
        raise ConfigError(f"--quantize must be none or {' or '.join(QUANTIZERS)}, got '{mode}'")
    if device.type != "cpu":
        raise ConfigError(f"--quantize {mode} is a CPU fast path, but the model runs on {device}: pass --device cpu "
                          "(on a GPU, --dtype bfloat16 is the fast path)")


def quantize_model(model: nn.Module, mode: str) -> None:
    """Apply `mode` to a loaded model in eval mode: 'none' leaves it as it is, 'int8' is `quantize_decoder_int8`.
    ConfigError as `check_quantize`."""
    check_quantize(mode, next(model.parameters()).device)
    if mode != "none":
        QUANTIZERS[mode](model)
