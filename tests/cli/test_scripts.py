"""Scripts a user runs from the README fail the way commands do: one `error:` line on stderr, exit code 1."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pe_table_with_no_runs_is_one_line_and_exit_1(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: nothing to tabulate") and str(tmp_path) in lines[0]
