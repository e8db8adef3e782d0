"""Which scenes to score and their layout files: a prediction folder and a ground-truth folder of `<scene>.txt`.

Scenes are the ids of SpatialLM's `--metadata` CSV (column `id`, read as text: `0001` stays `0001`) or, without
it, every name that has a .txt in either folder. A scene with ground truth but no prediction is scored as an
empty prediction (its ground truth are all false negatives); a prediction with no ground truth is scored against
an empty layout (all false positives). A file that exists but cannot be read skips its scene.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.evaluation.scoring import ScenePair
from spatialvlm_cli.layout import parse_layout


@dataclass
class LoadedScenes:
    """Scene pairs ready to score, and the scenes that could not be read: (scene, reason)."""

    pairs: list[ScenePair] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def check_folder(path: Path, flag: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{flag} folder '{path}' does not exist")
    if not path.is_dir():
        raise InputError(f"{flag} '{path}' is not a folder")
    return path


def read_metadata_ids(path: Path) -> list[str]:
    """Scene ids from the `id` column of a CSV (SpatialLM's test.csv). Raises InputError when unusable."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if "id" not in columns:
                raise InputError(f"metadata '{path}' has no 'id' column (columns: {', '.join(columns)})")
            ids = [row["id"].strip() for row in reader if (row["id"] or "").strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read metadata '{path}': {error}") from None
    if not ids:
        raise InputError(f"metadata '{path}' lists no scene ids")
    return list(dict.fromkeys(ids))


def scene_names(pred_dir: Path, gt_dir: Path, metadata: Path | None = None) -> list[str]:
    """The metadata's ids in order, or the sorted union of .txt names in both folders."""
    if metadata is not None:
        return read_metadata_ids(metadata)
    names = {p.stem for p in pred_dir.glob("*.txt")} | {p.stem for p in gt_dir.glob("*.txt")}
    if not names:
        raise InputError(f"no .txt layouts in '{pred_dir}' or '{gt_dir}'")
    return sorted(names)


def load_scenes(pred_dir: Path, gt_dir: Path, metadata: Path | None = None) -> LoadedScenes:
    """Read and parse every scene's prediction and ground truth (see the module docstring for missing files)."""
    pred_dir, gt_dir = check_folder(pred_dir, "--pred"), check_folder(gt_dir, "--gt")
    loaded = LoadedScenes()
    for name in scene_names(pred_dir, gt_dir, metadata):
        try:
            pred_text = _read_optional(pred_dir / f"{name}.txt")
            gt_text = _read_optional(gt_dir / f"{name}.txt")
        except InputError as error:
            loaded.skipped.append((name, str(error)))
            continue
        if pred_text is None and gt_text is None:
            loaded.skipped.append((name, f"neither '{pred_dir / name}.txt' nor '{gt_dir / name}.txt' exists"))
            continue
        pred, pred_issues = parse_layout(pred_text) if pred_text is not None else (None, [])
        gt, gt_issues = parse_layout(gt_text) if gt_text is not None else (None, [])
        loaded.pairs.append(ScenePair(name, pred, gt, pred_issues, gt_issues))
    return loaded


def _read_optional(path: Path) -> str | None:
    """The file's text, None if it does not exist; InputError if it exists but cannot be read as UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not UTF-8 text") from None
    except OSError as error:
        raise InputError(f"cannot read '{path}': {error.strerror or error}") from None
