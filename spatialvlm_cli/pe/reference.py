"""Naive per-token, per-pair loops in plain Python floats that spell out what each variant computes.

The vectorised code (`rope3d.py`, `mixed_rope3d.py`, `sinusoidal3d.py`, `apply.py`) must match these; tests compare
the two on random inputs. Nothing here is fast: use tiny shapes. Only the pair roles (`pe.allocation.roles`) are
shared with the vectorised code; allocation has its own hand-computed tests.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from spatialvlm_cli.pe.allocation import AXES, ROLE_1D
from spatialvlm_cli.pe.base import PositionEncoding

Nested = list[list[list[list[float]]]]  # [B][H][S][P]


def reference_normalize(coords: list[list[float]], is_point: list[bool], unit: str) -> list[list[float]]:
    """One sequence: coords S x 3 grid cells -> S x 3 rotation units (0 at non-point tokens)."""
    points = [c for c, p in zip(coords, is_point, strict=True) if p]
    if not points:
        return [[0.0, 0.0, 0.0] for _ in coords]
    lowest = [min(c[a] for c in points) for a in range(3)]
    extent = max(max(c[a] for c in points) - lowest[a] for a in range(3))
    divisor = extent if unit == "unit" and extent > 0 else 1.0
    return [[(c[a] - lowest[a]) / divisor for a in range(3)] if p else [0.0, 0.0, 0.0]
            for c, p in zip(coords, is_point, strict=True)]


def stock_angle(position: float, pair: int, head_dim: int, rope_theta: float) -> float:
    """The model's 1-D RoPE angle of `pair` at `position`: position * theta^(-2 pair / D)."""
    return position * rope_theta ** (-2 * pair / head_dim)


def reference_rotary_angles(pe: PositionEncoding, rope_theta: float, position_ids: Tensor, point_mask: Tensor,
                            coords: Tensor, layer: int = 0) -> tuple[Nested, Nested]:
    """Angles [B][H][S][P] (radians) for queries (H = Hq) and keys (H = Hkv) of attention layer `layer`.

    position_ids (B, S); point_mask (B, S); coords (B, S, 3) in rotation units (already normalised).
    Works for "None", "3D_RoPE" and "MixedRoPE3D".
    """
    shape = pe.lm_shape
    n_pairs = shape.head_dim // 2
    roles = pe.allocation.roles if hasattr(pe, "allocation") else (ROLE_1D,) * n_pairs
    spatial = [i for i, role in enumerate(roles) if role != ROLE_1D]
    theta_3d = getattr(pe.options, "theta_3d", 0.0)
    params = _mixed_parameters(pe, layer)

    positions, is_point, units = position_ids.tolist(), point_mask.tolist(), coords.tolist()

    def angle(b: int, s: int, head: int, is_query: bool, pair: int) -> float:
        position = float(positions[b][s])
        if not is_point[b][s] or roles[pair] == ROLE_1D:
            return stock_angle(position, pair, shape.head_dim, rope_theta)
        c = units[b][s]
        rank = spatial.index(pair)
        if params is None:  # 3D_RoPE: the pair's own axis at the rank-th frequency of one spectrum
            return c[AXES.index(roles[pair])] * theta_3d ** (-rank / len(spatial))
        if is_query and params["q"] is not None:  # seed-compatible: the query head's own parameters
            (freqs, weights), owner = params["q"], head
        else:  # a query head uses the parameters of the key/value head it attends with (repeat_kv grouping)
            group = shape.num_heads // shape.num_kv_heads if is_query else 1
            (freqs, weights), owner = params["kv"], head // group
        return sum(weights[owner][rank][a] * freqs[a][owner][rank] * c[a] for a in range(3))

    batch, length = point_mask.shape
    table = [[[[angle(b, s, h, True, i) for i in range(n_pairs)] for s in range(length)]
              for h in range(shape.num_heads)] for b in range(batch)]
    keys = [[[[angle(b, s, h, False, i) for i in range(n_pairs)] for s in range(length)]
             for h in range(shape.num_kv_heads)] for b in range(batch)]
    return table, keys


def _mixed_parameters(pe: PositionEncoding, layer: int) -> dict[str, Any] | None:
    if not hasattr(pe, "layers"):
        return None
    params = pe.layers[layer]
    kv = (params.freqs_3d_kv.tolist(), params.axial_weights_3d_kv.tolist())
    q = None if params.freqs_3d_q is None else (params.freqs_3d_q.tolist(), params.axial_weights_3d_q.tolist())
    return {"kv": kv, "q": q}


def reference_rotate(x: Tensor, angles: Nested) -> Tensor:
    """x (B, H, S, D); angles [B][H][S][D/2]. Pair i rotates (x_i, x_{i+D/2}) by its angle, counter-clockwise."""
    values = x.detach().double().tolist()
    half = x.shape[-1] // 2
    for b, heads in enumerate(values):
        for h, tokens in enumerate(heads):
            for s, vector in enumerate(tokens):
                rotated = list(vector)
                for i in range(half):
                    a, c = vector[i], vector[i + half]
                    cos, sin = math.cos(angles[b][h][s][i]), math.sin(angles[b][h][s][i])
                    rotated[i], rotated[i + half] = a * cos - c * sin, a * sin + c * cos
                tokens[s] = rotated
    out = torch.tensor(values, dtype=torch.float64)
    return out.to(x.dtype)


def reference_sinusoid(pe: PositionEncoding, position_ids: Tensor, point_mask: Tensor, coords: Tensor) -> Tensor:
    """3D_Sinusoidal's additive embedding (B, S, C) float32 from coords (B, S, 3) rotation units."""
    roles = pe.allocation.roles
    half = len(roles)
    out = torch.zeros(*point_mask.shape, 2 * half)
    for b in range(point_mask.shape[0]):
        for s in range(point_mask.shape[1]):
            if not bool(point_mask[b, s]):
                continue
            for pair, role in enumerate(roles):
                same = [i for i, r in enumerate(roles) if r == role]
                theta = pe.options.theta_1d if role == ROLE_1D else pe.options.theta_3d
                value = float(position_ids[b, s]) if role == ROLE_1D else float(coords[b, s, AXES.index(role)])
                angle = value * theta ** (-same.index(pair) / len(same))
                out[b, s, pair] = pe.options.scale * math.sin(angle)
                out[b, s, pair + half] = pe.options.scale * math.cos(angle)
    return out
