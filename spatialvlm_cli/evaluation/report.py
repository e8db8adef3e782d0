"""Results of an evaluation: per-scene counts, SpatialLM's per-class aggregation, and the JSON form.

Aggregation is SpatialLM's: for each class and threshold, precision, recall and F1 are computed per scene
(EvalTuple: P = tp/num_pred, R = tp/num_gt, F1 = 2PR/(P+R), each 0 when undefined), then averaged over the scenes
where the class has a prediction or a ground truth (scenes with neither are masked out). This is not a micro-F1
over the dataset; the summed counts are reported alongside. The sums are taken as numpy's masked mean takes them,
so the F1 values are bit-identical to eval.py's. A group's mean is the plain mean of its classes' values, over the
classes that were scored in at least one scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from spatialvlm_cli.layout import ParseIssue

if TYPE_CHECKING:
    from spatialvlm_cli.evaluation.room_geometry import GeometryReport

# A scene is scored when both layouts exist; otherwise it says which one is missing.
SceneStatus = Literal["scored", "no_prediction", "no_ground_truth"]


@dataclass(frozen=True)
class Counts:
    """One scene, class and threshold: true positives, predictions, ground-truth instances."""

    tp: int
    num_pred: int
    num_gt: int

    @property
    def precision(self) -> float:
        return self.tp / self.num_pred if self.num_pred > 0 else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.num_gt if self.num_gt > 0 else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def masked(self) -> bool:
        """Neither prediction nor ground truth: the scene does not count for this class."""
        return self.num_pred == 0 and self.num_gt == 0


@dataclass(frozen=True)
class Match:
    """A matched pair at or above the threshold: indices into the scene's walls/doors/windows/bboxes lists."""

    pred_index: int
    gt_index: int
    iou: float


@dataclass(frozen=True)
class MatchTable:
    """Matched pairs of all scenes as (M,) arrays: scene, class and threshold indices, the pair's entity indices in
    the scene's walls/doors/windows/bboxes lists, and its IoU."""

    scene: np.ndarray
    class_index: np.ndarray
    threshold_index: np.ndarray
    pred_index: np.ndarray
    gt_index: np.ndarray
    iou: np.ndarray

    @classmethod
    def concatenate(cls, tables: list[MatchTable]) -> MatchTable:
        if not tables:
            return cls(*(np.zeros(0, dtype=np.int64) for _ in range(5)), np.zeros(0))
        return cls(*(np.concatenate([getattr(t, name) for t in tables]) for name in _MATCH_FIELDS))

    def grouped(self) -> dict[tuple[int, int, int], list[Match]]:
        """(scene, class, threshold) -> matches, ordered by prediction index."""
        order = np.lexsort((self.pred_index, self.threshold_index, self.class_index, self.scene))
        groups: dict[tuple[int, int, int], list[Match]] = {}
        for s, c, k, p, g, v in zip(*(getattr(self, name)[order].tolist() for name in _MATCH_FIELDS), strict=True):
            groups.setdefault((s, c, k), []).append(Match(p, g, round(v, 6)))
        return groups


_MATCH_FIELDS = ("scene", "class_index", "threshold_index", "pred_index", "gt_index", "iou")


@dataclass
class SceneInfo:
    """A scored scene: its status, the lines its files had to skip, and how many layout pairs
    had a degenerate plane (scored 0)."""

    name: str
    status: SceneStatus
    pred_issues: list[ParseIssue] = field(default_factory=list)
    gt_issues: list[ParseIssue] = field(default_factory=list)
    degenerate_pairs: int = 0


@dataclass(frozen=True)
class ClassScore:
    """SpatialLM's scene-averaged scores of one class at one threshold (None: no scene had this class)."""

    f1: float | None
    precision: float | None
    recall: float | None
    num_scenes: int
    tp: int
    num_pred: int
    num_gt: int


