"""Score scenes as SpatialLM's eval.py does, with the IoUs of all scenes computed in one batched pass.

Per scene (SpatialLM's order of operations):
  1. boxes: class mapped through the label table (unmapped boxes dropped), extents clamped to >= 0.1 m, only the
     scored object classes kept;
  2. layouts: walls whose xy extent is <= 1e-6 in both x and y dropped; doors/windows dropped unless their wall_id
     names a kept wall (the last wall with that id, as SpatialLM's dict lookup);
  3. per class and threshold t: IoU matrix (pred x gt), cost -1 where IoU > t and 1e6 elsewhere, Hungarian
     assignment (scipy linear_sum_assignment), TP = assigned pairs with IoU >= t.
Layout IoUs are compared in float32, as SpatialLM's torch tensors hold them; object IoUs are already rounded to
5 decimals. Entities keep file order, so the assignment (and its ties) is the same as SpatialLM's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from spatialvlm_cli.evaluation.iou import box_iou, opening_corners, thin_rect_iou, wall_corners
from spatialvlm_cli.evaluation.labels import DEFAULT_MAPPING, OBJECT_CLASSES
from spatialvlm_cli.evaluation.report import EvalReport, MatchTable, SceneInfo
from spatialvlm_cli.layout import LAYOUT_LABELS, Bbox, Layout, ParseIssue, Wall

LARGE_COST = 1e6
ZERO_EXTENT_M = 1e-6
MIN_BOX_SCALE_M = 0.1
PAIRS_PER_CHUNK = 200_000


@dataclass
class ScenePair:
    """A scene's prediction and ground truth (None: that file does not exist, scored as an empty layout)."""

    name: str
    pred: Layout | None
    gt: Layout | None
    pred_issues: list[ParseIssue] = field(default_factory=list)
    gt_issues: list[ParseIssue] = field(default_factory=list)


@dataclass(frozen=True)
class EvalOptions:
    """thresholds: IoU thresholds; exact: geometric variants (see iou.py); mapping: 59-class name (spaces) ->
    scored class; object_classes: the scored object classes, in table order."""

    thresholds: tuple[float, ...] = (0.25, 0.5)
    exact: bool = False
    mapping: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    object_classes: tuple[str, ...] = OBJECT_CLASSES


