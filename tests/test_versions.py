"""Tested version windows: one source of truth with pyproject.toml and ci/oldest.txt, and one warning line outside."""

from __future__ import annotations

import importlib
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spatialvlm_cli import versions
from spatialvlm_cli.versions import EXTRAS, RUNTIME, TEST, Window

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> tuple[list[str], dict[str, list[str]]]:
    """pyproject's runtime dependencies and its extras, as written."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def test_windows_equal_pyproject_ranges():
    runtime, extras = _declared()
    assert runtime == [f"{name}{window}" for name, window in RUNTIME.items()]
    assert extras["test"] == [f"{name}{window}" for name, window in TEST.items()]
    for extra, windows in EXTRAS.items():
        assert extras[extra] == [f"{name}{window}" for name, window in windows.items()]
    assert set(extras) == {"test", "spconv", *EXTRAS}  # spconv: a GPU-only extra, not tested (see the README)


def test_oldest_constraints_pin_every_lower_bound():
    pins = {}
    for line in (ROOT / "ci" / "oldest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
            pins[name.lower()] = version
    windows = {**RUNTIME, **TEST}
    assert set(windows) <= set(pins), "ci/oldest.txt must pin every declared package"
    for name, window in windows.items():
        assert window.at_low(pins[name]), f"ci/oldest.txt pins {name}=={pins[name]}, the lower bound is {window.low}"


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("5.23.0", True),
        ("5.23", True),
        ("5.25.3", True),
        ("5.24.0rc1", True),
        ("5.23.0.post1", True),
        ("5.22.9", False),
        ("5.23.0rc1", False),  # a pre-release of the lower bound comes before it
        ("5.26.0", False),
        ("5.26.0.dev0", False),  # `<5.26` excludes 5.26's pre-releases as pip does
        ("6.0.0", False),
        ("not a version", None),
    ],
)
def test_window_reads_versions_as_pip_does(version: str, inside: bool | None):
    assert Window("5.23", "5.26").contains(version) is inside


def test_local_version_labels_are_ignored():
    assert Window("2.13", "2.14").contains("2.13.0+cpu")
    assert Window("2.13", "2.14").at_low("2.13.0+cpu")
    assert not Window("2.13", "2.14").at_low("2.13.1")


def _fake_versions(monkeypatch: pytest.MonkeyPatch, **overrides: str | None) -> None:
    """Every runtime dependency at its lower bound except `overrides`; nothing warned yet in this process."""
    found = {name: window.low for name, window in RUNTIME.items()} | overrides
    monkeypatch.setattr(versions, "installed_version", found.get)
    monkeypatch.setattr(versions, "_warned", set())


def test_one_warning_line_outside_the_window(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    _fake_versions(monkeypatch, transformers="5.26.0")
    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli.versions"):
        lines = versions.warn_untested_versions()
    expected = "transformers 5.26.0 is outside the tested window >=5.23,<5.26"
    assert lines == [expected]
    assert [record.getMessage() for record in caplog.records] == [expected]
    assert caplog.records[0].levelno == logging.WARNING and caplog.records[0].exc_info is None
    assert "\n" not in expected


def test_each_package_warns_once_per_process(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    _fake_versions(monkeypatch, torch="2.14.1", numpy="1.23.5")
    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli.versions"):
        first = versions.warn_untested_versions()
        again = versions.warn_untested_versions()
    assert first == [
        "torch 2.14.1 is outside the tested window >=2.13,<2.14",
        "numpy 1.23.5 is outside the tested window >=1.24,<2.5",
    ]
    assert again == []
    assert len(caplog.records) == 2


def test_no_warning_inside_the_window(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    _fake_versions(monkeypatch, torch="2.13.0+cpu", transformers="5.25.0", open3d=None)  # open3d not installed
    with caplog.at_level(logging.DEBUG, logger="spatialvlm_cli.versions"):
        assert versions.warn_untested_versions() == []
    assert caplog.records == []


@pytest.mark.parametrize("package", ["spatialvlm_cli.model", "spatialvlm_cli.panorama"])
def test_importing_a_model_path_warns(package: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    _fake_versions(monkeypatch, transformers="9.0.0")
    with caplog.at_level(logging.WARNING, logger="spatialvlm_cli.versions"):
        if package in sys.modules:
            importlib.reload(sys.modules[package])
        else:
            importlib.import_module(package)
    assert [record.getMessage() for record in caplog.records] == [
        "transformers 9.0.0 is outside the tested window >=5.23,<5.26"
    ]


def test_the_warning_is_one_line_on_stderr_without_logging_set_up():
    """A library user who configured no logging sees the line alone: no traceback, no logger prefix."""
    code = (
        "import spatialvlm_cli.versions as v\n"
        "v.installed_version = lambda name: '9.0.0' if name == 'transformers' else None\n"
        "import spatialvlm_cli.panorama\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["transformers 9.0.0 is outside the tested window >=5.23,<5.26"]


def test_the_cli_shows_the_warning_on_one_line_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """The CLI logs through rich, which wraps at the console width (80 when stderr is not a terminal); a git install
    of transformers (x.y.0.dev0) or a CUDA torch must still fit."""
    from spatialvlm_cli.cli.app import _setup_logging

    _fake_versions(monkeypatch, transformers="5.26.0.dev0", torch="2.14.1+cu128")
    monkeypatch.setenv("COLUMNS", "80")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        _setup_logging()
        capsys.readouterr()
        versions.warn_untested_versions()
        err = capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    assert [line.split() for line in err.splitlines()] == [
        ["WARNING", "torch", "2.14.1+cu128", "is", "outside", "the", "tested", "window", ">=2.13,<2.14"],
        ["WARNING", "transformers", "5.26.0.dev0", "is", "outside", "the", "tested", "window", ">=5.23,<5.26"],
    ]


def test_versions_line_for_ci(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    found = {name: window.low for name, window in {**RUNTIME, **TEST}.items()}
    monkeypatch.setattr(versions, "installed_version", found.get)
    assert versions.main(["oldest", "--at-lower-bounds"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== oldest: torch 2.13, transformers 5.23, ") and out.count("\n") == 1
    found["transformers"] = "5.25.0"
    assert versions.main(["newest"]) == 0
    assert versions.main(["oldest", "--at-lower-bounds"]) == 1
    assert "transformers 5.25.0 is not the lower bound 5.23" in capsys.readouterr().err
    found["ruff"] = None
    assert versions.main(["newest"]) == 1
    assert "ruff is not installed" in capsys.readouterr().err
