"""Dense per-token supervision: every point token must say what its cell holds, and how big the room is.

Why (see the README, "Why the first model ignored its input"): trained on the layout text alone, the decoder first
learns the mean room, and the cheapest way to stop random point tokens from disturbing that guess is to make them
all alike; the first shipped model's projected point tokens had a common vector of norm 34.6 against 2.4 of
per-token variation, so after the decoder's RMSNorm every token looked the same, and the layout loss no longer
changed when the point features were zeroed. This module adds a training-only linear head on the point tokens as
the first decoder layer sees them (the output of its input RMSNorm), with targets from the generator's labels:

* occupancy (multi-label, binary cross-entropy): does the token's output-grid cell (a cube of
  `grid_size_m(num_bins) * prod(stride)` metres, 0.8 m for the shipped shapes) contain part of a wall, a door, a
  window, or a box of each generator class;
* room extent (smooth L1, in units of `EXTENT_SCALE_M`): the wall endpoints' (x_min, y_min, x_max, y_max), metres
  relative to the cloud's min corner, the figure the first wall lines need; every token predicts it;
* wall offset (optional, smooth L1, in cells): the vector (x, y) from the token's cell centre to the nearest point
  of the nearest wall's centre line, scored on tokens within one cell of a wall. Occupancy says which cells hold a
  wall; this says where in the cell it runs, which only the points' positions inside the cell can tell.
* box geometry (optional, a head of its own, smooth L1, in cells): for a token whose cell holds part of a box, the
  vector (x, y) from its cell centre to the centre of the nearest box and that box's size (x, y, z). Occupancy
  says that a box is there (and the room models learn it: see the README); this says where it stands and how big
  it is, the numbers its layout line needs.
* box pointer (optional, a head of its own, cross-entropy): the decoder's last hidden state at every position
  that writes a box line, projected, is scored against every point token (as the first decoder layer sees them);
  the softmax mass on the tokens whose cells hold that box is the target. The occupancy and box heads teach the
  tokens what they hold; this teaches the answer to find the box it is writing among them.

The head is not part of the saved model (`save_pretrained` writes only the SpatialLM weights); it lives in the
resume checkpoint. All geometry here is in the prepared cloud's frame: metres from its min corner.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spatialvlm_cli.layout import Bbox, Layout, parse_layout
from spatialvlm_cli.preprocess import grid_size_m
from spatialvlm_cli.synthetic import FURNITURE

DENSE_CLASSES: tuple[str, ...] = ("wall", "door", "window", *FURNITURE)
EXTENT_SCALE_M = 8.0
_STEP_M = 0.1  # sampling step along entity surfaces, metres


@dataclass(frozen=True)
class DenseLabels:
    """One room's dense targets. cells: dict from an output-grid cell (x, y, z) to a bitmask over DENSE_CLASSES;
    extent: (4,) float32 wall-endpoint box (x_min, y_min, x_max, y_max); walls: (W, 4) float32 wall centre lines
    (ax, ay, bx, by); boxes: (B, 5) float32 (centre x, centre y, size x, size y, size z) of the generator-class
    boxes. Metres from the cloud's min corner."""

    cells: dict[tuple[int, int, int], int]
    extent: np.ndarray
    walls: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class DenseTargets:
    """Per-token targets of a batch of M point tokens. occupancy: (M, len(DENSE_CLASSES)) float32 0/1; extent:
    (M, 4) float32 in units of EXTENT_SCALE_M; wall_offset: (M, 2) float32, cells, from the token's cell centre to the
    nearest wall centre line; near_wall: (M,) bool, the tokens whose wall offset is scored (|offset| <= 1 cell in
    both axes); box: (M, 5) float32, cells, from the token's cell centre to the nearest box centre (x, y) and that
    box's size (x, y, z); in_box: (M,) bool, the tokens whose cell holds part of a box (their box target is
    scored)."""

    occupancy: Tensor
    extent: Tensor
    wall_offset: Tensor
    near_wall: Tensor
    box: Tensor
    in_box: Tensor

    def to(self, device: torch.device) -> DenseTargets:
        return DenseTargets(*(getattr(self, item.name).to(device) for item in dataclasses.fields(self)))