class _Rows:
    """Geometry rows of one kind for all scenes, appended so that each (scene, side, class) run is contiguous."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[tuple[float, ...]] = []
        self.sources: list[int] = []  # index of each row's entity in its layout list

    def add(self, items: list[tuple[int, tuple[float, ...]]]) -> tuple[int, int]:
        """Append (source index, row) items; return (start row, count)."""
        start = len(self.rows)
        for source, row in items:
            self.sources.append(source)
            self.rows.append(row)
        return start, len(items)

    def array(self) -> np.ndarray:
        return np.array(self.rows, dtype=np.float64).reshape(-1, self.width)


def score_scenes(pairs: Sequence[ScenePair], options: EvalOptions | None = None,
                 skipped: list[tuple[str, str]] | None = None) -> EvalReport:
    """Score every scene pair and aggregate as SpatialLM does. Missing layouts count as empty."""
    options = options or EvalOptions()
    classes = (*LAYOUT_LABELS, *options.object_classes)
    class_index = {name: c for c, name in enumerate(classes)}
    walls, openings, hosts, boxes = _Rows(7), _Rows(5), _Rows(7), _Rows(7)
    # One row per (scene, class): scene, class, pred start, num_pred, gt start, num_gt.
    rect_blocks: list[tuple[int, int, int, int, int, int]] = []
    box_blocks: list[tuple[int, int, int, int, int, int]] = []
    scenes: list[SceneInfo] = []

    for s, pair in enumerate(pairs):
        status = "no_prediction" if pair.pred is None else "no_ground_truth" if pair.gt is None else "scored"
        scenes.append(SceneInfo(pair.name, status, pair.pred_issues, pair.gt_issues))
        spans: dict[tuple[str, str], tuple[int, int]] = {}
        for side, layout in (("pred", pair.pred or Layout()), ("gt", pair.gt or Layout())):
            spans[side, "wall"] = walls.add([(i, _wall_row(w)) for i, w in enumerate(layout.walls) if _is_valid(w)])
            lookup = {w.id: w for w in layout.walls}
            for label, group in (("door", layout.doors), ("window", layout.windows)):
                chosen = [(i, o) for i, o in enumerate(group) if _is_valid(lookup.get(o.wall_id))]
                spans[side, label] = openings.add(
                    [(i, (o.position_x, o.position_y, o.position_z, o.width, o.height)) for i, o in chosen]
                )
                hosts.add([(i, _wall_row(lookup[o.wall_id])) for i, o in chosen])
            by_class: dict[str, list[tuple[int, tuple[float, ...]]]] = {name: [] for name in options.object_classes}
            for i, box in enumerate(layout.bboxes):
                target = options.mapping.get(box.class_name.replace("_", " "))
                if target in by_class:
                    by_class[target].append((i, _box_row(box)))
            for name, items in by_class.items():
                spans[side, name] = boxes.add(items)
        for name in LAYOUT_LABELS:
            rect_blocks.append((s, class_index[name], *spans["pred", name], *spans["gt", name]))
        for name in options.object_classes:
            box_blocks.append((s, class_index[name], *spans["pred", name], *spans["gt", name]))

    rect = np.array(rect_blocks, dtype=np.int64).reshape(-1, 6)
    opening_block = rect[:, 1] != class_index["wall"]
    rect[opening_block, 2] += len(walls.rows)  # openings' rows follow all walls' rows in the rectangle row space
    rect[opening_block, 4] += len(walls.rows)
    corners = np.concatenate([wall_corners(walls.array()), opening_corners(openings.array(), hosts.array())])
    pred_rows, gt_rows = _pair_rows(rect)
    rect_iou, degenerate = np.zeros(len(pred_rows)), np.zeros(len(pred_rows), dtype=bool)
    for chunk in _chunks(len(pred_rows)):
        rect_iou[chunk], degenerate[chunk] = thin_rect_iou(corners[pred_rows[chunk]], corners[gt_rows[chunk]],
                                                           exact=options.exact)

    box_rows = boxes.array()
    box = np.array(box_blocks, dtype=np.int64).reshape(-1, 6)
    pred_rows, gt_rows = _pair_rows(box)
    box_pair_iou = np.zeros(len(pred_rows))
    for chunk in _chunks(len(pred_rows)):
        box_pair_iou[chunk] = box_iou(box_rows[pred_rows[chunk]], box_rows[gt_rows[chunk]], exact=options.exact)

    counts = np.zeros((len(scenes), len(classes), len(options.thresholds), 3), dtype=np.int64)
    matches: list[MatchTable] = []
    _match(rect, rect_iou.astype(np.float32), np.array(walls.sources + openings.sources, dtype=np.int64),
           options.thresholds, counts, matches)
    _match(box, box_pair_iou, np.array(boxes.sources, dtype=np.int64), options.thresholds, counts, matches)
    pair_scene = np.repeat(rect[:, 0], rect[:, 3] * rect[:, 5])
    for s, num_degenerate in enumerate(np.bincount(pair_scene[degenerate], minlength=len(scenes))):
        scenes[s].degenerate_pairs = int(num_degenerate)
    return EvalReport(
        thresholds=tuple(options.thresholds),
        exact=options.exact,
        layout_classes=LAYOUT_LABELS,
        object_classes=tuple(options.object_classes),
        scenes=scenes,
        counts=counts,
        matches=MatchTable.concatenate(matches),
        skipped=list(skipped or []),
    )


def _is_valid(wall: Wall | None) -> bool:
    """SpatialLM's is_valid_wall: some xy extent above 1e-6 m (None: a door's wall id names no wall)."""
    if wall is None:
        return False
    return abs(wall.bx - wall.ax) > ZERO_EXTENT_M or abs(wall.by - wall.ay) > ZERO_EXTENT_M


def _wall_row(wall: Wall) -> tuple[float, ...]:
    return (wall.ax, wall.ay, wall.az, wall.bx, wall.by, wall.bz, wall.height)


def _box_row(box: Bbox) -> tuple[float, ...]:
    return (box.position_x, box.position_y, box.position_z, box.angle_z,
            max(box.scale_x, MIN_BOX_SCALE_M), max(box.scale_y, MIN_BOX_SCALE_M), max(box.scale_z, MIN_BOX_SCALE_M))


def _pair_rows(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of every (pred, gt) pair, block after block, row-major within a block (pred i, gt j).

    blocks: (B, 6) [scene, class, pred start, num_pred, gt start, num_gt]. Returns two (sum P*G,) int64 arrays."""
    num_gt = blocks[:, 5]
    sizes = blocks[:, 3] * num_gt
    local = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    columns = np.repeat(np.maximum(num_gt, 1), sizes)
    return np.repeat(blocks[:, 2], sizes) + local // columns, np.repeat(blocks[:, 4], sizes) + local % columns


