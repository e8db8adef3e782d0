"""The `infer` command's shell (issue 14): its flags grouped under help headings, and the typed run it hands the
library, built from the command line merged with a YAML config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from spatialvlm_cli.cli import infer
from spatialvlm_cli.cli.app import SpatialVLMGroup
from spatialvlm_cli.cli.app import app as spatialvlm_app
from spatialvlm_cli.cli.options import PanelledCommand
from spatialvlm_cli.panorama.pipeline import DEFAULT_PROMPT, PanoramaRun
from spatialvlm_cli.pipeline import PointCloudRun

REPO = Path(__file__).resolve().parents[2]
ROOM = REPO / "scenes" / "room_000.ply"

HEADINGS = {
    "Point cloud": ["--point_cloud", "--detect_type", "--category", "--no_cleanup", "--align", "--up", "--units",
                    "--scale", "--crop"],
    "Panorama": ["--image", "--prompt", "--views", "--overlap", "--fov", "--global_view", "--pano_mode",
                 "--id_overlap", "--pano_preset"],
    "Model and PE": ["--model", "--VLM_PE", "--PCD_PE_Merge_Rule", "--pe_option", "--device", "--dtype",
                     "--attn_implementation", "--quantize"],
    "Generation": ["--temperature", "--top_p", "--top_k", "--num_beams", "--max_new_tokens", "--greedy", "--seed",
                   "--batch_size"],
    "Output": ["--output", "--overwrite", "--skip_existing"],
    "Options": ["--config", "--help"],
}


def panelled_help(width: int = 80) -> str:
    """`infer --help` with the command built as a `PanelledCommand`."""
    panelled = typer.Typer(cls=SpatialVLMGroup, rich_markup_mode=None, pretty_exceptions_enable=False)
    panelled.command(name="infer", cls=PanelledCommand)(infer.infer)
    panelled.command(name="other")(lambda: None)
    result = CliRunner().invoke(panelled, ["infer", "--help"], terminal_width=width, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_help_groups_every_flag_under_its_heading_in_order():
    text = panelled_help()
    sections: dict[str, list[str]] = {}
    heading = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":") and line[:-1] in HEADINGS:
            heading = line[:-1]
            sections[heading] = []
        elif heading is not None and line.lstrip().startswith("-"):
            flags = re.split(r"\s{2,}| <", line.strip())[0].replace("/", ",").split(",")
            sections[heading] += [flag.strip() for flag in flags if flag.strip().startswith("--")]
    assert list(sections) == list(HEADINGS)
    for name, flags in HEADINGS.items():
        assert set(flags) <= set(sections[name]), (name, sections[name])
    assert "[image]" not in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_help_without_headings_lists_every_flag_once():
    help_text = CliRunner().invoke(spatialvlm_app, ["infer", "--help"]).stdout
    command = typer.main.get_command(spatialvlm_app).commands["infer"]
    names = [param.opts[0] for param in command.params if param.param_type_name == "option"]
    assert sorted(names) == sorted(flag for flags in HEADINGS.values() for flag in flags if flag != "--help")
    assert all(name in help_text for name in names)


def captured_run(monkeypatch, args: list[str]) -> PointCloudRun | PanoramaRun:
    """The run `infer` hands on for `args` (the library call replaced by a recorder)."""
    seen: list[PointCloudRun | PanoramaRun] = []
    monkeypatch.setattr(infer, "_infer_point_clouds", lambda run, status: seen.append(run))
    monkeypatch.setattr("spatialvlm_cli.cli.infer_image.infer_image", seen.append)
    result = CliRunner().invoke(spatialvlm_app, ["infer", *args])
    assert result.exit_code == 0, result.output
    (run,) = seen
    return run


def test_point_cloud_flags_and_yaml_become_one_typed_run(monkeypatch, tmp_path: Path):
    config = tmp_path / "run.yaml"
    config.write_text("model: tiny-llama\nVLM_PE: 3D_RoPE\npe-option: [theta_3d=100]\ntop_k: 5\n"
                      "detect_type: object\ngreedy: true\n")
    run = captured_run(monkeypatch, ["-p", str(ROOM), "--config", str(config), "--top_k", "7", "-c", "bed",
                                     "-c", "sofa", "--no-cleanup", "--skip_existing"])
    assert isinstance(run, PointCloudRun)
    assert (run.point_cloud, run.output, run.model) == (ROOM, Path("layouts"), "tiny-llama")
    assert (run.vlm_pe, run.merge_rule, dict(run.pe_options)) == ("3D_RoPE", None, {"theta_3d": 100})
    assert (run.scene.detect_type, run.scene.categories, run.scene.clean) == ("object", ("bed", "sofa"), False)
    assert (run.scene.generation.top_k, run.scene.generation.greedy) == (7, True)  # the command line wins
    assert (run.skip_existing, run.overwrite, run.device, run.dtype) == (True, False, "auto", "auto")


def test_a_point_cloud_run_without_flags_keeps_the_defaults(monkeypatch):
    run = captured_run(monkeypatch, ["-p", str(ROOM)])
    assert isinstance(run, PointCloudRun)
    assert (run.model, run.vlm_pe, dict(run.pe_options)) == (infer.DEFAULT_MODEL, None, {})
    assert run.scene.generation.max_new_tokens == 4096 and run.scene.generation.seed == 0


@pytest.mark.parametrize(("vlm_pe", "expected"), [(None, None), ("none", None), ("PanoRoPE_1D", "PanoRoPE_1D")])
def test_panorama_flags_become_a_panorama_run(monkeypatch, tmp_path: Path, vlm_pe: str | None, expected):
    args = ["--image", str(tmp_path / "pano.png"), "-o", str(tmp_path / "a.json"), "--views", "6", "--overlap",
            "0.3", "--no_global_view", "--max-new-tokens", "8", "-m", "tiny-internvl", "--overwrite"]
    run = captured_run(monkeypatch, [*args, *(["--VLM_PE", vlm_pe] if vlm_pe else [])])
    assert isinstance(run, PanoramaRun)
    assert (run.image, run.output, run.model, run.overwrite) == (tmp_path / "pano.png", tmp_path / "a.json",
                                                                 "tiny-internvl", True)
    request = run.request
    assert (request.prompt, request.views, request.overlap, request.global_view) == (DEFAULT_PROMPT, 6, 0.3, False)
    assert request.vlm_pe == expected and len(request.layout.tiles) == 6
    assert run.generation.max_new_tokens == 8
