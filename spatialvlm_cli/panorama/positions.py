"""Position ids of a panorama prompt: native, PanoRoPE-1D (InternVL3.5, Gemma3) and PanoRoPE on M-RoPE (Qwen-VL).

numpy only. A prompt holds one image run per image in layout order (optional global view, then tiles 0 … N-1);
`tile_of_image` says which image is which. s = 1 - r is the stride between neighbouring tiles as a fraction of a
tile (r: column overlap, see geometry.py).

1-D (ids (L,)):
- native: 0 … L-1 (what transformers gives InternVL/Gemma3).
- cora: native, then tile k's ids += round(k·s·T) with T its token count; the global view and all text keep their
  ids. This is wooseungw/panollava's published scheme (use it with their checkpoints). Text after the image and
  generated tokens then reuse ids of the shifted tiles.
- shared (default): walk the prompt; text and the global view take the next free id; tile k starts at the tile
  origin o + round(k·s·T), o being the next free id when tile 0 starts, so neighbouring tiles share r·T ids like
  they share r of their columns; after every run the next free id is one past the largest id so far. Text after
  the image (and every generated token) therefore comes after every image id. Tokens between tiles (`</img>`,
  `<img>`, newlines) take the next free id when they come, so a later tile may reuse their ids.

M-RoPE (ids (3, L): t, h, w rows; Qwen2.5-VL / Qwen3-VL images, merged-patch units):
- native: transformers' `get_rope_index` for images: text on the diagonal, an image of merged grid (hm, wm)
  starting at p takes t = p, h = p + row, w = p + column, and text resumes at p + max(hm, wm).
- cora: native, then tile k's w row += round(k·s·wm), nothing else moves (panollava's Qwen adapter).
- shared: as 1-D shared, on a common canvas: every tile has t = o and h = o + row (the tiles share pitch), tile k
  has w = o + round(k·s·wm) + column (its yaw offset in merged patches); text resumes past every axis' maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatialvlm_cli.errors import ConfigError

PANO_ROPE_1D = "PanoRoPE_1D"
PANO_ROPE_MROPE = "PanoRoPE"
PANO_MODES = ("shared", "cora")
DEFAULT_PANO_MODE = "shared"


@dataclass(frozen=True)
class PositionScheme:
    """How image ids are laid out.

    vlm_pe: None (the model's native ids), 'PanoRoPE_1D' or 'PanoRoPE'. mode: 'shared' | 'cora'.
    overlap: column overlap r of neighbouring tiles, [0, 1). tile_of_image: per image in prompt order, its tile
    index or None (global view / whole panorama)."""

    vlm_pe: str | None
    mode: str
    overlap: float
    tile_of_image: tuple[int | None, ...]

    def __post_init__(self) -> None:
        if self.vlm_pe not in (None, PANO_ROPE_1D, PANO_ROPE_MROPE):
            raise ConfigError(
                f"panorama --VLM_PE must be None, {PANO_ROPE_1D} or {PANO_ROPE_MROPE}, got '{self.vlm_pe}'"
            )
        if self.mode not in PANO_MODES:
            raise ConfigError(f"--pano_mode must be one of {', '.join(PANO_MODES)}, got '{self.mode}'")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"--overlap must be in [0, 1), got {self.overlap}")

    @property
    def stride(self) -> float:
        return 1.0 - self.overlap


def image_runs(is_image: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a (L,) bool array, as [start, stop) index pairs in order."""
    padded = np.concatenate([[False], np.asarray(is_image, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(start), int(stop)) for start, stop in zip(edges[::2], edges[1::2], strict=True)]


def _checked_runs(is_image: np.ndarray, scheme: PositionScheme) -> list[tuple[int, int]]:
    runs = image_runs(is_image)
    if len(runs) != len(scheme.tile_of_image):
        raise ValueError(
            f"the prompt holds {len(runs)} image token runs but the view layout has {len(scheme.tile_of_image)} "
            "images (an image placeholder in the text, or two images with no token between them?)"
        )
    return runs


def positions_1d(is_image: np.ndarray, scheme: PositionScheme) -> np.ndarray:
    """1-D ids of one unpadded prompt. is_image: (L,) bool (image-context tokens). Returns (L,) int64."""
    length = len(is_image)
    if scheme.vlm_pe is None:
        return np.arange(length, dtype=np.int64)
    runs = _checked_runs(is_image, scheme)
    if scheme.mode == "cora":
        ids = np.arange(length, dtype=np.int64)
        for (start, stop), tile in zip(runs, scheme.tile_of_image, strict=True):
            if tile is not None:
                ids[start:stop] += round(tile * scheme.stride * (stop - start))
        return ids
    ids = np.empty(length, dtype=np.int64)
    next_free = 0
    origin: int | None = None
    cursor = 0
    for (start, stop), tile in zip(runs, scheme.tile_of_image, strict=True):
        ids[cursor:start] = next_free + np.arange(start - cursor)
        next_free += start - cursor
        if tile is None:
            first = next_free
        else:
            origin = next_free if origin is None else origin
            first = origin + round(tile * scheme.stride * (stop - start))
        ids[start:stop] = first + np.arange(stop - start)
        next_free = max(next_free, first + stop - start)
        cursor = stop
    ids[cursor:] = next_free + np.arange(length - cursor)
    return ids


def positions_mrope(
    is_image: np.ndarray, grids_thw: np.ndarray, spatial_merge_size: int, scheme: PositionScheme
) -> np.ndarray:
    """M-RoPE (t, h, w) ids of one unpadded prompt.

    is_image: (L,) bool (image-pad tokens, i.e. mm_token_type_ids == 1). grids_thw: (n_images, 3) int, the
    processor's image_grid_thw in patch units. Returns (3, L) int64."""
    runs = image_runs(is_image)
    if len(runs) != len(grids_thw):
        raise ValueError(f"the prompt holds {len(runs)} image token runs but {len(grids_thw)} image grids were given")
    tiles: list[int | None] = [None] * len(runs) if scheme.vlm_pe is None else list(scheme.tile_of_image)
    if scheme.vlm_pe is not None:
        _checked_runs(is_image, scheme)
    shared = scheme.vlm_pe is not None and scheme.mode == "shared"
    ids = np.empty((3, len(is_image)), dtype=np.int64)
    next_free = 0
    origin: int | None = None
    cursor = 0
    for (start, stop), (frames, rows, columns), tile in zip(runs, np.asarray(grids_thw), tiles, strict=True):
        ids[:, cursor:start] = next_free + np.arange(start - cursor)
        next_free += start - cursor
        rows, columns = int(rows) // spatial_merge_size, int(columns) // spatial_merge_size
        if int(frames) * rows * columns != stop - start:
            raise ValueError(f"image grid {frames}×{rows}×{columns} does not match its {stop - start} tokens")
        t, h, w = np.meshgrid(np.arange(int(frames)), np.arange(rows), np.arange(columns), indexing="ij")
        shift = 0 if tile is None else round(tile * scheme.stride * columns)
        if shared and tile is not None:
            origin = next_free if origin is None else origin
            base = origin
        else:
            base = next_free
        block = np.stack([t.ravel(), h.ravel(), w.ravel()]) + base
        if tile is not None and scheme.vlm_pe is not None:
            block[2] += shift
        ids[:, start:stop] = block
        if shared:
            next_free = max(next_free, int(block.max()) + 1)
        else:
            next_free += max(rows, columns)  # transformers' rule (the temporal extent is ignored)
        cursor = stop
    ids[:, cursor:] = next_free + np.arange(len(is_image) - cursor)
    return ids


def batch_positions_1d(is_image: np.ndarray, attention_mask: np.ndarray | None, scheme: PositionScheme) -> np.ndarray:
    """(B, L) bool image mask (+ optional (B, L) 0/1 padding mask) -> (B, L) int64 ids; padding gets id 0."""
    is_image = np.asarray(is_image, dtype=bool)
    mask = np.ones_like(is_image) if attention_mask is None else np.asarray(attention_mask).astype(bool)
    ids = np.zeros(is_image.shape, dtype=np.int64)
    for row in range(is_image.shape[0]):
        ids[row, mask[row]] = positions_1d(is_image[row, mask[row]], scheme)
    return ids


def batch_positions_mrope(
    is_image: np.ndarray,
    attention_mask: np.ndarray | None,
    grids_thw: np.ndarray,
    spatial_merge_size: int,
    scheme: PositionScheme,
) -> np.ndarray:
    """(B, L) image mask, optional padding mask, (n_images, 3) grids of the whole batch in order -> (3, B, L)
    int64 ids; padding gets id 0 (as in transformers)."""
    is_image = np.asarray(is_image, dtype=bool)
    mask = np.ones_like(is_image) if attention_mask is None else np.asarray(attention_mask).astype(bool)
    grids = np.asarray(grids_thw).reshape(-1, 3)
    ids = np.zeros((3, *is_image.shape), dtype=np.int64)
    used = 0
    for row in range(is_image.shape[0]):
        row_image = is_image[row, mask[row]]
        count = len(image_runs(row_image))
        ids[:, row, mask[row]] = positions_mrope(row_image, grids[used : used + count], spatial_merge_size, scheme)
        used += count
    return ids


def summarize_positions(ids: np.ndarray, is_image: np.ndarray, tile_of_image: tuple[int | None, ...]) -> dict:
    """Facts about the ids of one unpadded prompt, for the JSON output and `check --verbose`.

    ids: (L,) or (A, L) int (A axes). is_image: (L,) bool. Returns a dict: per image its tokens, tile and id
    range (per axis for M-RoPE); `max_position`; `next_position` (the first generated token's id, last + 1 on
    every axis); `text_after_image_start`; `collisions`: text tokens after the last image whose id is not above
    every image id on every axis (0 means text and generated tokens never reuse an image id)."""
    ids = np.atleast_2d(np.asarray(ids))
    runs = image_runs(is_image)
    images = []
    for index, (start, stop) in enumerate(runs):
        block = ids[:, start:stop]
        images.append(
            {
                "image": index,
                "tile": tile_of_image[index] if index < len(tile_of_image) else None,
                "tokens": stop - start,
                "first_token": start,
                "min": _axis_values(block.min(axis=1)),
                "max": _axis_values(block.max(axis=1)),
            }
        )
    summary: dict = {
        "sequence_length": int(ids.shape[1]),
        "axes": int(ids.shape[0]),
        "images": images,
        "max_position": int(ids.max()) if ids.size else 0,
        "next_position": int(ids[:, -1].max()) + 1 if ids.size else 0,
        "text_after_image_start": None,
        "collisions": 0,
    }
    if runs:
        image_max = int(ids[:, np.asarray(is_image, dtype=bool)].max())
        after = ids[:, runs[-1][1] :]
        if after.shape[1]:
            summary["text_after_image_start"] = int(after[:, 0].min())
            summary["collisions"] = int((after.min(axis=0) <= image_max).sum())
        summary["next_position_after_images"] = summary["next_position"] > image_max
    return summary


def _axis_values(values: np.ndarray) -> int | list[int]:
    return int(values[0]) if len(values) == 1 else [int(v) for v in values]
