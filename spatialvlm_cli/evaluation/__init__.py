"""Layout and object metrics that reproduce SpatialLM's eval.py (F1 after Hungarian matching), the geometric errors
in metres of `eval --geometry` (room_geometry.py) and the room baselines (baselines.py); caption and VQA metrics
for panorama answers (`eval --task caption|vqa`: text.py, read and matched by answers.py). No torch here.

    report = evaluate_folders("preds/", "gt/")              # or metadata=..., label_mapping=...
    report.f1("wall", 0.25); report.group_mean("objects", 0.5); report.to_json()
    evaluate_folders("preds/", "gt/", exact=True, geometry=True).geometry.summary("wall")   # metres
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.evaluation.inputs import LoadedScenes, load_scenes
from spatialvlm_cli.evaluation.iou import box_iou, thin_rect_iou
from spatialvlm_cli.evaluation.labels import DEFAULT_MAPPING, OBJECT_CLASSES, object_classes_for, read_label_mapping
from spatialvlm_cli.evaluation.report import ClassScore, Counts, EvalReport, Match, MatchTable, SceneInfo
from spatialvlm_cli.evaluation.room_geometry import (
    DEFAULT_CUTOFF_M,
    METRICS,
    GeometryReport,
    MetricSummary,
    RoomGeometry,
    SetError,
    geometry_report,
    room_geometry,
)
from spatialvlm_cli.evaluation.scoring import EvalOptions, ScenePair, score_scenes

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.25, 0.5)


def make_options(
    label_mapping: Path | None = None,
    label_from: str = "spatiallm59",
    label_to: str = "spatiallm20",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    exact: bool = False,
) -> EvalOptions:
    """EvalOptions from user-level settings: the TSV (or our default table), thresholds in (0, 1], exact."""
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds or any(not 0.0 < t <= 1.0 for t in thresholds):
        raise ConfigError(f"IoU thresholds must be in (0, 1], got {list(thresholds)}")
    if len(set(thresholds)) != len(thresholds):
        raise ConfigError(f"IoU thresholds must be distinct, got {list(thresholds)}")
    if label_mapping is None:
        return EvalOptions(thresholds=thresholds, exact=exact)
    mapping = read_label_mapping(label_mapping, label_from, label_to)
    return EvalOptions(thresholds=thresholds, exact=exact, mapping=mapping,
                       object_classes=object_classes_for(mapping, label_to))


def evaluate_folders(
    pred_dir: Path,
    gt_dir: Path,
    metadata: Path | None = None,
    label_mapping: Path | None = None,
    label_from: str = "spatiallm59",
    label_to: str = "spatiallm20",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    exact: bool = False,
    geometry: bool = False,
    geometry_cutoff: float = DEFAULT_CUTOFF_M,
) -> EvalReport:
    """Score `<scene>.txt` predictions against ground truth of the same names (metres, SpatialLM's text form).

    geometry: also measure the geometric errors in metres (report.geometry; see room_geometry.py), each capped at
    geometry_cutoff metres, the value of a missing entity.

    Raises InputError when a folder or the metadata is missing, or when no scene can be scored."""
    options = make_options(label_mapping, label_from, label_to, thresholds, exact)
    loaded = load_scenes(Path(pred_dir), Path(gt_dir), Path(metadata) if metadata is not None else None)
    if not loaded.pairs:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in loaded.skipped[:3])
        raise InputError(f"no scene could be scored ({reasons})")
    report = score_scenes(loaded.pairs, options, skipped=loaded.skipped)
    if geometry:
        if not geometry_cutoff > 0:
            raise ConfigError(f"the geometry cutoff must be a positive number of metres, got {geometry_cutoff}")
        report.geometry = geometry_report([(p.name, p.pred, p.gt) for p in loaded.pairs], geometry_cutoff)
    return report


__all__ = [
    "DEFAULT_CUTOFF_M",
    "DEFAULT_MAPPING",
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "OBJECT_CLASSES",
    "ClassScore",
    "Counts",
    "EvalOptions",
    "EvalReport",
    "GeometryReport",
    "LoadedScenes",
    "Match",
    "MatchTable",
    "MetricSummary",
    "RoomGeometry",
    "SceneInfo",
    "ScenePair",
    "SetError",
    "box_iou",
    "evaluate_folders",
    "geometry_report",
    "load_scenes",
    "make_options",
    "room_geometry",
    "score_scenes",
    "thin_rect_iou",
]
