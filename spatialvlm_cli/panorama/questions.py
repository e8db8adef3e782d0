"""Many panoramas in one `infer --image` run: the questions to ask (read and checked without loading a model) and
the answers file `eval --task vqa|caption` reads. No torch, no Pillow.

`--image` may be
- a .jsonl file of `{"image": ..., "question": ...}` records (optional `id`; other keys such as `answer` are
  ignored, so a QA set's questions.jsonl is both the questions and the references); image paths are relative to
  the file's folder unless absolute;
- a folder holding `questions.jsonl` (read as above);
- a folder of .png / .jpg / .jpeg panoramas (sorted by name), each asked `--prompt`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.panorama.pipeline import DEFAULT_PROMPT

QUESTIONS_FILE = "questions.jsonl"
ANSWERS_FILE = "answers.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# The keys of every answer record `infer --image` writes (what `written_answers` recognises).
ANSWER_KEYS = frozenset({"image", "question", "text", "model", "vlm_pe"})


@dataclass(frozen=True)
class PanoramaQuestion:
    """image: the panorama file. question: the prompt. id: the record's id, or None (eval then matches by image
    stem and question)."""

    image: Path
    question: str
    id: str | None = None


def is_batch_source(path: Path) -> bool:
    """True when `--image path` names many panoramas (a folder or a .jsonl file) rather than one image."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() == ".jsonl"


def read_questions(source: Path, prompt: str | None) -> list[PanoramaQuestion]:
    """The questions of a batch source (module docstring). prompt: `--prompt` as given, None when left out: the
    question for a folder of images (None: DEFAULT_PROMPT); it must be None when the source has a questions file
    (InputError otherwise: which question to ask would be ambiguous). InputError for a missing source, a malformed
    record, a missing image or nothing to ask."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"'{source}' does not exist")
    questions_file = source / QUESTIONS_FILE if source.is_dir() else source
    if questions_file.is_file():
        if prompt is not None:
            raise InputError(f"--prompt is given but '{questions_file}' holds the questions; drop one of them")
        questions = _read_questions_file(questions_file)
    else:
        images = sorted(child for child in source.iterdir() if child.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"folder '{source}' holds no {QUESTIONS_FILE} and no .png / .jpg panoramas")
        questions = [PanoramaQuestion(image=image, question=prompt or DEFAULT_PROMPT) for image in images]
    if not questions:
        raise InputError(f"'{questions_file}' holds no questions")
    return questions


def _read_questions_file(path: Path) -> list[PanoramaQuestion]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read '{path}': {error}") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record: Any = json.loads(line)
        except ValueError as error:
            raise InputError(f"{where}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise InputError(f"{where}: a record must be a JSON object")
        image, question = record.get("image"), record.get("question", record.get("prompt"))
        if not isinstance(image, str) or not image or not isinstance(question, str) or not question.strip():
            raise InputError(f"{where}: a record needs an 'image' path and a non-empty 'question'")
        image_path = Path(image) if Path(image).is_absolute() else path.parent / image
        if not image_path.is_file():
            raise InputError(f"{where}: image '{image_path}' does not exist")
        questions.append(PanoramaQuestion(image=image_path, question=question,
                                          id=None if record.get("id") is None else str(record["id"])))
    return questions


def answers_path_for(output: Path | None) -> Path:
    """Where a batch run's answers go: `output` itself when it ends in .jsonl, else `output/answers.jsonl`
    (the working folder's when None)."""
    if output is None:
        return Path.cwd() / ANSWERS_FILE
    output = Path(output)
    return output if output.suffix.lower() == ".jsonl" else output / ANSWERS_FILE


def written_answers(path: Path) -> bool:
    """True when `path` is an answers file `infer --image` wrote: every line a record with ANSWER_KEYS."""
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return bool(records) and all(isinstance(record, dict) and record.keys() >= ANSWER_KEYS for record in records)
