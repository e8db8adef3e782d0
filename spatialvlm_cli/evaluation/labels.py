"""Which object classes are scored: SpatialLM's 59 output names -> its 20 benchmark classes.

SpatialLM's eval.py reads the mapping from the test set's `benchmark_categories.tsv` (columns `spatiallm59`,
`spatiallm20`, ...), looks each box up by `class_name.replace("_", " ")`, drops boxes whose class has no mapping
(predictions and ground truth alike), and scores the 20 classes of `OBJECT_CLASSES`.

Without `--label_mapping` we use `DEFAULT_MAPPING`, a table of our own making (not SpatialLM's TSV, which is not
public here). It maps a 59-class name only where the target is plain from the names:
  * same name: sofa, chair, stool, bed, wardrobe, nightstand, tv_cabinet, coffee_table, dining_table, side_table,
    refrigerator, chandelier, painting, curtain, carpet, plants, tv, air_conditioner;
  * a kind of the target: dining_chair, bar_chair -> chair; wine/bathroom/shoe/entrance/decorative/washing/wall
    cabinet -> cabinet; potted_bonsai -> plants;
  * judgement calls, documented: sideboard, cupboard -> cabinet; dressing_table -> dresser.
Everything else (pillow, desk, stoves, sinks, lamps, mirror, the *_combination groups, ...) is not scored.
Each of the 20 targets also maps to itself, so ground truth already written in the 20 classes scores as is.
A TSV passed with `--label_mapping` replaces this table entirely, as in SpatialLM.
"""

from __future__ import annotations

import csv
from pathlib import Path

from spatialvlm_cli.errors import InputError

# SpatialLM's eval.py OBJECTS, in its order (the rows of its objects table).
OBJECT_CLASSES: tuple[str, ...] = (
    "curtain", "nightstand", "chandelier", "wardrobe", "bed", "sofa", "chair", "cabinet", "dining table", "plants",
    "tv cabinet", "coffee table", "side table", "air conditioner", "dresser", "stool", "refrigerator", "painting",
    "carpet", "tv",
)

_KINDS_OF: dict[str, tuple[str, ...]] = {
    "chair": ("dining chair", "bar chair"),
    "cabinet": ("wine cabinet", "bathroom cabinet", "shoe cabinet", "entrance cabinet", "decorative cabinet",
                "washing cabinet", "wall cabinet", "sideboard", "cupboard"),
    "plants": ("potted bonsai",),
    "dresser": ("dressing table",),
}

# Keys in SpatialLM's TSV spelling (spaces, not underscores) -> one of OBJECT_CLASSES.
DEFAULT_MAPPING: dict[str, str] = {
    **{name: name for name in OBJECT_CLASSES},
    **{kind: target for target, kinds in _KINDS_OF.items() for kind in kinds},
}


def read_label_mapping(path: Path, label_from: str = "spatiallm59", label_to: str = "spatiallm20") -> dict[str, str]:
    """A tab-separated file with a header row -> {label_from value: label_to value}, rows with an empty cell skipped
    (SpatialLM's read_label_mapping). Raises InputError if the file or a column is missing."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            columns = reader.fieldnames or []
            missing = [column for column in (label_from, label_to) if column not in columns]
            if missing:
                raise InputError(f"label mapping '{path}' has no column {missing[0]!r} (columns: {', '.join(columns)})")
            mapping = {}
            for row in reader:
                source, target = row[label_from] or "", row[label_to] or ""
                if source and target:
                    mapping[source] = target
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read label mapping '{path}': {error}") from None
    if not mapping:
        raise InputError(f"label mapping '{path}' maps no class from {label_from!r} to {label_to!r}")
    return mapping


def object_classes_for(mapping: dict[str, str], label_to: str = "spatiallm20") -> tuple[str, ...]:
    """The object classes to score: SpatialLM's 20 for its 20-class column (and our default table), otherwise the
    mapping's targets in order of first appearance."""
    if label_to == "spatiallm20":
        return OBJECT_CLASSES
    return tuple(dict.fromkeys(mapping.values()))
