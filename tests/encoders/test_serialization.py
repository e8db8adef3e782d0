"""Space-filling-curve codes: golden values from upstream PTv3/SpatialLM, a per-point reference of Skilling's
algorithm, and the curves' defining properties."""

from __future__ import annotations

import itertools

import pytest
import torch

from spatialvlm_cli.encoders.serialization import (
    curve_depth,
    hilbert_code,
    serialization_code,
    serialize,
    z_order_code,
)


def skilling_hilbert_index(point: tuple[int, int, int], bits: int) -> int:
    """Per-point Hilbert index (Skilling 2004), written plainly with Python ints as the reference."""
    x = list(point)
    top = 1 << (bits - 1)
    q = top
    while q > 1:
        p = q - 1
        for i in range(3):
            if x[i] & q:
                x[0] ^= p
            else:
                t = (x[0] ^ x[i]) & p
                x[0] ^= t
                x[i] ^= t
        q >>= 1
    for i in range(1, 3):  # Gray encode
        x[i] ^= x[i - 1]
    t = 0
    q = top
    while q > 1:
        if x[2] & q:
            t ^= q - 1
        q >>= 1
    x = [v ^ t for v in x]
    index = 0
    for level in range(bits - 1, -1, -1):
        for i in range(3):
            index = (index << 1) | ((x[i] >> level) & 1)
    return index


def test_golden_codes_from_upstream():
    # computed with SpatialLM e3a3777 spatiallm/model/serialization encode(...)
    corners = torch.tensor(list(itertools.product(range(2), repeat=3)))
    assert hilbert_code(corners, 1).tolist() == [0, 1, 3, 2, 7, 6, 4, 5]
    cells = torch.tensor([[0, 0, 0], [1, 2, 3], [3, 0, 1], [2, 2, 2], [0, 3, 3], [3, 3, 3]])
    assert hilbert_code(cells, 2).tolist() == [0, 22, 56, 40, 18, 45]
    assert hilbert_code(cells, 3).tolist() == [0, 48, 28, 40, 54, 45]
    assert z_order_code(cells).tolist() == [0, 29, 37, 56, 27, 63]


@pytest.mark.parametrize("bits", [1, 2, 4, 11])
def test_hilbert_matches_per_point_reference(bits):
    generator = torch.Generator().manual_seed(bits)
    cells = torch.randint(0, 1 << bits, (300, 3), generator=generator)
    expected = [skilling_hilbert_index(tuple(c), bits) for c in cells.tolist()]
    assert hilbert_code(cells, bits).tolist() == expected


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_hilbert_is_a_continuous_bijection_on_the_cube(bits):
    side = 1 << bits
    cube = torch.tensor(list(itertools.product(range(side), repeat=3)))
    codes = hilbert_code(cube, bits)
    assert sorted(codes.tolist()) == list(range(side**3))
    path = cube[torch.argsort(codes)]
    steps = (path[1:] - path[:-1]).abs().sum(dim=1)
    assert bool((steps == 1).all()), "consecutive Hilbert cells must be face neighbours"


def test_z_order_interleaves_bits_x_most_significant():
    cells = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1 << 15, 0, 0], [65535, 65535, 65535]])
    assert z_order_code(cells).tolist() == [4, 2, 1, 1 << 47, (1 << 48) - 1]


def test_trans_orders_swap_x_and_y():
    cells = torch.tensor([[3, 1, 2], [0, 5, 7]])
    swapped = cells[:, [1, 0, 2]]
    assert torch.equal(serialization_code(cells, "z-trans", 3), z_order_code(swapped))
    assert torch.equal(serialization_code(cells, "hilbert-trans", 3), hilbert_code(swapped, 3))


def test_depth_is_bit_length_of_max_plus_one():
    assert curve_depth(torch.tensor([[0, 0, 1023]])) == 11  # 1024 needs 11 bits, as upstream counts
    assert curve_depth(torch.tensor([[0, 0, 1022]])) == 10
    assert curve_depth(torch.tensor([[0, 0, 0]])) == 1


def test_serialize_keeps_clouds_apart():
    a = torch.tensor([[5, 5, 5], [0, 0, 0], [1, 0, 0]])
    b = torch.tensor([[0, 0, 0], [9, 9, 9]])
    grid = torch.cat([a, b])
    order = serialize(grid, torch.tensor([3, 5]), ("z", "hilbert"))
    assert order.shape == (2, 5)
    for k in range(2):
        assert set(order[k, :3].tolist()) == {0, 1, 2} and set(order[k, 3:].tolist()) == {3, 4}
    assert order[0].tolist() == [1, 2, 0, 3, 4]


def test_serialize_depth_is_per_cloud():
    """A cloud's order must not depend on the other clouds of the batch (Hilbert depends on the depth)."""
    generator = torch.Generator().manual_seed(0)
    small = torch.unique(torch.randint(0, 6, (40, 3), generator=generator), dim=0)
    large = torch.tensor([[200, 3, 1]])
    alone = serialize(small, torch.tensor([len(small)]), ("hilbert",))
    batched = serialize(torch.cat([small, large]), torch.tensor([len(small), len(small) + 1]), ("hilbert",))
    assert torch.equal(batched[0, : len(small)], alone[0])
