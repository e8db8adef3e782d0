"""The one verdict type of `spatialvlm check`, the invariants that produce it, and the JSON form of a list of them.

An `Invariant` is a small named function of what a check looked at (one layer's attention call, a whole-model run,
a panorama run) that returns the numbers it measured and whether the property holds (None: it does not apply);
its two templates turn those numbers into text. A `Check` is a named group of invariants, judged into ONE
`CheckResult`: the seeds' nine numbered checkpoints per layer (`checkpoints.CHECKPOINTS`), the whole-model checks
(`model_checks.MODEL_CHECKS`) and the panorama checks (`panorama.PANORAMA_CHECKS`) are all tables of `Check`s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

Number = int | float | str | bool | tuple | list | None  # a measured value: a count, an error, a shape, a label
Subject = TypeVar("Subject")


@dataclass(frozen=True)
class Measurement:
    """What one invariant measured: `holds` its verdict, `numbers` the values behind it (JSON-ready)."""

    holds: bool
    numbers: Mapping[str, Number]


@dataclass(frozen=True)
class Invariant(Generic[Subject]):
    """measure: subject -> Measurement, or None when the property does not apply to this subject (e.g. no cache);
    held / broken: `str.format` templates over the measured numbers, the text shown when it holds / is broken."""

    measure: Callable[[Subject], Measurement | None]
    held: str
    broken: str

    @property
    def name(self) -> str:
        """The measuring function's name: the property checked, e.g. 'rotation_preserves_norms'."""
        return self.measure.__name__


@dataclass(frozen=True)
class CheckResult:
    """mode: the PE tried, e.g. "3D_RoPE/3D_with_1D"; layer: attention layer index, None for whole-model checks;
    checkpoint_no: 1..9 for the seeds' checkpoints, None otherwise; name: what was checked; passed: every
    invariant that applied holds; measured: {invariant name: {number name: value}} of the invariants that applied;
    detail: one line rendered from `measured` (the held texts when passed, else the broken ones)."""

    mode: str
    layer: int | None
    checkpoint_no: int | None
    name: str
    passed: bool
    measured: Mapping[str, Mapping[str, Number]]
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check(Generic[Subject]):
    """number: the seeds' checkpoint number (None for checks the seeds did not number); name: shown to users."""

    number: int | None
    name: str
    invariants: tuple[Invariant[Subject], ...]

    def judge(self, subject: Subject, mode: str, layer: int | None = None, name: str | None = None) -> CheckResult:
        """Measure every invariant on `subject` into one CheckResult (`name` overrides the check's name)."""
        measured = [(invariant, invariant.measure(subject)) for invariant in self.invariants]
        applied = [(invariant, found) for invariant, found in measured if found is not None]
        passed = all(found.holds for _, found in applied)
        texts = [(invariant.held if passed else invariant.broken).format(**found.numbers)
                 for invariant, found in applied if passed or not found.holds]
        return CheckResult(mode, layer, self.number, name or self.name, passed,
                           {invariant.name: dict(found.numbers) for invariant, found in applied}, "; ".join(texts))


def results_to_json(results: list[CheckResult], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"passed": all passed, "counts": {...}, **meta, "results": [...]} ready for `json.dumps`."""
    failed = sum(not result.passed for result in results)
    return {
        "passed": failed == 0,
        "counts": {"total": len(results), "passed": len(results) - failed, "failed": failed},
        **(meta or {}),
        "results": [result.to_dict() for result in results],
    }
