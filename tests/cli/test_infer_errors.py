"""`infer` input errors: one line on stderr, exit 1, no traceback, no output file. None of these needs a model."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app


def run(args: list[str]):
    return CliRunner().invoke(app, args)


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.output


def test_neither_or_both_inputs(tmp_path: Path):
    assert_one_line_error(run(["infer", "--greedy"]), "exactly one of --point_cloud or --image")
    assert_one_line_error(
        run(["infer", "-p", str(tmp_path), "--image", str(tmp_path / "x.jpg")]), "exactly one of"
    )


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda d: d / "missing.ply", "does not exist"),
        (lambda d: d, "contains no .ply files"),
        (lambda d: (d / "fake.ply").write_text("hello\n") and d / "fake.ply", "not a PLY file"),
    ],
)
def test_bad_point_cloud_inputs(tmp_path: Path, setup, fragment: str):
    target = setup(tmp_path)
    out = tmp_path / "out"
    assert_one_line_error(run(["infer", "-p", str(target), "-o", str(out)]), fragment)
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_output(tmp_path: Path, make_ply):
    ply = make_ply("a.ply", [[0, 0, 0], [1, 1, 1]])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run(["infer", "-p", str(ply), "-o", str(blocker / "sub")]), "cannot create output folder")


def test_output_file_for_a_folder_of_scenes(tmp_path: Path, make_ply):
    make_ply("a.ply", [[0, 0, 0]])
    make_ply("b.ply", [[0, 0, 0]])
    assert_one_line_error(run(["infer", "-p", str(tmp_path), "-o", str(tmp_path / "x.txt")]), "pass a folder")


def test_bad_yaml_config(tmp_path: Path, make_ply):
    ply = make_ply("a.ply", [[0, 0, 0]])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("VLM_PE: [unclosed\n")
    assert_one_line_error(run(["infer", "-p", str(ply), "--config", str(cfg)]), "not valid YAML")


def test_bad_sampling_flag(tmp_path: Path, make_ply):
    ply = make_ply("a.ply", [[0, 0, 0]])
    assert_one_line_error(run(["infer", "-p", str(ply), "--temperature", "0"]), "--temperature must be a number > 0")
