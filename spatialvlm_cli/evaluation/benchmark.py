"""One row of the room benchmark: a prediction folder scored the exact way (with geometry) and SpatialLM's way.

The figures every table of this project reports for a model or a baseline (`scripts/pe_table.py`,
`scripts/baseline_rooms.py`): F1 x100 under the exact metric first, SpatialLM's wall F1 as a second column, and
the median geometric errors in metres (room extent, wall centre lines, door and window centres; see
room_geometry.py), which no matching threshold can hide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spatialvlm_cli.evaluation import evaluate_folders
from spatialvlm_cli.evaluation.report import EvalReport
from spatialvlm_cli.evaluation.room_geometry import DEFAULT_CUTOFF_M

# (key, markdown header) of the figures `BenchmarkRow.figures` gives, in table order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("wall_f1_25", "wall F1@.25 exact"),
    ("wall_f1_25_spatiallm", "wall F1@.25 SpatialLM"),
    ("wall_f1_50", "wall F1@.5 exact"),
    ("door_f1_25", "door F1@.25"),
    ("window_f1_25", "window F1@.25"),
    ("boxes_f1_25", "boxes F1@.25 (mean)"),
    ("extent_m", "extent err m (median)"),
    ("wall_m", "wall err m (median)"),
    ("door_m", "door err m (median)"),
    ("window_m", "window err m (median)"),
)


@dataclass(frozen=True)
class BenchmarkRow:
    """A prediction folder's reports: exact (with geometry) and SpatialLM's conventions."""

    name: str
    exact: EvalReport
    spatiallm: EvalReport

    def figures(self) -> dict[str, float | None]:
        """F1 x100 (exact, except wall_f1_25_spatiallm) and median geometric errors (metres), keyed as COLUMNS."""
        exact, geometry = self.exact, self.exact.geometry
        assert geometry is not None

        def f1(report: EvalReport, name: str, threshold: float) -> float | None:
            value = report.f1(name, threshold)
            return None if value is None else 100 * value

        boxes = exact.group_mean("objects", 0.25)
        return {
            "wall_f1_25": f1(exact, "wall", 0.25),
            "wall_f1_25_spatiallm": f1(self.spatiallm, "wall", 0.25),
            "wall_f1_50": f1(exact, "wall", 0.5),
            "door_f1_25": f1(exact, "door", 0.25),
            "window_f1_25": f1(exact, "window", 0.25),
            "boxes_f1_25": None if boxes is None else 100 * boxes,
            "extent_m": geometry.summary("extent").median,
            "wall_m": geometry.summary("wall").median,
            "door_m": geometry.summary("door").median,
            "window_m": geometry.summary("window").median,
        }

    def room_wall_f1(self) -> dict[str, float]:
        """Exact wall F1@.25 (x100) of every scored room, by scene name (for paired comparisons)."""
        return {scene.name: 100 * self.exact.scene_counts(s, "wall", 0.25).f1
                for s, scene in enumerate(self.exact.scenes) if scene.status == "scored"}


def score_row(name: str, pred_dir: Path, gt_dir: Path, cutoff: float = DEFAULT_CUTOFF_M) -> BenchmarkRow:
    """Score `pred_dir` against `gt_dir` both ways (see the module docstring)."""
    return BenchmarkRow(
        name=name,
        exact=evaluate_folders(pred_dir, gt_dir, exact=True, geometry=True, geometry_cutoff=cutoff),
        spatiallm=evaluate_folders(pred_dir, gt_dir),
    )


def format_figure(key: str, value: float | None) -> str:
    """F1 with one decimal, metres with two."""
    if value is None:
        return "–"
    return f"{value:.2f}" if key.endswith("_m") else f"{value:.1f}"
