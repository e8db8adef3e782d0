"""`eval --task caption|vqa`: panorama answers against references, per item and over the corpus (metrics: text.py).

Inputs (each a .jsonl file, a .json file holding one record or a list of them, or a folder of such files):
- predictions: records with the answer in `text` (what `infer --image` writes), `answer` or `prediction`;
- references: records with `answers` or `references` (a list of strings) or `answer` (one string), and optionally
  `options` (the answers a question allows, e.g. ["left", "right"]): when every reference has options, the report
  gives the chance level, the mean over items of 1 / len(options) (a uniform guess among them).
A reference is matched to the prediction with the same `id`, otherwise to the one prediction with the same image
file stem and question (`question`, or `prompt` as `infer --image` writes it; a reference without a question takes
the one prediction for its image, whatever it asked). A reference without a prediction is scored as an empty
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
    references = _read(gt, "references", _reference_texts)
    predictions = _read(pred, "predictions", _prediction_text)
    matched = _match(references, predictions)
    if not matched:
        raise InputError(f"no prediction in '{pred}' matches a reference in '{gt}' (a reference key: "
                         f"'{references[0].key}'; records match by 'id', or by image file stem and question)")
    items = [TextItem(key=ref.key, prediction=matched[ref.key].value if ref.key in matched else "",
                      references=ref.value, question=ref.question, image=ref.record.get("image"),
                      missing_prediction=ref.key not in matched) for ref in references]
    score = caption_scores if task == "caption" else vqa_scores
    scores = score([item.prediction for item in items], [item.references for item in items])
    options = [_options(ref.record, ref.key) for ref in references]
    chance = None if None in options else sum(1 / len(choices) for choices in options) / len(options)
    used = {id(found) for found in matched.values()}
    return TextReport(task=task, items=items, scores=scores, chance=chance,
                      unmatched_predictions=[found.key for found in predictions if id(found) not in used])


@dataclass(frozen=True)
class _Record:
    """One input record. key: its id, else '<image stem>|<question>' (the stem alone without a question).
    value: the prediction text or the reference texts."""

    key: str
    id: str | None
    stem: str | None
    question: str | None
    value: Any
    record: dict[str, Any]


def _match(references: list[_Record], predictions: list[_Record]) -> dict[str, _Record]:
    """Reference key -> its prediction: the same id when both have one, else the one prediction of the same image
    stem and question (any question when the reference has none); ambiguous or used candidates do not match."""
    by_id = {found.id: found for found in predictions if found.id is not None}
    by_image: dict[tuple[str | None, str | None], list[_Record]] = {}
    for found in predictions:
        by_image.setdefault((found.stem, found.question), []).append(found)
        if found.question is not None:  # a reference without a question takes any question's answer
            by_image.setdefault((found.stem, None), []).append(found)
    matched: dict[str, _Record] = {}
    used: set[int] = set()
    for ref in references:
        if ref.id is not None and ref.id in by_id:
            candidates = [by_id[ref.id]]
        else:
            candidates = by_image.get((ref.stem, ref.question), []) if ref.stem is not None else []
        if len(candidates) == 1 and id(candidates[0]) not in used:
            matched[ref.key] = candidates[0]
            used.add(id(candidates[0]))
    return matched


def _options(record: dict[str, Any], key: str) -> list[str] | None:
    """A reference's `options` (InputError unless a non-empty list of strings), None without."""
    options = record.get("options")
    if options is None:
        return None
    if not isinstance(options, list) or not options or not all(isinstance(option, str) for option in options):
        raise InputError(f"reference '{key}': 'options' must be a non-empty list of strings")
    return options


def _read(path: Path, what: str, value: Any) -> list[_Record]:
    """Every record under `path` with value(record, where); InputError on a repeated key or no record."""
    found: dict[str, _Record] = {}
    for where, record in _records(Path(path), what):
        identity = None if record.get("id") is None else str(record["id"])
        image = record.get("image")
        if identity is None and (not isinstance(image, str) or not image):
            raise InputError(f"{where}: a record needs an 'id' or an 'image'")
        stem = Path(image).stem if isinstance(image, str) and image else None
        question = _question(record)
        question = None if question is None else question.strip()
        key = identity or (stem if question is None else f"{stem}|{question}")
        if key in found:
            raise InputError(f"{where}: a second {what[:-1]} for '{key}'")
        found[key] = _Record(key, identity, stem, question, value(record, where), record)
    if not found:
        raise InputError(f"no {what} in '{path}'")
    return list(found.values())


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
