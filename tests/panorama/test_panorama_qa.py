"""Many panoramas per `infer --image` run (a folder or a .jsonl of questions) and the loop the issue asks for:
the synthetic QA folder through `spatialvlm infer --image` then `spatialvlm eval --task vqa`, with the tiny
presets (random weights: accuracy at or below the chance level, which eval reports)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from spatialvlm_cli.cli.app import app as spatialvlm_app
from spatialvlm_cli.errors import InputError
from spatialvlm_cli.panorama.pipeline import DEFAULT_PROMPT
from spatialvlm_cli.panorama.questions import (
    answers_path_for,
    is_batch_source,
    read_questions,
    written_answers,
)
from spatialvlm_cli.synthetic.panorama_rooms import write_qa_set


@pytest.fixture(scope="module")
def qa_folder(tmp_path_factory) -> Path:
    """One random room (seed 1: one door, one window: three questions), 64 × 32 pixels."""
    folder = tmp_path_factory.mktemp("qa") / "qa"
    write_qa_set(folder, count=1, seed=1, width=64)
    return folder


def test_read_questions(qa_folder: Path, tmp_path: Path):
    questions = read_questions(qa_folder, None)
    assert [question.id for question in questions] == ["room_000/doors", "room_000/windows", "room_000/door_side"]
    assert questions[0].image == qa_folder / "room_000.png"
    assert read_questions(qa_folder / "questions.jsonl", None) == questions
    assert is_batch_source(qa_folder) and is_batch_source(qa_folder / "questions.jsonl")
    assert not is_batch_source(qa_folder / "room_000.png")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("b.jpg", "a.png"):
        Image.new("RGB", (64, 32)).save(images / name)
    (images / "notes.txt").write_text("not a panorama")
    plain = read_questions(images, None)
    assert [(question.image.name, question.question, question.id) for question in plain] == [
        ("a.png", DEFAULT_PROMPT, None), ("b.jpg", DEFAULT_PROMPT, None)]
    assert {question.question for question in read_questions(images, "How many doors?")} == {"How many doors?"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"image": "room_000.png"}\n', "a record needs an 'image' path and a non-empty 'question'"),
        ('{"image": "gone.png", "question": "q"}\n', "image '"),
        ("[1]\n", "a record must be a JSON object"),
        ("{\n", "not valid JSON"),
        ("\n", "holds no questions"),
    ],
)
def test_bad_questions_files(qa_folder: Path, tmp_path: Path, content: str, fragment: str):
    path = tmp_path / "q.jsonl"
    path.write_text(content)
    (tmp_path / "room_000.png").write_bytes((qa_folder / "room_000.png").read_bytes())
    with pytest.raises(InputError, match=fragment):
        read_questions(path, None)


def test_prompt_and_questions_file_conflict_and_empty_folders(qa_folder: Path, tmp_path: Path):
    with pytest.raises(InputError, match="--prompt is given but"):
        read_questions(qa_folder, "Describe it.")
    with pytest.raises(InputError, match=r"holds no questions\.jsonl and no \.png"):
        read_questions(tmp_path, None)
    with pytest.raises(InputError, match="does not exist"):
        read_questions(tmp_path / "nothing", None)


def test_answers_file_location_and_ownership(tmp_path: Path):
    assert answers_path_for(tmp_path / "out") == tmp_path / "out" / "answers.jsonl"
    assert answers_path_for(tmp_path / "mine.jsonl") == tmp_path / "mine.jsonl"
    ours = tmp_path / "ours.jsonl"
    ours.write_text(json.dumps({"image": "a", "question": "q", "text": "t", "model": "m", "vlm_pe": "None"}) + "\n")
    assert written_answers(ours)
    other = tmp_path / "other.jsonl"
    other.write_text('{"image": "a", "question": "q"}\n')
    assert not written_answers(other) and not written_answers(tmp_path / "none.jsonl")


def spatialvlm(args: list[str]):
    return CliRunner().invoke(spatialvlm_app, args)


def test_batch_errors_before_any_model_loads(qa_folder: Path, tmp_path: Path):
    result = spatialvlm(["infer", "--image", str(qa_folder), "-m", "tiny-internvl", "--prompt", "Describe it.",
                         "-o", str(tmp_path)])
    assert result.exit_code == 1 and "--prompt is given but" in result.stderr
    foreign = tmp_path / "answers.jsonl"
    foreign.write_text("mine\n")
    result = spatialvlm(["infer", "--image", str(qa_folder), "-m", "tiny-internvl", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "pass --overwrite" in result.stderr
    assert foreign.read_text() == "mine\n"


# preset -> --VLM_PE: every tiny panorama family, with its PanoRoPE variant (cora ids) or native ids.
TINY_RUNS = [("tiny-internvl", "PanoRoPE_1D"), ("tiny-gemma3", "None"), ("tiny-qwen2.5-vl", "PanoRoPE"),
             ("tiny-qwen3-vl", "None")]


@pytest.mark.parametrize(("preset", "vlm_pe"), TINY_RUNS)
def test_qa_folder_infer_then_eval_vqa(qa_folder: Path, tmp_path: Path, preset: str, vlm_pe: str):
    answers = tmp_path / "answers.jsonl"
    result = spatialvlm(["infer", "--image", str(qa_folder), "-m", preset, "--VLM_PE", vlm_pe, "--pano_mode", "cora",
                         "--greedy", "--max_new_tokens", "3", "--device", "cpu", "--dtype", "float32", "-o",
                         str(answers)])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.stderr and "[3/3] room_000.png: Facing the centre" in result.stderr
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [record["id"] for record in records] == ["room_000/doors", "room_000/windows", "room_000/door_side"]
    assert all(record["model"] == preset and record["num_new_tokens"] <= 3 for record in records)
    again = spatialvlm(["infer", "--image", str(qa_folder), "-m", preset, "--greedy", "--max_new_tokens", "1",
                        "--device", "cpu", "-o", str(answers)])
    assert again.exit_code == 0 and "replacing an earlier run's file" in again.stderr

    report = tmp_path / "vqa.json"
    scored = spatialvlm(["eval", "--task", "vqa", "--pred", str(answers), "--gt", str(qa_folder / "questions.jsonl"),
                         "--json", str(report)])
    assert scored.exit_code == 0, scored.output
    assert "chance level (a uniform guess among each question's options): 50.0" in scored.stderr
    data = json.loads(report.read_text())
    assert data["num_items"] == 3 and not data["missing_predictions"] and data["chance"] == 0.5
    # Random weights answer with noise: no better than guessing (three questions, two options each).
    assert data["corpus"]["normalised"] <= 2 / 3