@dataclass
class EvalReport:
    """Everything `spatialvlm eval` prints and writes. Scores are fractions in [0, 1].

    counts: (S, C, T, 3) int64 [tp, num_pred, num_gt] for scene s, class c of `classes`, threshold t.
    matches: every matched pair (IoU >= threshold).
    geometry: geometric errors in metres (`eval --geometry`, see room_geometry.py), None when not asked for."""

    thresholds: tuple[float, ...]
    exact: bool
    layout_classes: tuple[str, ...]
    object_classes: tuple[str, ...]
    scenes: list[SceneInfo]
    counts: np.ndarray
    matches: MatchTable = field(default_factory=lambda: MatchTable.concatenate([]))
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (scene, reason) that could not be read
    geometry: GeometryReport | None = None
    scores: dict[str, dict[float, ClassScore]] = field(init=False)

    def __post_init__(self) -> None:
        self.scores = _aggregate(self.counts, self.classes, self.thresholds)

    @property
    def classes(self) -> tuple[str, ...]:
        return (*self.layout_classes, *self.object_classes)

    def f1(self, class_name: str, threshold: float) -> float | None:
        return self.scores[class_name][threshold].f1

    def scene_counts(self, scene: int, class_name: str, threshold: float) -> Counts:
        cell = self.counts[scene, self.classes.index(class_name), self.thresholds.index(threshold)]
        return Counts(*(int(v) for v in cell))

    def scene_matches(self, scene: int, class_name: str, threshold: float) -> list[Match]:
        """Matched pairs of one scene, class and threshold, by prediction index."""
        m = self.matches
        c, k = self.classes.index(class_name), self.thresholds.index(threshold)
        chosen = np.nonzero((m.scene == scene) & (m.class_index == c) & (m.threshold_index == k))[0]
        chosen = chosen[np.argsort(m.pred_index[chosen], kind="stable")]
        return [Match(int(m.pred_index[i]), int(m.gt_index[i]), round(float(m.iou[i]), 6)) for i in chosen]

    def group_mean(self, group: str, threshold: float, metric: str = "f1") -> float | None:
        """Mean over the group's ('layouts' or 'objects') classes that were scored in some scene."""
        classes = self.layout_classes if group == "layouts" else self.object_classes
        values = [getattr(self.scores[c][threshold], metric) for c in classes]
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def scenes_with(self, status: SceneStatus) -> list[str]:
        return [scene.name for scene in self.scenes if scene.status == status]

    def to_json(self) -> dict[str, Any]:
        """Summary per group and class, per-scene detail, and what was skipped. Thresholds are keys like "0.25"."""
        groups = {"layouts": self.layout_classes, "objects": self.object_classes}
        grouped = self.matches.grouped()
        result: dict[str, Any] = {
            "thresholds": list(self.thresholds),
            "exact": self.exact,
            "aggregation": "per class: mean over scenes of per-scene F1 (SpatialLM eval.py); mean: over classes",
            "summary": {
                group: {
                    "mean": {_key(t): {m: self.group_mean(group, t, m) for m in ("f1", "precision", "recall")}
                             for t in self.thresholds},
                    "classes": {c: {_key(t): vars(self.scores[c][t]) for t in self.thresholds} for c in classes},
                }
                for group, classes in groups.items()
            },
            "num_scenes": len(self.scenes),
            "scenes_without_prediction": self.scenes_with("no_prediction"),
            "scenes_without_ground_truth": self.scenes_with("no_ground_truth"),
            "skipped_scenes": [{"scene": name, "reason": reason} for name, reason in self.skipped],
            "scenes": [self._scene_json(s, cells, grouped) for s, cells in enumerate(self.counts.tolist())],
        }
        if self.geometry is not None:
            result["geometry"] = self.geometry.to_json()
        return result

    def _scene_json(self, s: int, cells: list[list[list[int]]],
                    grouped: dict[tuple[int, int, int], list[Match]]) -> dict[str, Any]:
        """cells: this scene's counts as nested lists (C, T, 3)."""
        scene = self.scenes[s]
        classes = {}
        for c, class_name in enumerate(self.classes):
            if not any(n_pred or n_gt for _, n_pred, n_gt in cells[c]):
                continue
            classes[class_name] = {
                _key(t): {
                    "tp": cells[c][k][0], "num_pred": cells[c][k][1], "num_gt": cells[c][k][2],
                    "f1": Counts(*cells[c][k]).f1,
                    "matches": [[m.pred_index, m.gt_index, m.iou] for m in grouped.get((s, c, k), [])],
                }
                for k, t in enumerate(self.thresholds)
            }
        return {
            "scene": scene.name,
            "status": scene.status,
            "classes": classes,
            "skipped_prediction_lines": [vars(issue) for issue in scene.pred_issues],
            "skipped_ground_truth_lines": [vars(issue) for issue in scene.gt_issues],
            "degenerate_pairs": scene.degenerate_pairs,
        }


def _aggregate(counts: np.ndarray, classes: tuple[str, ...],
               thresholds: tuple[float, ...]) -> dict[str, dict[float, ClassScore]]:
    """SpatialLM's masked mean over scenes, for all classes and thresholds at once."""
    counts = counts.reshape(-1, len(classes), len(thresholds), 3)
    tp, num_pred, num_gt = (counts[..., i].astype(np.float64) for i in range(3))  # (S, C, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(num_pred > 0, tp / num_pred, 0.0)
        recall = np.where(num_gt > 0, tp / num_gt, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    masked = (num_pred == 0) & (num_gt == 0)
    num_scenes = (~masked).sum(axis=0)  # (C, T)

    def scene_mean(values: np.ndarray) -> np.ndarray:
        # np.ma's mean: the masked-as-0 array summed along a contiguous axis (pairwise, as a 1-D sum), * 1. / count
        filled = np.ascontiguousarray(np.moveaxis(np.where(masked, 0.0, values), 0, -1))  # (C, T, S)
        return filled.sum(axis=-1) * 1.0 / np.maximum(num_scenes, 1)

    means = {"f1": scene_mean(f1), "precision": scene_mean(precision), "recall": scene_mean(recall)}
    totals = counts.sum(axis=0)  # (C, T, 3)
    scores: dict[str, dict[float, ClassScore]] = {}
    for c, class_name in enumerate(classes):
        scores[class_name] = {}
        for k, threshold in enumerate(thresholds):
            scored = num_scenes[c, k] > 0
            scores[class_name][threshold] = ClassScore(
                *(float(means[m][c, k]) if scored else None for m in ("f1", "precision", "recall")),
                num_scenes=int(num_scenes[c, k]), tp=int(totals[c, k, 0]), num_pred=int(totals[c, k, 1]),
                num_gt=int(totals[c, k, 2]),
            )
    return scores


def _key(threshold: float) -> str:
    return f"{threshold:g}"
