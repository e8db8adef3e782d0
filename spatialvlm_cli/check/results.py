"""One verdict of `spatialvlm check`, and the JSON form of a list of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# The seeds' nine per-layer checkpoints (seed 001, `SPATIALLM_VERBOSE=1`), in their words.
CHECKPOINT_NAMES = {
    1: "Q/K/V after projection and head reshape",
    2: "3-D RoPE data (cos/sin, point-token spans)",
    3: "point-token extraction",
    4: "after 3-D RoPE on point tokens",
    5: "full Q/K after 3-D RoPE",
    6: "1-D RoPE data",
    7: "point tokens kept",
    8: "after 1-D RoPE on all tokens",
    9: "final Q/K (points 3-D, text 1-D)",
}


@dataclass(frozen=True)
class CheckResult:
    """mode: the PE tried, e.g. "3D_RoPE/3D_with_1D"; layer: attention layer index, None for whole-model checks;
    checkpoint_no: 1..9 for the seeds' checkpoints, None for whole-model checks; name: what was checked;
    passed: the verdict; detail: shapes, spans and the numbers behind the verdict (one line)."""

    mode: str
    layer: int | None
    checkpoint_no: int | None
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def results_to_json(results: list[CheckResult], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"passed": all passed, "counts": {...}, **meta, "results": [...]} ready for `json.dumps`."""
    failed = sum(not result.passed for result in results)
    return {
        "passed": failed == 0,
        "counts": {"total": len(results), "passed": len(results) - failed, "failed": failed},
        **(meta or {}),
        "results": [result.to_dict() for result in results],
    }
