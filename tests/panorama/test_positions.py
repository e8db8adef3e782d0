"""Panorama position ids (numpy): hand-computed layouts, overlap sharing, no text/image collisions, padding."""

from __future__ import annotations

import numpy as np
import pytest

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.panorama.positions import (
    PositionScheme,
    batch_positions_1d,
    batch_positions_mrope,
    image_runs,
    positions_1d,
    positions_mrope,
    summarize_positions,
)


def layout(*parts: tuple[str, int]) -> np.ndarray:
    """('t', n) text tokens / ('i', n) image tokens -> (L,) bool image mask."""
    return np.concatenate([np.full(n, kind == "i") for kind, n in parts])


# [t t][global 4][t t][tile0 4][t t][tile1 4][t t t]
ONE_D = layout(("t", 2), ("i", 4), ("t", 2), ("i", 4), ("t", 2), ("i", 4), ("t", 3))


def scheme(vlm_pe, mode="shared", overlap=0.5, tiles=(None, 0, 1)) -> PositionScheme:
    return PositionScheme(vlm_pe=vlm_pe, mode=mode, overlap=overlap, tile_of_image=tuple(tiles))


def test_image_runs():
    assert image_runs(ONE_D) == [(2, 6), (8, 12), (14, 18)]
    assert image_runs(np.zeros(3, bool)) == []
    assert image_runs(np.ones(3, bool)) == [(0, 3)]


def test_1d_native_is_sequential():
    np.testing.assert_array_equal(positions_1d(ONE_D, scheme(None)), np.arange(21))


def test_1d_cora_hand_values():
    ids = positions_1d(ONE_D, scheme("PanoRoPE_1D", "cora"))
    # Tile 1 moves by round(1 · 0.5 · 4) = 2; the global view, tile 0 and all text keep their ids.
    expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 18, 19, 20]
    assert ids.tolist() == expected
    summary = summarize_positions(ids, ONE_D, (None, 0, 1))
    assert summary["collisions"] == 2  # text ids 18, 19 collide with tile 1's ids
    assert summary["next_position"] == 21


def test_1d_shared_hand_values():
    ids = positions_1d(ONE_D, scheme("PanoRoPE_1D", "shared"))
    expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 10, 11, 12, 13, 14, 15, 16]
    assert ids.tolist() == expected
    # Tiles 0 and 1 share r·T = 2 ids, text after the image starts past every image id.
    assert set(ids[8:12]) & set(ids[14:18]) == {10, 11}
    summary = summarize_positions(ids, ONE_D, (None, 0, 1))
    assert summary["collisions"] == 0 and summary["text_after_image_start"] == 14
    assert summary["images"][2] == {"image": 2, "tile": 1, "tokens": 4, "first_token": 14, "min": 10, "max": 13}


@pytest.mark.parametrize("seed", range(20))
def test_1d_shared_never_collides_and_cora_reproduces_the_published_shift(seed: int):
    rng = np.random.default_rng(seed)
    tiles = int(rng.integers(3, 9))
    tokens = int(rng.integers(2, 40))
    overlap = float(rng.uniform(0, 0.9))
    with_global = bool(rng.integers(2))
    parts = [("t", int(rng.integers(1, 6)))]
    if with_global:
        parts += [("i", tokens * 2), ("t", int(rng.integers(1, 4)))]
    for _ in range(tiles):
        parts += [("i", tokens), ("t", int(rng.integers(1, 4)))]
    parts.append(("t", int(rng.integers(1, 10))))
    is_image = layout(*parts)
    tile_of_image = ((None,) if with_global else ()) + tuple(range(tiles))
    shared = positions_1d(is_image, scheme("PanoRoPE_1D", "shared", overlap, tile_of_image))
    summary = summarize_positions(shared, is_image, tile_of_image)
    assert summary["collisions"] == 0 and summary["next_position_after_images"]
    runs = [run for run, tile in zip(image_runs(is_image), tile_of_image, strict=True) if tile is not None]
    starts = [shared[start] for start, _ in runs]
    for k, ((start, stop), first) in enumerate(zip(runs, starts, strict=True)):
        assert first - starts[0] == round(k * (1 - overlap) * tokens)
        np.testing.assert_array_equal(shared[start:stop], first + np.arange(tokens))
    cora = positions_1d(is_image, scheme("PanoRoPE_1D", "cora", overlap, tile_of_image))
    native = np.arange(len(is_image))
    for k, (start, stop) in enumerate(runs):
        np.testing.assert_array_equal(cora[start:stop], native[start:stop] + round(k * (1 - overlap) * tokens))
    assert np.array_equal(cora[~is_image], native[~is_image])


def test_mrope_native_matches_the_transformers_example():
    # [t t <vs> 6×img <ve> t t], image grid (1, 4, 6), merge 2 (transformers-notes §3.1).
    is_image = layout(("t", 3), ("i", 6), ("t", 3))
    ids = positions_mrope(is_image, np.array([[1, 4, 6]]), 2, scheme(None, tiles=(None,)))
    assert ids.tolist() == [
        [0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7, 8],
        [0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7, 8],
        [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8],
    ]


# [t][global (1,2,4): 2 tokens][t t][tile0 (1,4,4): 4 tokens][t t][tile1 (1,4,4)][t], merge 2, r = 0.5
MROPE = layout(("t", 1), ("i", 2), ("t", 2), ("i", 4), ("t", 2), ("i", 4), ("t", 1))
GRIDS = np.array([[1, 2, 4], [1, 4, 4], [1, 4, 4]])