def _chunks(count: int) -> list[slice]:
    """Slices of at most PAIRS_PER_CHUNK pairs: bounds the clipping's temporaries (~1 kB a pair) on huge scenes."""
    return [slice(start, start + PAIRS_PER_CHUNK) for start in range(0, count, PAIRS_PER_CHUNK)]


def _match(blocks: np.ndarray, iou: np.ndarray, sources: np.ndarray, thresholds: Sequence[float],
           counts: np.ndarray, matches: list[MatchTable]) -> None:
    """Hungarian matching per block and threshold: fills counts (S, C, T, 3) in place, appends the matched pairs.

    blocks: (B, 6) as `_pair_rows`; iou: their flat pair IoUs, in the dtype thresholds are compared in;
    sources: entity index of each geometry row.

    With cost -1 where IoU > t and 1e6 elsewhere, the assignment holds a maximum matching of the IoU > t pairs,
    plus arbitrary pairs that count only when their IoU is exactly t. So a block where no IoU equals t and every
    row and column has at most one IoU > t has exactly those pairs as its matches; only the other blocks need
    scipy's linear_sum_assignment (with SpatialLM's cost matrix, so ties resolve as in eval.py)."""
    from scipy.optimize import linear_sum_assignment  # imported here: scipy.optimize takes ~0.5 s to import

    scene, cls = blocks[:, 0], blocks[:, 1]
    counts[scene, cls, :, 1] = blocks[:, 3:4]
    counts[scene, cls, :, 2] = blocks[:, 5:6]
    sizes = blocks[:, 3] * blocks[:, 5]
    starts = np.cumsum(sizes) - sizes
    pair_block = np.repeat(np.arange(len(blocks)), sizes)
    pred_rows, gt_rows = _pair_rows(blocks)
    for k, threshold in enumerate(thresholds):
        t = iou.dtype.type(threshold)
        above = iou > t
        per_pred = np.bincount(pred_rows[above], minlength=len(sources))
        per_gt = np.bincount(gt_rows[above], minlength=len(sources))
        ambiguous = (above & ((per_pred[pred_rows] > 1) | (per_gt[gt_rows] > 1))) | (iou == t)
        needs_assignment = np.bincount(pair_block[ambiguous], minlength=len(blocks)) > 0

        direct = above & ~needs_assignment[pair_block]
        _record(matches, k, blocks[pair_block[direct], 0], blocks[pair_block[direct], 1], sources[pred_rows[direct]],
                sources[gt_rows[direct]], iou[direct])
        counts[scene, cls, k, 0] = np.bincount(pair_block[direct], minlength=len(blocks))
        for b in np.nonzero(needs_assignment)[0]:
            s, c, pred_start, num_pred, gt_start, num_gt = (int(v) for v in blocks[b])
            matrix = iou[starts[b]: starts[b] + sizes[b]].reshape(num_pred, num_gt)
            rows, cols = linear_sum_assignment(np.where(matrix > t, -1.0, LARGE_COST))
            hit = matrix[rows, cols] >= t
            counts[s, c, k, 0] = int(hit.sum())
            _record(matches, k, np.full(int(hit.sum()), s), np.full(int(hit.sum()), c),
                    sources[pred_start + rows[hit]], sources[gt_start + cols[hit]], matrix[rows[hit], cols[hit]])


def _record(matches: list[MatchTable], k: int, scene: np.ndarray, cls: np.ndarray, pred_index: np.ndarray,
            gt_index: np.ndarray, iou: np.ndarray) -> None:
    if len(scene):
        matches.append(MatchTable(scene, cls, np.full(len(scene), k), pred_index, gt_index,
                                  iou.astype(np.float64)))
