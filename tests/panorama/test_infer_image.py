"""`infer_image`: called directly with a `PanoramaRun`, through a small typer app of its own and through
`spatialvlm infer --image`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import huggingface_hub
import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import SpatialVLMGroup, _setup_logging
from spatialvlm_cli.cli.app import app as spatialvlm_app
from spatialvlm_cli.cli.infer_image import infer_image, output_path_for, panorama_request
from spatialvlm_cli.cli.options import IdOverlapOpt, PanoPresetOpt
from spatialvlm_cli.errors import ConfigError, InputError, ModelLoadError
from spatialvlm_cli.generation import GenerationSettings
from spatialvlm_cli.panorama.pipeline import PanoramaRequest, PanoramaRun

GREEDY = GenerationSettings(max_new_tokens=4, greedy=True)

mini_app = typer.Typer(cls=SpatialVLMGroup, pretty_exceptions_enable=False)


@mini_app.callback()
def _root() -> None:
    """A stand-in for the lead's `infer` command: the image flags only, logging set up like `spatialvlm`."""
    _setup_logging()


@mini_app.command()
def image(
    path: Annotated[Path, typer.Argument()],
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    vlm_pe: Annotated[str | None, typer.Option("--VLM_PE")] = None,
    pano_mode: Annotated[str, typer.Option("--pano_mode")] = "shared",
    prompt: Annotated[str | None, typer.Option("--prompt")] = None,
    views: Annotated[int, typer.Option("--views")] = 4,
    overlap: Annotated[float, typer.Option("--overlap")] = 0.2,
    fov: Annotated[float, typer.Option("--fov")] = 90.0,
    global_view: Annotated[bool, typer.Option("--global_view/--no_global_view")] = True,
    id_overlap: IdOverlapOpt = None,
    pano_preset: PanoPresetOpt = None,
) -> None:
    request = panorama_request({"prompt": prompt, "vlm_pe": vlm_pe, "views": views, "overlap": overlap, "fov": fov,
                                "global_view": global_view, "pano_mode": pano_mode, "id_overlap": id_overlap,
                                "pano_preset": pano_preset})
    infer_image(PanoramaRun(image=path, output=output, request=request, generation=GREEDY, model=model,
                            device="cpu", dtype="float32"))


@pytest.fixture(scope="module")
def pano_file(tmp_path_factory, synthetic_panorama) -> Path:
    path = tmp_path_factory.mktemp("pano") / "room.png"
    Image.fromarray(synthetic_panorama(160, 80)).save(path)
    return path


def run_infer_image(image: Path, output: Path, model: str | None, vlm_pe: str | None = None) -> None:
    """`infer_image` with the CLI's defaults, greedy, on CPU, for `model` and `vlm_pe`."""
    infer_image(PanoramaRun(image=image, output=output, request=PanoramaRequest(vlm_pe=vlm_pe), generation=GREEDY,
                            model=model, device="cpu", dtype="float32"))


def run_mini(args: list[str]):
    return CliRunner().invoke(mini_app, ["image", *args])


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_direct_call_streams_text_and_writes_the_json(pano_file: Path, tmp_path: Path, capsys):
    target = tmp_path / "answers" / "room.json"
    request = PanoramaRequest(prompt="What is on the left?", views=3, overlap=0.25, fov_deg=80.0, global_view=True,
                              vlm_pe="PanoRoPE_1D", pano_mode="shared")
    infer_image(PanoramaRun(image=pano_file, output=target, request=request, generation=GREEDY,
                            model="tiny-internvl", device="cpu", dtype="float32"))
    document = json.loads(target.read_text())
    assert capsys.readouterr().out == document["text"] + "\n"
    assert document["model"] == "tiny-internvl" and document["random_weights"] is True
    assert document["vlm_pe"] == "PanoRoPE_1D" and document["pano_mode"] == "shared"
    assert document["prompt"] == "What is on the left?" and document["num_new_tokens"] == 4
    views = document["views"]
    assert views["tiles"] == 3 and views["overlap"] == 0.25 and views["global_view"] is True
    assert [image["kind"] for image in views["images"]] == ["global", "tile", "tile", "tile"]
    assert [image.get("yaw_deg") for image in views["images"][1:]] == [0.0, 120.0, -120.0]
    positions = document["positions"]
    assert positions["collisions"] == 0 and len(positions["images"]) == 4
    tiles = positions["images"][1:]
    # Shared ids: tile k starts round(k · 0.75 · 4) ids after tile 0.
    assert [tile["min"] - tiles[0]["min"] for tile in tiles] == [0, 3, 6]
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def test_a_panollava_preset_end_to_end(pano_file: Path, tmp_path: Path):
    """--pano_preset panollava-internvl on the tiny InternVL (4 tokens per image): eight 45° square tiles at 672 px,
    the letter-boxed 336 px global view, and tile k's ids shifted by round(k · 0.5 · 4) = 2k; with --VLM_PE None
    the same tiles keep native ids (panollava's evaluation)."""
    target = tmp_path / "preset.json"
    result = run_mini([str(pano_file), "-o", str(target), "-m", "tiny-internvl", "--pano_preset",
                       "panollava-internvl", "--VLM_PE", "PanoRoPE_1D"])
    assert result.exit_code == 0, result.output
    assert "--pano_preset panollava-internvl" in result.stderr and "id overlap 0.5" in result.stderr
    document = json.loads(target.read_text())
    assert document["pano_preset"] == "panollava-internvl" and document["pano_mode"] == "cora"
    views = document["views"]
    assert (views["tiles"], views["overlap"], views["id_overlap"], views["convention"]) == (8, 0.0, 0.5, "panollava")
    assert views["images"][0] == {"kind": "global", "width": 336, "height": 336, "letterboxed": True}
    assert [image["yaw_deg"] for image in views["images"][1:]] == [0, 45, 90, 135, -180, -135, -90, -45]
    assert {(image["width"], image["hfov_deg"], image["vfov_deg"]) for image in views["images"][1:]} == {
        (672, 45.0, 45.0)}
    tiles = document["positions"]["images"][1:]
    assert [tile["min"] - tile["first_token"] for tile in tiles] == [2 * k for k in range(8)]
    native = tmp_path / "native.json"
    result = run_mini([str(pano_file), "-o", str(native), "-m", "tiny-internvl", "--pano_preset",
                       "panollava-internvl", "--VLM_PE", "None"])
    assert result.exit_code == 0, result.output
    tiles = json.loads(native.read_text())["positions"]["images"][1:]
    assert [tile["min"] - tile["first_token"] for tile in tiles] == [0] * 8