def test_mrope_hand_values_for_all_modes():
    native = positions_mrope(MROPE, GRIDS, 2, scheme(None))
    assert native.tolist() == [
        [0, 1, 1, 3, 4, 5, 5, 5, 5, 7, 8, 9, 9, 9, 9, 11],
        [0, 1, 1, 3, 4, 5, 5, 6, 6, 7, 8, 9, 9, 10, 10, 11],
        [0, 1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10, 9, 10, 11],
    ]
    cora = positions_mrope(MROPE, GRIDS, 2, scheme("PanoRoPE", "cora"))
    expected = native.copy()
    expected[2, 11:15] += 1  # tile 1's width row moves by round(1 · 0.5 · 2)
    np.testing.assert_array_equal(cora, expected)
    assert summarize_positions(cora, MROPE, (None, 0, 1))["collisions"] == 1
    shared = positions_mrope(MROPE, GRIDS, 2, scheme("PanoRoPE", "shared"))
    assert shared.tolist() == [
        [0, 1, 1, 3, 4, 5, 5, 5, 5, 7, 8, 5, 5, 5, 5, 9],
        [0, 1, 1, 3, 4, 5, 5, 6, 6, 7, 8, 5, 5, 6, 6, 9],
        [0, 1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 6, 7, 6, 7, 9],
    ]
    summary = summarize_positions(shared, MROPE, (None, 0, 1))
    assert summary["collisions"] == 0 and summary["images"][2]["max"] == [5, 6, 7]


@pytest.mark.parametrize("seed", range(10))
def test_mrope_shared_overlap_columns_share_positions(seed: int):
    rng = np.random.default_rng(seed)
    tiles, rows, columns = int(rng.integers(3, 7)), int(rng.integers(1, 5)), int(rng.integers(2, 9))
    overlap = float(rng.choice([0.0, 0.25, 0.5]))
    merge = 2
    parts = [("t", 3)]
    for _ in range(tiles):
        parts += [("i", rows * columns), ("t", 2)]
    is_image = layout(*parts, ("t", 4))
    grids = np.array([[1, rows * merge, columns * merge]] * tiles)
    ids = positions_mrope(is_image, grids, merge, scheme("PanoRoPE", "shared", overlap, tuple(range(tiles))))
    blocks = [ids[:, start:stop].reshape(3, rows, columns) for start, stop in image_runs(is_image)]
    for k in range(tiles - 1):
        shift = round((k + 1) * (1 - overlap) * columns) - round(k * (1 - overlap) * columns)
        # Column c of tile k+1 has exactly the (t, h, w) of column c + shift of tile k.
        if shift < columns:
            np.testing.assert_array_equal(blocks[k + 1][:, :, : columns - shift], blocks[k][:, :, shift:])
    assert summarize_positions(ids, is_image, tuple(range(tiles)))["collisions"] == 0


def test_left_padded_batch_rows_equal_single_rows():
    pad = 3
    padded = np.concatenate([np.zeros(pad, bool), ONE_D])
    batch = np.stack([padded, np.concatenate([ONE_D, np.zeros(pad, bool)])])
    mask = np.stack([np.r_[np.zeros(pad), np.ones(len(ONE_D))], np.r_[np.ones(len(ONE_D)), np.zeros(pad)]])
    for vlm_pe, mode in [(None, "shared"), ("PanoRoPE_1D", "shared"), ("PanoRoPE_1D", "cora")]:
        single = positions_1d(ONE_D, scheme(vlm_pe, mode))
        ids = batch_positions_1d(batch, mask, scheme(vlm_pe, mode))
        np.testing.assert_array_equal(ids[0, pad:], single)
        np.testing.assert_array_equal(ids[1, :-pad], single)
        assert not ids[0, :pad].any() and not ids[1, -pad:].any()
    rows = np.stack([np.r_[np.zeros(pad, bool), MROPE], np.r_[MROPE, np.zeros(pad, bool)]])
    grids = np.concatenate([GRIDS, GRIDS])
    ids = batch_positions_mrope(rows, mask[:, : len(MROPE) + pad], grids, 2, scheme("PanoRoPE", "shared"))
    single = positions_mrope(MROPE, GRIDS, 2, scheme("PanoRoPE", "shared"))
    np.testing.assert_array_equal(ids[:, 0, pad:], single)
    np.testing.assert_array_equal(ids[:, 1, :-pad], single)


def test_layout_mismatch_and_bad_scheme():
    with pytest.raises(ValueError, match="3 image token runs"):
        positions_1d(ONE_D, scheme("PanoRoPE_1D", tiles=(0, 1)))
    with pytest.raises(ValueError, match="does not match"):
        positions_mrope(MROPE, np.array([[1, 2, 4], [1, 4, 4], [1, 2, 2]]), 2, scheme("PanoRoPE"))
    with pytest.raises(ConfigError, match="--pano_mode"):
        scheme("PanoRoPE_1D", mode="fancy")
    with pytest.raises(ConfigError, match="--VLM_PE"):
        scheme("3D_RoPE")
    with pytest.raises(ConfigError, match="--overlap"):
        scheme("PanoRoPE_1D", overlap=1.0)
