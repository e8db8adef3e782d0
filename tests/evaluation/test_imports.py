"""layout/ and evaluation/ stay light: importing them (and the eval/plot commands) loads no torch or open3d."""

from __future__ import annotations

import subprocess
import sys


def test_no_heavy_imports():
    code = (
        "import sys; import spatialvlm_cli.layout, spatialvlm_cli.layout.floorplan, spatialvlm_cli.evaluation, "
        "spatialvlm_cli.cli.eval, spatialvlm_cli.cli.plot; "
        "print(sorted(m for m in ('torch', 'transformers', 'open3d', 'PIL', 'shapely') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
