"""The package's layering: the CLI imports the library, never the reverse, and `spatialvlm --help` stays light."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import spatialvlm_cli

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
    assert not {"torch", "transformers", "open3d"} & loaded


def test_only_the_cli_environment_module_reads_environment_variables() -> None:
    from pathlib import Path

    package = Path(spatialvlm_cli.__file__).parent
    sources = {str(path.relative_to(package)): path.read_text(encoding="utf-8") for path in package.rglob("*.py")}
    readers = sorted(name for name, text in sources.items() if "os.environ" in text or "getenv(" in text)
    assert readers == ["cli/environment.py"]
