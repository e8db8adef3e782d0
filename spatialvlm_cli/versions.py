"""The tested version windows of spatialvlm's dependencies, and one warning line per package outside them.

pyproject.toml declares every dependency as `name>=low,<high`: `low` is the oldest version CI tests (`.ci/run`'s
oldest leg, pinned by ci/oldest.txt) and `high` lies just past the newest version tested (its newest leg).
`tests/test_versions.py` checks that the windows below equal pyproject's ranges and ci/oldest.txt's pins.

Importing this module is cheap (importlib.metadata, logging, re, argparse). `warn_untested_versions()` runs when
`spatialvlm_cli.model` or `spatialvlm_cli.panorama` is imported; `python -m spatialvlm_cli.versions LABEL` prints the
versions a CI leg tests as one line.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"^\s*v?(?:\d+!)?(?P<release>\d+(?:\.\d+)*)(?P<rest>[^+]*)", re.IGNORECASE)
_PRE = re.compile(r"^[-_.]?(a|b|c|rc|alpha|beta|pre|preview|dev)", re.IGNORECASE)


def _parse(version: str) -> tuple[tuple[int, ...], bool] | None:
    """(release numbers, is a pre- or dev release) of a PEP 440 version; the local part (`+cpu`) is ignored."""
    match = _VERSION.match(version)
    if match is None:
        return None
    release = tuple(int(part) for part in match["release"].split("."))
    return release, bool(_PRE.match(match["rest"]))


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


@dataclass(frozen=True)
class Window:
    """`>=low,<high`: `low` is the oldest version tested, `high` lies just past the newest tested."""

    low: str
    high: str

    def __str__(self) -> str:
        return f">={self.low},<{self.high}"

    def contains(self, version: str) -> bool | None:
        """Whether `version` lies in the window as pip reads `>=low,<high`; None when it cannot be parsed."""
        parsed, low, high = _parse(version), _parse(self.low), _parse(self.high)
        if parsed is None or low is None or high is None:
            return None
        release, pre = parsed
        at, lowest = _padded(release, low[0])
        if at < lowest or (at == lowest and pre):  # a pre-release of `low` comes before it
            return False
        at, highest = _padded(release, high[0])
        return at < highest  # `<high` also excludes the pre-releases of `high`

    def at_low(self, version: str) -> bool:
        """Whether `version` is the lower bound itself (a local part such as `+cpu` aside)."""
        parsed, low = _parse(version), _parse(self.low)
        if parsed is None or low is None or parsed[1]:
            return False
        at, lowest = _padded(parsed[0], low[0])
        return at == lowest


# Runtime dependencies (pyproject's `dependencies`), checked when a model path is imported.
RUNTIME: dict[str, Window] = {
    "torch": Window("2.13", "2.14"),
    "transformers": Window("5.23", "5.26"),
    "typer": Window("0.29", "0.30"),
    "rich": Window("13.8", "15.1"),
    "open3d": Window("0.18", "0.21"),
    "pyyaml": Window("6.0.1", "6.1"),
    "numpy": Window("1.24", "2.5"),
    "scipy": Window("1.10", "1.18"),
    "pillow": Window("10.1", "13.1"),
}
# Optional extras (pyproject's `optional-dependencies` other than `test`), imported only by the features that need them.
EXTRAS: dict[str, dict[str, Window]] = {
    "lora": {"peft": Window("0.21", "0.22")},
    "las": {"laspy": Window("2.4", "2.8"), "lazrs": Window("0.5", "0.9")},
    "e57": {"pye57": Window("0.4.5", "0.5")},
    "view": {"rerun-sdk": Window("0.40", "0.42")},
    "dxf": {"ezdxf": Window("1.1", "1.5")},
    "ifc": {"ifcopenshell": Window("0.8.1", "0.10")},
}
# Extras the `test` extra leaves out: `view`, which the oldest leg cannot install (rerun-sdk needs numpy >= 2, the
# oldest leg pins numpy 1.24), and `ifc`, whose ifcopenshell takes 200 MB. Their windows were tested by hand at both
# ends; their tests skip when the extra is missing.
NOT_IN_TEST = ("view", "ifc")
# The `test` extra: CI tests these windows too (and every other extra's, which the test extra includes), but they do
# not matter at runtime.
TEST: dict[str, Window] = {
    "pytest": Window("8.0", "9.3"),
    "ruff": Window("0.13", "0.18"),
    **{name: window for extra, windows in EXTRAS.items() if extra not in NOT_IN_TEST
       for name, window in windows.items()},
}


def installed_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def untested(
    windows: Mapping[str, Window] = RUNTIME, version_of: Callable[[str], str | None] = installed_version
) -> dict[str, str]:
    """{package: one warning line} for each installed package whose version lies outside its tested window."""
    lines: dict[str, str] = {}
    for name, window in windows.items():
        version = version_of(name)
        if version is not None and window.contains(version) is False:
            lines[name] = f"{name} {version} is outside the tested window {window}"  # short: rich wraps at 80
    return lines


_warned: set[str] = set()


def warn_untested_versions() -> list[str]:
    """Log one warning line per runtime dependency outside its tested window, each at most once per process.

    Not an error: the code may well still work. Returns the lines this call logged."""
    lines = []
    for name, line in untested(RUNTIME, installed_version).items():
        if name not in _warned:
            _warned.add(name)
            logger.warning(line)
            lines.append(line)
    return lines


def versions_line(label: str, names: Iterable[str], version_of: Callable[[str], str | None] = installed_version) -> str:
    """`== label: torch 2.13.0, transformers 5.25.0, ...` for a CI log."""
    return f"== {label}: " + ", ".join(f"{name} {version_of(name) or 'not installed'}" for name in names)


def main(argv: list[str] | None = None) -> int:
    """Print the versions a CI leg tests as one line; exit 1 when a package is missing or outside its window (or,
    with --at-lower-bounds, is not its window's lower bound)."""
    parser = argparse.ArgumentParser(prog="python -m spatialvlm_cli.versions", description=main.__doc__)
    parser.add_argument("label", help="the CI leg, e.g. newest or oldest")
    parser.add_argument("--at-lower-bounds", action="store_true", help="require every version to be its lower bound")
    args = parser.parse_args(argv)
    windows = {**RUNTIME, **TEST}
    print(versions_line(args.label, windows, installed_version))
    problems = list(untested(windows, installed_version).values())
    for name, window in windows.items():
        version = installed_version(name)
        if version is None:
            problems.append(f"{name} is not installed")
        elif args.at_lower_bounds and not window.at_low(version):
            problems.append(f"{name} {version} is not the lower bound {window.low}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
