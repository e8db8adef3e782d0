"""The one rotation: `apply_rotary(q, k, cos, sin)`, used by the point-aware attention of our models.

Convention (transformers' `rotate_half`, GPT-NeoX): pair i of a head of D dims rotates dims (i, i + D/2) by the
angle a_i, i.e. (x_i, x_{i+D/2}) -> (x_i cos a_i - x_{i+D/2} sin a_i, x_i sin a_i + x_{i+D/2} cos a_i). A table
therefore holds the same value at i and i + D/2, which is what makes it a rotation (the fork duplicated angles
GPT-J style [a0, a0, a1, a1, ...] and applied them with `rotate_half`, which is not a rotation).

Tables come in two shapes:
    plain tensor (B, S, D)   one angle per token and pair, shared by all heads (stock RoPE, 3D_RoPE), both halves
                             equal as transformers builds them; applied with exactly the operations of transformers'
                             `apply_rotary_pos_emb`, so stock tables give bit-identical results;
    QKTable                  per-head *half* tables (one value per pair, D/2 wide: half the memory to build and to
                             read), `k` (B, Hkv, S, D/2) and `q` either the same tensor (query head h uses key/value
                             head h // (Hq/Hkv), so q.k depends only on relative position under GQA) or its own
                             (B, Hq, S, D/2) tables (MixedRoPE3D's seed-compatible mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, slots=True)
class QKTable:
    """cos or sin per pair for per-head rotation: q (B, Hq or Hkv, S, D/2), k (B, Hkv, S, D/2); `q is k` when tied."""

    q: Tensor
    k: Tensor


def rotate_half(x: Tensor) -> Tensor:
    """(..., D) -> (..., D): (x1, x2) -> (-x2, x1) on the two halves."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotate_pairs(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (B, H, S, D) by per-pair tables (B, Ht, S, D/2), H a multiple of Ht (head h uses table
    h // (H / Ht), the grouping of `repeat_kv`). Same arithmetic as `rotate_half`, so equal tables give bit-equal
    results. Returns (B, H, S, D) in x's dtype."""
    heads = cos.shape[1]
    if heads != x.shape[1]:
        x = x.unflatten(1, (heads, x.shape[1] // heads))  # (B, Ht, H/Ht, S, D), a view
        cos, sin = cos[:, :, None], sin[:, :, None]
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    rotated = torch.cat(((first * cos) + (-second * sin), (second * cos) + (first * sin)), dim=-1)
    return rotated.flatten(1, 2) if rotated.ndim == 5 else rotated


def apply_rotary(q: Tensor, k: Tensor, cos: Tensor | QKTable, sin: Tensor | QKTable,
                 unsqueeze_dim: int = 1) -> tuple[Tensor, Tensor]:
    """Rotate q (B, Hq, S, D) and k (B, Hkv, S, D). Plain tables follow transformers' `apply_rotary_pos_emb`
    exactly (same operations, `unsqueeze_dim` honoured); QKTable tables are applied per head."""
    if isinstance(cos, QKTable):
        return rotate_pairs(q, cos.q, sin.q), rotate_pairs(k, cos.k, sin.k)
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)