def token_cell_size_m(num_bins: int, strides: Sequence[int]) -> float:
    """Side of one output-grid cell in metres (input voxel times the product of the encoder's strides)."""
    return grid_size_m(num_bins) * math.prod(int(s) for s in strides)


def _grid(lo: float, hi: float) -> np.ndarray:
    count = max(2, math.ceil((hi - lo) / _STEP_M) + 1)
    return np.linspace(lo, hi, count)


def _surface_points(layout: Layout) -> list[tuple[int, np.ndarray]]:
    """(class index, (P, 3) points in metres) sampled over every entity."""
    out: list[tuple[int, np.ndarray]] = []
    walls = {wall.id: wall for wall in layout.walls}
    for wall in layout.walls:
        t = _grid(0.0, 1.0)[:, None]
        line = np.array([wall.ax, wall.ay]) * (1 - t) + np.array([wall.bx, wall.by]) * t
        z = _grid(wall.az, wall.az + max(wall.height, _STEP_M))
        points = np.concatenate([np.repeat(line, len(z), 0), np.tile(z, len(line))[:, None]], axis=1)
        out.append((0, points))
    for index, openings in ((1, layout.doors), (2, layout.windows)):
        for opening in openings:
            wall = walls.get(opening.wall_id)
            if wall is None:
                continue
            direction = np.array([wall.bx - wall.ax, wall.by - wall.ay])
            direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
            s = _grid(-opening.width / 2, opening.width / 2)
            z = _grid(opening.position_z - opening.height / 2, opening.position_z + opening.height / 2)
            line = np.array([opening.position_x, opening.position_y]) + s[:, None] * direction
            points = np.concatenate([np.repeat(line, len(z), 0), np.tile(z, len(line))[:, None]], axis=1)
            out.append((index, points))
    for box in layout.bboxes:
        if box.class_name in FURNITURE:
            out.append((3 + list(FURNITURE).index(box.class_name), _box_points(box)))
    return out


def _box_points(box: Bbox) -> np.ndarray:
    """(P, 3) points in metres sampled through a box's volume."""
    u, v, w = np.meshgrid(_grid(-box.scale_x / 2, box.scale_x / 2), _grid(-box.scale_y / 2, box.scale_y / 2),
                          _grid(-box.scale_z / 2, box.scale_z / 2), indexing="ij")
    cos, sin = math.cos(box.angle_z), math.sin(box.angle_z)
    return np.stack([box.position_x + cos * u - sin * v, box.position_y + sin * u + cos * v,
                     box.position_z + w], axis=-1).reshape(-1, 3)


def _cells(points: np.ndarray, cell_size_m: float) -> np.ndarray:
    """(C, 3) int64 distinct output-grid cells holding `points` (metres from the cloud's min corner)."""
    return np.unique(np.floor(np.maximum(points, 0.0) / cell_size_m).astype(np.int64), axis=0)


def dense_labels(layout: Layout, cell_size_m: float) -> DenseLabels:
    """Dense targets of one room. layout: metres relative to the prepared cloud's min corner."""
    cells: dict[tuple[int, int, int], int] = {}
    for index, points in _surface_points(layout):
        for key in map(tuple, _cells(points, cell_size_m).tolist()):
            cells[key] = cells.get(key, 0) | (1 << index)
    walls = np.array([[w.ax, w.ay, w.bx, w.by] for w in layout.walls], dtype=np.float32).reshape(-1, 4)
    if len(walls):
        ends = np.concatenate([walls[:, :2], walls[:, 2:]])
        extent = np.concatenate([ends.min(0), ends.max(0)]).astype(np.float32)
    else:
        extent = np.zeros(4, dtype=np.float32)
    boxes = np.array([[b.position_x, b.position_y, b.scale_x, b.scale_y, b.scale_z] for b in layout.bboxes
                      if b.class_name in FURNITURE], dtype=np.float32).reshape(-1, 5)
    return DenseLabels(cells, extent, walls, boxes)


