"""`eval --task caption|vqa`: panorama answers against references, per item and over the corpus (metrics: text.py).

Inputs (each a .jsonl file, a .json file holding one record or a list of them, or a folder of such files):
- predictions: records with the answer in `text` (what `infer --image` writes), `answer` or `prediction`;
- references: records with `answers` or `references` (a list of strings) or `answer` (one string), and optionally
  `options` (the answers a question allows, e.g. ["left", "right"]): when every reference has options, the report
  gives the chance level, the mean over items of 1 / len(options) (a uniform guess among them).
A record is matched by `id` when both sides have one, otherwise by its image's file stem plus its question
(`question`, or `prompt` as `infer --image` writes it). A reference without a prediction is scored as an empty
answer (and listed); a prediction without a reference cannot be scored (listed, left out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.evaluation.text import CAPTION_METRICS, VQA_METRICS, MetricScores, caption_scores, vqa_scores

TASKS = ("caption", "vqa")
PREDICTION_FIELDS = ("text", "answer", "prediction")
REFERENCE_LIST_FIELDS = ("answers", "references")
# Keys of a report this module writes (`eval --json` recognises its own files by them).
REPORT_KEYS = frozenset({"task", "metrics", "corpus", "items"})


@dataclass(frozen=True)
class TextItem:
    """One scored item. key: how prediction and reference were matched. prediction: '' when missing."""

    key: str
    prediction: str
    references: tuple[str, ...]
    question: str | None = None
    image: str | None = None
    missing_prediction: bool = False


@dataclass
class TextReport:
    """task: 'caption' | 'vqa'. items: in reference order. scores: metric -> corpus and per-item scores.
    unmatched_predictions: keys of predictions with no reference (not scored). chance: the accuracy of a uniform
    guess among each question's options, when every reference lists them; else None."""

    task: str
    items: list[TextItem]
    scores: dict[str, MetricScores]
    unmatched_predictions: list[str] = field(default_factory=list)
    chance: float | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return CAPTION_METRICS if self.task == "caption" else VQA_METRICS

    @property
    def missing_predictions(self) -> list[str]:
        return [item.key for item in self.items if item.missing_prediction]

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metrics": list(self.metrics),
            "corpus": {name: self.scores[name].corpus for name in self.metrics},
            "num_items": len(self.items),
            "chance": self.chance,
            "missing_predictions": self.missing_predictions,
            "unmatched_predictions": self.unmatched_predictions,
            "items": [
                {"key": item.key, "image": item.image, "question": item.question, "prediction": item.prediction,
                 "references": list(item.references), "missing_prediction": item.missing_prediction,
                 "scores": {name: self.scores[name].items[index] for name in self.metrics}}
                for index, item in enumerate(self.items)
            ],
        }


def evaluate_answers(pred: Path, gt: Path, task: str) -> TextReport:
    """Score the predictions under `pred` against the references under `gt` (module docstring).

    Raises InputError with one line for a missing path, a malformed record, duplicate keys or no prediction that
    matches any reference."""
    if task not in TASKS:
        raise InputError(f"--task for answers must be one of {', '.join(TASKS)}, got '{task}'")
    references = _keyed(gt, "references", _reference_texts)
    predictions = _keyed(pred, "predictions", _prediction_text)
    if not set(predictions) & set(references):
        example = next(iter(references))
        raise InputError(f"no prediction in '{pred}' matches a reference in '{gt}' (a reference key: '{example}'; "
                         "records match by 'id', or by image file stem and question)")
    items = []
    for key, (texts, record) in references.items():
        found = predictions.get(key)
        items.append(TextItem(key=key, prediction=found[0] if found else "", references=texts,
                              question=_question(record), image=record.get("image"), missing_prediction=not found))
    score = caption_scores if task == "caption" else vqa_scores
    scores = score([item.prediction for item in items], [item.references for item in items])
    options = [_options(record, key) for key, (_, record) in references.items()]
    chance = None if None in options else sum(1 / len(choices) for choices in options) / len(options)
    return TextReport(task=task, items=items, scores=scores,
                      unmatched_predictions=[key for key in predictions if key not in references], chance=chance)


def _options(record: dict[str, Any], key: str) -> list[str] | None:
    """A reference's `options` (InputError unless a non-empty list of strings), None without."""
    options = record.get("options")
    if options is None:
        return None
    if not isinstance(options, list) or not options or not all(isinstance(option, str) for option in options):
        raise InputError(f"reference '{key}': 'options' must be a non-empty list of strings")
    return options


def _keyed(path: Path, what: str, value: Any) -> dict[str, tuple[Any, dict[str, Any]]]:
    """key -> (value(record, where), record) for every record under `path`; InputError on duplicates."""
    keyed: dict[str, tuple[Any, dict[str, Any]]] = {}
    for where, record in _records(Path(path), what):
        key = record_key(record, where)
        if key in keyed:
            raise InputError(f"{where}: a second {what[:-1]} for '{key}'")
        keyed[key] = (value(record, where), record)
    if not keyed:
        raise InputError(f"no {what} in '{path}'")
    return keyed


def record_key(record: dict[str, Any], where: str) -> str:
    """`id` (as text) when present, else '<image stem>|<question>' (or the stem alone without a question)."""
    if record.get("id") is not None:
        return str(record["id"])
    image = record.get("image")
    if not isinstance(image, str) or not image:
        raise InputError(f"{where}: a record needs an 'id' or an 'image'")
    question = _question(record)
    stem = Path(image).stem
    return stem if question is None else f"{stem}|{question.strip()}"


def _question(record: dict[str, Any]) -> str | None:
    question = record.get("question", record.get("prompt"))
    return question if isinstance(question, str) else None


def _prediction_text(record: dict[str, Any], where: str) -> str:
    for name in PREDICTION_FIELDS:
        if isinstance(record.get(name), str):
            return record[name]
    raise InputError(f"{where}: a prediction needs a string in one of {', '.join(PREDICTION_FIELDS)}")


def _reference_texts(record: dict[str, Any], where: str) -> tuple[str, ...]:
    for name in REFERENCE_LIST_FIELDS:
        if name in record:
            texts = record[name]
            if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
                raise InputError(f"{where}: '{name}' must be a non-empty list of strings")
            return tuple(texts)
    if isinstance(record.get("answer"), str):
        return (record["answer"],)
    raise InputError(f"{where}: a reference needs 'answers' or 'references' (a list) or 'answer' (a string)")


def _records(path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) for every record of a .jsonl / .json file or of the .jsonl / .json files of a folder
    (sorted by name); `where` names file and line for messages."""
    if not path.exists():
        raise InputError(f"{what} '{path}' do not exist")
    if path.is_dir():
        files = sorted(child for child in path.iterdir() if child.suffix in (".json", ".jsonl") and child.is_file())
        if not files:
            raise InputError(f"folder '{path}' holds no .json or .jsonl {what}")
    elif path.suffix in (".json", ".jsonl"):
        files = [path]
    else:
        raise InputError(f"{what} '{path}' must be a .jsonl or .json file or a folder of them")
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read '{file}': {error}") from None
        if file.suffix == ".jsonl":
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    where = f"{file}:{number}"
                    yield where, _checked_record(_parse(line, where), where)
        else:
            document = _parse(text, str(file))
            for index, record in enumerate(document if isinstance(document, list) else [document]):
                where = f"{file}[{index}]" if isinstance(document, list) else str(file)
                yield where, _checked_record(record, where)


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise InputError(f"{where}: not valid JSON ({error})") from None


def _checked_record(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InputError(f"{where}: a record must be a JSON object, not {type(record).__name__}")
    return record
