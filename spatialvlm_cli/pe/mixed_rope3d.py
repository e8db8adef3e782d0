"""`--VLM_PE MixedRoPE3D`: learned 3-D rotary frequencies per layer, head and frequency bin, with axial mixing.

For a point token with coordinates c (rotation units) spatial pair r of head h in layer l turns by
    angle = sum_a w[h, r, a] * f[a, h, r] * c[a]            (the fork (document 002)'s formula)
with f = `freqs_3d_*` [3, H, F] and w = `axial_weights_3d_*` [H, F, 3], F = number of spatial pairs. The angle is
linear in c, so it is a rotation by a learned direction v[h, r] = w[h, r, :] * f[:, h, r]; 1-D pairs and text
tokens keep the model's stock table exactly as in 3D_RoPE.

Parameter layouts:
    tied (default)    one set per key/value head (`freqs_3d_kv`, `axial_weights_3d_kv`), used by the key head and
                      by its H/Hkv query heads, so q.k depends only on the coordinate difference under GQA.
    seed-compatible   the fork's separate query parameters `freqs_3d_q` [3, Hq, F], `axial_weights_3d_q` [Hq, F, 3]
                      as well, so checkpoints trained that way load. Breaks relative position as soon as a query
                      head's parameters differ from its key head's: q.k then depends on absolute coordinates.
Initialisations:
    axial (default)   f = freq_3d[r] on every axis, w = one-hot of the pair's axis: exactly 3D_RoPE with the same
                      theta_3d / layout / split at step 0.
    random            each head a randomly rotated axial RoPE (RoPE-Mixed, Heo et al. 2024, in 3-D).
    seed              the fork's (seed document 002): f = freq_3d[r] + 0.01 N(0,1) on all three axes and
                      w = 1 + 0.01 N(0,1), which makes every angle ~ freq * (x + y + z): points with equal
                      x + y + z are barely distinguishable.

Parameters live in `self.layers[l]` (one `MixedRoPE3DLayer` per attention layer) and are therefore saved with the
model under `<attribute>.layers.<l>.freqs_3d_kv` etc. Tables for all layers are computed in one einsum per forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn
from transformers import initialization as hf_init

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe.base import LayerwiseTables, LearnedParameters
from spatialvlm_cli.pe.registry import register
from spatialvlm_cli.pe.rope3d import RoPE3D, RoPE3DOptions

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class MixedRoPE3DOptions(RoPE3DOptions):
    """The options of 3D_RoPE, plus init ("axial" | "random" | "seed"), param_layout ("tied" | "seed-compatible"),
    init_seed (random/seed draws are reproducible per layer) and init_noise (std of the seed init's noise)."""

    init: Literal["axial", "random", "seed"] = "axial"
    param_layout: Literal["tied", "seed-compatible"] = "tied"
    init_seed: int = 0
    init_noise: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_noise < 0:
            raise ConfigError(f"init_noise must be non-negative, got {self.init_noise}")

    @classmethod
    def fork(cls) -> MixedRoPE3DOptions:
        """Seed 002: rope_theta_3d 100, [0, 1] coordinates, spatial block first, its init and separate q/kv params."""
        return cls(theta_3d=100.0, layout="chunked", coord_unit="unit", init="seed", param_layout="seed-compatible")


def random_rotations(count: int, generator: torch.Generator) -> Tensor:
    """(count, 3, 3) float32 rotation matrices (det +1), uniformly distributed."""
    gaussian = torch.randn(count, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q[:, :, 0] *= torch.sign(torch.linalg.det(q))[:, None]
    return q.float()


def initial_parameters(init: str, heads: int, bins: list[float], axes: list[int], noise: float,
                       generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Initial f [3, heads, F] and w [heads, F, 3] (float32, CPU) for frequencies `bins` (F,) rad/unit whose
    axial-init axis is `axes` (F,) in {0, 1, 2}."""
    base = torch.tensor(bins, dtype=torch.float32)
    freqs = base.expand(3, heads, len(bins)).clone()
    one_hot = nn.functional.one_hot(torch.tensor(axes), 3).float()  # (F, 3)
    if init == "axial":
        return freqs, one_hot.expand(heads, -1, -1).clone()
    if init == "random":
        rotations = random_rotations(heads, generator)  # (H, 3, 3); column a is where axis a points
        return freqs, torch.einsum("hab,fb->hfa", rotations, one_hot)
    freqs += noise * torch.randn(3, heads, len(bins), generator=generator)
    return freqs, 1.0 + noise * torch.randn(heads, len(bins), 3, generator=generator)


class MixedRoPE3DLayer(LearnedParameters):
    """Learned frequencies of one attention layer, named and shaped as in the fork (document 002)."""

    def __init__(self, layer_index: int, kv_heads: int, q_heads: int | None, bins: list[float], axes: list[int],
                 options: MixedRoPE3DOptions) -> None:
        super().__init__()
        self.freqs_3d_kv = nn.Parameter(torch.empty(3, kv_heads, len(bins)))
        self.axial_weights_3d_kv = nn.Parameter(torch.empty(kv_heads, len(bins), 3))
        if q_heads is None:  # tied: query heads use their key/value head's parameters
            self.register_parameter("freqs_3d_q", None)
            self.register_parameter("axial_weights_3d_q", None)
        else:
            self.freqs_3d_q = nn.Parameter(torch.empty(3, q_heads, len(bins)))
            self.axial_weights_3d_q = nn.Parameter(torch.empty(q_heads, len(bins), 3))
        self.layer_index, self.bins, self.axes, self.init_options = layer_index, bins, axes, options
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re)initialise; parameters transformers marks as loaded from a checkpoint are left alone."""
        options = self.init_options
        generator = torch.Generator().manual_seed(options.init_seed * 100_003 + self.layer_index)
        kv_heads = self.freqs_3d_kv.shape[1]
        freqs, weights = initial_parameters(options.init, kv_heads, self.bins, self.axes, options.init_noise,
                                            generator)
        hf_init.copy_(self.freqs_3d_kv, freqs)
        hf_init.copy_(self.axial_weights_3d_kv, weights)
        if self.freqs_3d_q is None or self.axial_weights_3d_q is None:
            return
        q_heads = self.freqs_3d_q.shape[1]
        if options.init == "seed":  # the seed drew query parameters independently
            freqs, weights = initial_parameters("seed", q_heads, self.bins, self.axes, options.init_noise, generator)
        else:  # start each query head equal to its key head, so relativity holds until training moves them apart
            group = q_heads // kv_heads
            freqs, weights = freqs.repeat_interleave(group, dim=1), weights.repeat_interleave(group, dim=0)
        hf_init.copy_(self.freqs_3d_q, freqs)
        hf_init.copy_(self.axial_weights_3d_q, weights)

    def directions(self) -> tuple[Tensor, Tensor | None]:
        """Frequency vectors v[h, r, :] = w[h, r, :] * f[:, h, r] in rad/unit: kv (Hkv, F, 3), q (Hq, F, 3) or None."""
        kv = self.axial_weights_3d_kv.float() * self.freqs_3d_kv.float().permute(1, 2, 0)
        if self.freqs_3d_q is None or self.axial_weights_3d_q is None:
            return kv, None
        return kv, self.axial_weights_3d_q.float() * self.freqs_3d_q.float().permute(1, 2, 0)


@register("MixedRoPE3D")
class MixedRoPE3D(RoPE3D):
    """Learned, per-layer, per-head 3-D rotary frequencies (see the module docstring)."""

    Options = MixedRoPE3DOptions
    options: MixedRoPE3DOptions

    def __init__(self, merge_rule: str, lm_config: PretrainedConfig, options: MixedRoPE3DOptions) -> None:
        super().__init__(merge_rule, lm_config, options)
        shape = self.lm_shape
        q_heads = shape.num_heads if options.param_layout == "seed-compatible" else None
        axes = list(self.allocation.spatial_axes)
        self.layers = nn.ModuleList(
            MixedRoPE3DLayer(index, shape.num_kv_heads, q_heads, self.spatial_frequencies, axes, options)
            for index in range(shape.num_layers))

    def tables_from_units(self, stock_cos: Tensor, stock_sin: Tensor, point_mask: Tensor, coords: Tensor,
                          attention_scaling: float = 1.0) -> LayerwiseTables:
        """stock_cos/sin (B, S, D); point_mask (B, S); coords (B, S, 3) rotation units. Returns per-pair tables for
        all layers: k (L, B, Hkv, S, D/2) and, in seed-compatible mode, q (L, B, Hq, S, D/2)."""
        n_pairs = self.allocation.n_pairs
        _, _, spatial = self.pair_tables(coords.device)
        select = (point_mask[..., None] & spatial[:n_pairs])[None, :, None]  # (1, B, 1, S, P) spatial pairs of points
        pairs = torch.tensor(self.allocation.spatial_pairs, device=coords.device)
        stock = (stock_cos[None, :, None, :, :n_pairs], stock_sin[None, :, None, :, :n_pairs])  # (1, B, 1, S, P)
        directions = [layer.directions() for layer in self.layers]
        args = (stock, select, coords, pairs, n_pairs, attention_scaling)
        cos_k, sin_k = _head_tables(torch.stack([kv for kv, _ in directions]), *args)
        if directions[0][1] is None:
            return LayerwiseTables(cos_k, sin_k)
        cos_q, sin_q = _head_tables(torch.stack([q for _, q in directions]), *args)  # type: ignore[misc]
        return LayerwiseTables(cos_k, sin_k, cos_q, sin_q)


def _head_tables(directions: Tensor, stock: tuple[Tensor, Tensor], select: Tensor, coords: Tensor, pairs: Tensor,
                 n_pairs: int, attention_scaling: float) -> tuple[Tensor, Tensor]:
    """directions (L, H, F, 3) rad/unit of the spatial pairs `pairs` (F,) -> cos, sin (L, B, H, S, P): the learned
    rotation where `select` (1, B, 1, S, P) is True, the stock (cos, sin) (1, B, 1, S, P) elsewhere."""
    layers, heads, _, _ = directions.shape
    padded = directions.new_zeros(layers, heads, n_pairs, 3)  # 1-D pairs get 0 here and the stock value below
    padded[:, :, pairs] = directions
    angles = torch.einsum("lhpa,bsa->lbhsp", padded, coords.float())  # (L, B, H, S, P)
    tables = []
    for stock_table, function in zip(stock, (torch.cos, torch.sin), strict=True):
        values = function(angles)
        if attention_scaling != 1.0:
            values = values * attention_scaling
        tables.append(torch.where(select, values.to(stock_table.dtype), stock_table))
    return tables[0], tables[1]


def fork_key_mapping(attribute: str = "position_encoding") -> dict[str, str]:
    """`from_pretrained(..., key_mapping=fork_key_mapping())` for checkpoints of the fork, whose attention
    layers held the parameters: `model.layers.<l>.self_attn.freqs_3d_q` -> `<attribute>.layers.<l>.freqs_3d_q`
    (likewise `axial_weights_3d_q`, `freqs_3d_kv`, `axial_weights_3d_kv`). Load them with param_layout
    "seed-compatible" (or "tied", which keeps the key/value parameters and drops the query ones)."""
    names = ("freqs_3d_q", "axial_weights_3d_q", "freqs_3d_kv", "axial_weights_3d_kv")
    # transformers' renaming substitutes one group only, hence one pattern per parameter name
    return {rf"model\.layers\.(\d+)\.self_attn\.{name}": rf"{attribute}.layers.\1.{name}" for name in names}