def test_the_infer_command_takes_the_preset_and_id_overlap(pano_file: Path, tmp_path: Path):
    """The same flags through `spatialvlm infer` itself (not the mini app): the preset's tiles and shifted ids."""
    from spatialvlm_cli.cli.app import app

    target = tmp_path / "cli.json"
    result = CliRunner().invoke(app, ["infer", "--image", str(pano_file), "-o", str(target), "-m", "tiny-internvl",
                                      "--pano_preset", "panollava-internvl", "--VLM_PE", "PanoRoPE_1D",
                                      "--max_new_tokens", "2"])
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text())
    assert document["pano_preset"] == "panollava-internvl" and document["views"]["tiles"] == 8
    tiles = document["positions"]["images"][1:]
    assert [tile["min"] - tile["first_token"] for tile in tiles] == [2 * k for k in range(8)]


def test_id_overlap_flag_end_to_end(pano_file: Path, tmp_path: Path):
    """--views 8 --overlap 0 --fov 45 --id_overlap 0.5: 45°-wide views (no shared columns) with ids at a T/2
    stride, i.e. panollava's ids on our tile conventions."""
    target = tmp_path / "ids.json"
    result = run_mini([str(pano_file), "-o", str(target), "-m", "tiny-internvl", "--VLM_PE", "PanoRoPE_1D",
                       "--pano_mode", "cora", "--views", "8", "--overlap", "0", "--fov", "45", "--id_overlap", "0.5"])
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text())
    assert document["views"]["hfov_deg"] == 45.0 and document["views"]["id_overlap"] == 0.5
    tiles = document["positions"]["images"][1:]
    assert [tile["min"] - tile["first_token"] for tile in tiles] == [2 * k for k in range(8)]


