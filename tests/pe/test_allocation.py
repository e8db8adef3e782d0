"""Pair allocation: the fork's splits in whole pairs, chunked and interleaved layouts, spectrum coverage."""

from __future__ import annotations

import pytest

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe.allocation import allocate_pairs, spectrum, split_pairs


@pytest.mark.parametrize(("n_pairs", "rule", "expected"), [
    (16, "3D_with_1D", {"t": 8, "x": 2, "y": 2, "z": 4}),
    (32, "3D_with_1D", {"t": 16, "x": 5, "y": 5, "z": 6}),      # seed 001: 32 | 10/10/12 dims of 64
    (32, "3D_only", {"t": 0, "x": 10, "y": 10, "z": 12}),       # seed's 21/21/22 dims is not whole pairs
    (448, "3D_only", {"t": 0, "x": 149, "y": 149, "z": 150}),   # 3D_Sinusoidal 298/298/300 of 896 channels
    (448, "3D_with_1D", {"t": 224, "x": 74, "y": 74, "z": 76}),  # 448 + 148/148/152 channels
    (12, "3D_only", {"t": 0, "x": 4, "y": 4, "z": 4}),
    (12, "3D_with_1D", {"t": 6, "x": 2, "y": 2, "z": 2}),
])
def test_default_split_matches_seeds(n_pairs: int, rule: str, expected: dict[str, int]) -> None:
    assert split_pairs(n_pairs, rule) == expected
    assert sum(expected.values()) == n_pairs  # every dim is rotated: nothing truncated


def test_chunked_layout_is_blocks_in_t_x_y_z_order() -> None:
    roles = allocate_pairs(8, "3D_with_1D", "chunked").roles
    assert roles == ("t", "t", "t", "t", "x", "y", "z", "z")


def test_interleaved_layout_hand_computed() -> None:
    assert allocate_pairs(6, "3D_only", "interleaved").roles == ("x", "y", "z", "x", "y", "z")
    # t 4 slots at 0, 2, 4, 6; x, y at 0; z at 0 and 4 (of 8): ties in t, x, y, z order.
    assert allocate_pairs(8, "3D_with_1D", "interleaved").roles == ("t", "x", "y", "z", "t", "t", "z", "t")


@pytest.mark.parametrize(("n_pairs", "rule"), [(32, "3D_only"), (32, "3D_with_1D"), (12, "3D_only"), (8, "3D_only")])
def test_interleaved_gives_every_axis_high_and_low_frequencies(n_pairs: int, rule: str) -> None:
    interleaved = allocate_pairs(n_pairs, rule, "interleaved")
    chunked = allocate_pairs(n_pairs, rule, "chunked")
    spatial = interleaved.spatial_pairs
    high, low = spatial[: len(spatial) // 2], spatial[len(spatial) // 2:]
    for axis in "xyz":
        pairs = set(interleaved.pairs_of(axis))
        assert pairs & set(high) and pairs & set(low), axis
    # chunked: x sees only the highest spatial frequencies, z only the lowest
    assert not set(chunked.pairs_of("x")) & set(chunked.spatial_pairs[-(len(spatial) // 3):])
    assert not set(chunked.pairs_of("z")) & set(chunked.spatial_pairs[: len(spatial) // 3])
    assert interleaved.counts() == chunked.counts()


def test_explicit_split_and_errors() -> None:
    assert split_pairs(8, "3D_only", axis_pairs=(3, 3, 2)) == {"t": 0, "x": 3, "y": 3, "z": 2}
    assert split_pairs(8, "3D_with_1D", axis_pairs=(1, 1, 1), pairs_1d=5)["t"] == 5
    with pytest.raises(ConfigError, match="does not add up"):
        split_pairs(8, "3D_only", axis_pairs=(3, 3, 3))
    with pytest.raises(ConfigError, match="pairs_1d"):
        split_pairs(8, "3D_only", pairs_1d=2)
    with pytest.raises(ConfigError, match="three positive"):
        split_pairs(8, "3D_only", axis_pairs=(8, 0, 0))
    with pytest.raises(ConfigError, match="layout"):
        allocate_pairs(8, "3D_only", "diagonal")


def test_spectrum_matches_stock_rope_law() -> None:
    # stock inv_freq of pair i: theta^(-2i/D) = theta^(-i/P)
    assert spectrum(4, 10000.0) == pytest.approx([1.0, 0.1, 0.01, 0.001])
