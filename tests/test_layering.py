"""The package's layering: the CLI imports the library, never the reverse, and `spatialvlm --help` stays light."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import spatialvlm_cli

PACKAGE = Path(spatialvlm_cli.__file__).parent
HEAVY = {"torch", "transformers", "open3d"}

# What `infer` imports to check its flags, plan the run and read its input before a model loads: a bad flag or
# input fails in a second. Heavy imports in these modules (Pillow included) stay inside the functions that need them.
FLAG_CHECK_MODULES = [
    "spatialvlm_cli.config",
    "spatialvlm_cli.generation",
    "spatialvlm_cli.io.model_source",
    "spatialvlm_cli.panorama.image",
    "spatialvlm_cli.panorama.pano_presets",
    "spatialvlm_cli.panorama.pipeline",
    "spatialvlm_cli.panorama.questions",
    "spatialvlm_cli.panorama.source",
    "spatialvlm_cli.pipeline",
    "spatialvlm_cli.presets",
    "spatialvlm_cli.runs",
]

LIBRARY_PACKAGES = sorted(
    f"spatialvlm_cli.{module.name}" for module in pkgutil.iter_modules(spatialvlm_cli.__path__)
    if module.name not in ("cli", "__main__"))


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return set(result.stdout.split())


def test_there_are_library_packages_to_check() -> None:
    assert {"spatialvlm_cli.pe", "spatialvlm_cli.model", "spatialvlm_cli.panorama", "spatialvlm_cli.check",
            "spatialvlm_cli.evaluation"} <= set(LIBRARY_PACKAGES)


def test_no_library_module_imports_the_cli() -> None:
    loaded = _modules_after("\n".join(f"import {name}" for name in LIBRARY_PACKAGES))
    assert set(LIBRARY_PACKAGES) <= loaded
    assert not {name for name in loaded if name == "spatialvlm_cli.cli" or name.startswith("spatialvlm_cli.cli.")}


def test_the_cli_entry_point_imports_no_heavy_package() -> None:
    loaded = _modules_after("import spatialvlm_cli.cli.app")
    assert "spatialvlm_cli.cli.app" in loaded
    assert not HEAVY & loaded


@pytest.mark.parametrize("module", FLAG_CHECK_MODULES)
def test_the_flag_checks_import_no_heavy_package(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert module in loaded
    assert not (HEAVY | {"PIL"}) & loaded


def _function_level_imports(path: Path) -> list[tuple[int, bool]]:
    """(line, has a comment saying why) of each import inside a function: a comment at the end of its line, on
    the line above, or above the run of imports it belongs to."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for function in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                row = node.lineno - 1
                while row > 0 and lines[row - 1].lstrip().startswith(("import ", "from ")):
                    row -= 1
                said = "#" in lines[node.lineno - 1] or lines[row - 1].lstrip().startswith("#")
                found.append((node.lineno, said))
    return found


def test_every_function_level_import_in_the_library_says_why() -> None:
    """Library imports sit at the top of their module; the few that cannot (a light module's heavy dependency)
    carry a comment saying why. The CLI's command bodies import lazily by design (cli/app.py)."""
    silent = [f"{path.relative_to(PACKAGE)}:{line}"
              for path in sorted(PACKAGE.rglob("*.py")) if path.relative_to(PACKAGE).parts[0] != "cli"
              for line, said in _function_level_imports(path) if not said]
    assert silent == []


def test_only_the_cli_environment_module_reads_environment_variables() -> None:
    sources = {str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}
    readers = sorted(name for name, text in sources.items() if "os.environ" in text or "getenv(" in text)
    assert readers == ["cli/environment.py"]