def test_mini_app_runs_qwen_with_cora_and_whole_panorama_gemma(pano_file: Path, tmp_path: Path):
    result = run_mini(
        [
            str(pano_file),
            "-o",
            str(tmp_path),
            "-m",
            "tiny-qwen3-vl",
            "--VLM_PE",
            "PanoRoPE",
            "--pano_mode",
            "cora",
            "--views",
            "6",
            "--overlap",
            "0.5",
        ]
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "room.json").read_text())
    assert document["model_type"] == "qwen3_vl" and document["positions"]["axes"] == 3
    tiles = document["positions"]["images"][1:]
    columns = tiles[0]["max"][2] - tiles[0]["min"][2] + 1
    assert columns > 1
    # cora: the w row of tile k moves by round(k · 0.5 · columns) merged columns; t and h stay native.
    assert [tile["min"][2] - tile["min"][1] for tile in tiles] == [round(k * 0.5 * columns) for k in range(6)]
    result = run_mini([str(pano_file), "-o", str(tmp_path / "whole.json"), "-m", "tiny-gemma3", "--views", "0"])
    assert result.exit_code == 0, result.output
    whole = json.loads((tmp_path / "whole.json").read_text())
    assert whole["vlm_pe"] == "None" and whole["pano_mode"] is None
    assert [image["kind"] for image in whole["views"]["images"]] == ["global"]
    assert whole["positions"]["images"][0]["min"] == whole["positions"]["images"][0]["first_token"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--views", "2"], "--views must be 0"),
        (["--overlap", "1.5"], "--overlap must be in [0, 1)"),
        (["--views", "4", "--overlap", "0.7"], "use more views or less overlap"),
        (["--fov", "179"], "--fov"),
        (["--pano_mode", "fancy"], "--pano_mode must be one of shared, cora"),
        (["--VLM_PE", "3D_RoPE"], "not a panorama encoding"),
        (["-m", "tiny-qwen2.5-vl", "--VLM_PE", "PanoRoPE_1D"], "use --VLM_PE PanoRoPE or None"),
        (["-m", "tiny-gemma3", "--VLM_PE", "PanoRoPE"], "use --VLM_PE PanoRoPE_1D or None"),
        (["-m", "tiny-internvl", "--VLM_PE", "PanoRoPE_1D", "--views", "0"], "needs perspective views"),
        (["-m", "no-such-model"], "not a checkpoint directory, panorama preset or hub id"),
        (["--prompt", "  "], "--prompt must not be empty"),
    ],
)
def test_bad_flags_fail_in_one_line_before_any_model_load(pano_file, tmp_path, args, fragment, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not be loaded for bad flags")

    monkeypatch.setattr("spatialvlm_cli.panorama.models._load", no_load)
    out = tmp_path / "out"
    assert_one_line_error(run_mini([str(pano_file), "-o", str(out), *args]), fragment)
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.jpg", "does not exist"),
        (lambda d: (d / "notes.jpg").write_text("hello") and d / "notes.jpg", "not an image Pillow can read"),
        (lambda d: Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(d / "t.png") or d / "t.png", "at least"),
    ],
)
def test_bad_images_fail_in_one_line(tmp_path, make, fragment):
    out = tmp_path / "out"
    assert_one_line_error(run_mini([str(make(tmp_path)), "-o", str(out), "-m", "tiny-internvl"]), fragment)
    assert not out.exists()


def test_non_2_to_1_image_warns_and_runs(tmp_path, synthetic_panorama):
    path = tmp_path / "square.png"
    Image.fromarray(synthetic_panorama(96, 96)).save(path)
    result = run_mini([str(path), "-o", str(tmp_path), "-m", "tiny-internvl", "--views", "3"])
    assert result.exit_code == 0, result.output
    assert "not 2:1" in result.stderr
    assert "not 2:1" in json.loads((tmp_path / "square.json").read_text())["warnings"][0]


def test_unwritable_output_fails_before_loading(pano_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run_mini([str(pano_file), "-o", str(blocker / "sub"), "-m", "tiny-internvl"]), "cannot")


def test_failed_generation_leaves_no_output(pano_file, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise InputError("generation exploded")

    monkeypatch.setattr("spatialvlm_cli.panorama.pipeline.stream_generate", broken)
    target = tmp_path / "new" / "x.json"
    result = run_mini([str(pano_file), "-o", str(target), "-m", "tiny-internvl"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: generation exploded")
    assert list(tmp_path.iterdir()) == []  # not even the output folder


def test_offline_hub_id_names_the_alternatives(pano_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError) as info:
        run_infer_image(pano_file, tmp_path, model="Qwen/Qwen2.5-VL-3B-Instruct")
    message = str(info.value)
    assert "offline" in message and "tiny-internvl" in message and "\n" not in message


def test_wrong_family_checkpoint_folder(tmp_path, pano_file):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(ModelLoadError, match="panorama inference supports internvl"):
        run_infer_image(pano_file, tmp_path, model=str(folder))
    with pytest.raises(ConfigError):
        run_infer_image(pano_file, tmp_path, model="tiny-gemma3", vlm_pe="PanoRoPE")


def test_output_path_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert output_path_for(Path("/data/pano.jpg"), None) == tmp_path / "pano.json"
    assert output_path_for(Path("pano.jpg"), Path("out/answer.JSON")) == Path("out/answer.JSON")
    assert output_path_for(Path("pano.jpg"), Path("out")) == Path("out/pano.json")


def test_through_the_spatialvlm_infer_command(pano_file, tmp_path):
    result = CliRunner().invoke(
        spatialvlm_app,
        [
            "infer",
            "--image",
            str(pano_file),
            "-o",
            str(tmp_path),
            "-m",
            "tiny-qwen2.5-vl",
            "--VLM_PE",
            "PanoRoPE",
            "--views",
            "3",
            "--greedy",
            "--max_new_tokens",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "room.json").read_text())
    assert document["vlm_pe"] == "PanoRoPE" and document["num_new_tokens"] == 3
    assert document["positions"]["collisions"] == 0