def nearest_wall_offset(walls: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P, 2) vectors from each point to the nearest point of the nearest wall centre line. walls: (W, 4) segments
    (ax, ay, bx, by); points: (P, 2); metres. Infinite where there are no walls."""
    if not len(walls):
        return np.full((len(points), 2), np.inf, dtype=np.float32)
    a, b = walls[None, :, :2], walls[None, :, 2:]
    direction = b - a
    length2 = np.maximum((direction**2).sum(-1), 1e-12)
    t = np.clip(((points[:, None, :] - a) * direction).sum(-1) / length2, 0.0, 1.0)
    offsets = a + t[..., None] * direction - points[:, None, :]  # (P, W, 2)
    nearest = (offsets**2).sum(-1).argmin(1)
    return offsets[np.arange(len(points)), nearest].astype(np.float32)


def labels_from_target_text(text: str, num_bins: int, cell_size_m: float) -> DenseLabels:
    """Dense targets from a training answer (layout text in bins, relative to the cloud's min corner)."""
    layout, _ = parse_layout(text)
    return dense_labels(layout.undiscretize(num_bins), cell_size_m)


def dense_targets(labels: Sequence[DenseLabels], grid_coord: Tensor, counts: Sequence[int],
                  cell_size_m: float) -> DenseTargets:
    """Per-token targets for a batch. grid_coord: (M, 3) int64 output-grid cells, clouds in order; counts: tokens
    per cloud; cell_size_m: side of one output cell in metres."""
    occupancy = torch.zeros(grid_coord.shape[0], len(DENSE_CLASSES))
    extent = torch.zeros(grid_coord.shape[0], 4)
    wall_offset = torch.zeros(grid_coord.shape[0], 2)
    box = torch.zeros(grid_coord.shape[0], 5)
    bits = torch.tensor([1 << i for i in range(len(DENSE_CLASSES))])
    start = 0
    for room, count in zip(labels, counts, strict=True):
        cells = grid_coord[start : start + count]
        masks = torch.tensor([room.cells.get(tuple(cell), 0) for cell in cells.tolist()], dtype=torch.long)
        occupancy[start : start + count] = ((masks[:, None] & bits[None, :]) > 0).float()
        extent[start : start + count] = torch.from_numpy(room.extent / EXTENT_SCALE_M)
        centres = (cells[:, :2].numpy().astype(np.float32) + 0.5) * cell_size_m
        wall_offset[start : start + count] = torch.from_numpy(nearest_wall_offset(room.walls, centres) / cell_size_m)
        if len(room.boxes):
            nearest = ((centres[:, None, :] - room.boxes[None, :, :2]) ** 2).sum(-1).argmin(1)
            chosen = room.boxes[nearest]
            box[start : start + count] = torch.from_numpy(
                np.concatenate([chosen[:, :2] - centres, chosen[:, 2:]], axis=1) / cell_size_m)
        start += count
    near_wall = (wall_offset.abs() <= 1.0).all(dim=1)
    in_box = occupancy[:, len(DENSE_CLASSES) - len(FURNITURE) :].any(dim=1)
    return DenseTargets(occupancy, extent, torch.where(near_wall[:, None], wall_offset, 0.0), near_wall,
                        torch.where(in_box[:, None], box, 0.0), in_box)


class DenseHead(nn.Module):
    """Linear head from a point token's hidden vector to occupancy logits, the room extent and, with wall_offset,
    the wall offset."""

    def __init__(self, hidden_size: int, wall_offset: bool = False) -> None:
        super().__init__()
        self.wall_offset = wall_offset
        self.linear = nn.Linear(hidden_size, len(DENSE_CLASSES) + 4 + (2 if wall_offset else 0))

    def occupancy_logits(self, hidden: Tensor) -> Tensor:
        """(M, len(DENSE_CLASSES)) occupancy logits of (M, H) point tokens."""
        return self.linear(hidden.float())[:, : len(DENSE_CLASSES)]

    def losses(self, hidden: Tensor, targets: DenseTargets) -> dict[str, Tensor]:
        """hidden: (M, H) point tokens in the order of `targets`. Returns scalar losses: occupancy and extent are
        means over the M tokens; wall_offset (with wall_offset) a mean over the near-wall tokens, 0 when none."""
        out = self.linear(hidden.float())
        classes = len(DENSE_CLASSES)
        losses = {
            "occupancy": F.binary_cross_entropy_with_logits(out[:, :classes], targets.occupancy),
            "extent": F.smooth_l1_loss(out[:, classes : classes + 4], targets.extent, beta=0.05),
        }
        if self.wall_offset:
            near = targets.near_wall
            losses["wall_offset"] = F.smooth_l1_loss(out[near, classes + 4 :], targets.wall_offset[near], beta=0.05) \
                if near.any() else out[:0].sum()
        return losses


def box_loss(predicted: Tensor, targets: DenseTargets) -> Tensor:
    """Smooth L1 (cells) of the box head's (M, 5) outputs against the box targets, a mean over the tokens in a box;
    0 when none is."""
    inside = targets.in_box
    return F.smooth_l1_loss(predicted[inside].float(), targets.box[inside], beta=0.05) if inside.any() \
        else predicted[:0].sum()


def box_pointer_targets(text: str, token_starts: Sequence[int], num_bins: int, cell_size_m: float,
                        grid_coord: Tensor) -> tuple[Tensor, Tensor]:
    """Which answer tokens write a box line, and which point tokens hold that box.

    text: an answer (layout text in bins); token_starts: the character offset where each of its tokens starts;
    grid_coord: (M, 3) int64 output-grid cells of the room's point tokens. Returns (token indices (N,) int64 of
    the tokens on box lines whose box holds at least one point token's cell, targets (N, M) bool)."""
    layout, _ = parse_layout(text)
    boxes = layout.undiscretize(num_bins).bboxes
    lines = text.split("\n")
    line_starts = np.cumsum([0] + [len(line) + 1 for line in lines])
    box_of_line = {}
    for line_index, line in enumerate(lines):
        if line.startswith("bbox_") and len(box_of_line) < len(boxes):
            box_of_line[line_index] = len(box_of_line)
    cells = grid_coord.tolist()
    holds = []
    for box in boxes:
        inside = {tuple(cell) for cell in _cells(_box_points(box), cell_size_m).tolist()}
        holds.append(torch.tensor([tuple(cell) in inside for cell in cells], dtype=torch.bool))
    indices, targets = [], []
    for token, start in enumerate(token_starts):
        box = box_of_line.get(int(np.searchsorted(line_starts, start, side="right")) - 1)
        if box is not None and holds[box].any():
            indices.append(token)
            targets.append(holds[box])
    if not indices:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, len(cells), dtype=torch.bool)
    return torch.tensor(indices), torch.stack(targets)


class PointerHead(nn.Module):
    """Scores point tokens for answer states: query and key projections to `dim`, scaled dot products."""

    def __init__(self, hidden_size: int, dim: int = 64) -> None:
        super().__init__()
        self.query = nn.Linear(hidden_size, dim)
        self.key = nn.Linear(hidden_size, dim)

    def loss(self, states: Tensor, tokens: Tensor, targets: Tensor) -> Tensor:
        """states: (N, H) answer states; tokens: (M, H) point tokens; targets: (N, M) bool, at least one per row.
        Returns the mean over rows of -log(softmax mass on the row's targets)."""
        logits = self.query(states.float()) @ self.key(tokens.float()).T / math.sqrt(self.query.out_features)
        return (torch.logsumexp(logits, -1) - torch.logsumexp(logits.masked_fill(~targets, -math.inf), -1)).mean()
