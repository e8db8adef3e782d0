"""What the terminal shows (issue 13): flag spellings, --version, help at 80 columns, one console for the streamed
text and the lines around it, the panorama's default output folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from spatialvlm_cli import __version__
from spatialvlm_cli.cli.app import app
from spatialvlm_cli.cli.console import Terminal
from spatialvlm_cli.cli.infer import DEFAULT_MODEL


def all_options():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        for param in command.params:
            if param.param_type_name == "option":
                yield name, [*param.opts, *param.secondary_opts]


@pytest.mark.parametrize(("command", "spellings"), list(all_options()), ids=lambda value: str(value)[:40])
def test_every_long_flag_has_its_kebab_and_snake_spelling(command: str, spellings: list[str]):
    for flag in (s for s in spellings if s.startswith("--")):
        name = flag[2:].lower()
        for twin in (name.replace("_", "-"), name.replace("-", "_")):
            assert f"--{twin}" in spellings, (command, flag, twin)


def test_kebab_spellings_reach_the_command(tmp_path: Path):
    result = CliRunner().invoke(app, ["infer", "--image", str(tmp_path / "missing.png"), "--no-global-view",
                                      "--vlm_pe", "PanoRoPE_1D"])
    assert result.exit_code == 1 and "does not exist" in result.stderr  # parsed: the error is about the image


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"spatialvlm {__version__}\n"


def test_infer_help_keeps_flag_names_whole_at_80_columns():
    result = CliRunner().invoke(app, ["infer", "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    for flag in ("--point_cloud, --point-cloud", "--PCD_PE_Merge_Rule, --pcd-pe-merge-rule, --pcd_pe_merge_rule",
                 "--max_new_tokens, --max-new-tokens", "--overwrite"):
        assert flag in result.stdout, flag
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_default_model_name_matches_the_library():
    from spatialvlm_cli.model import DEFAULT_MODEL as LIBRARY_DEFAULT

    assert DEFAULT_MODEL == LIBRARY_DEFAULT


def test_a_warning_closes_the_streamed_line_first(capsys):
    import logging

    from spatialvlm_cli.cli.app import _setup_logging

    terminal = Terminal()
    _setup_logging()
    import spatialvlm_cli.cli.console as console

    original = console.terminal
    console.terminal = terminal
    try:
        terminal.stream("wall_0=Wall(1,2")
        logging.getLogger("spatialvlm_cli.test").warning("careful")
        terminal.end_line()
        terminal.stream("text\n")
        terminal.end_line()
        terminal.stream("\x1b[2Jclear\rok\n")
        terminal.end_line()
    finally:
        console.terminal = original
    captured = capsys.readouterr()
    assert captured.out == "wall_0=Wall(1,2\ntext\n\n\ufffd[2Jclear\ufffdok\n\n"
    assert "careful" in captured.err


def test_panorama_output_goes_to_layouts_like_point_clouds(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pixels = (np.random.default_rng(0).random((64, 128, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "pano.png")
    args = ["infer", "--image", "pano.png", "-m", "tiny-internvl", "--greedy", "--max_new_tokens", "4",
            "--device", "cpu", "--views", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "layouts" / "pano.json").read_text())
    assert document["settings"]["seed"] == 0 and document["settings"]["max_new_tokens"] == 4
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "replacing an earlier run's file" in again.stderr
    (tmp_path / "layouts" / "pano.json").write_text("{}")
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "pass --overwrite" in refused.stderr
