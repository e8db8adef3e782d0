"""Held-out evaluation during training: greedy layouts for a few held-out rooms, scored with the exact metric.

Every `eval_every` steps the trainer runs the model being trained through `infer_scene` (the inference path,
greedy) on the first `eval_rooms` rooms of a held-out folder (`.ply` + ground-truth `.txt`, as
`scripts/make_scenes.py --split heldout` writes them), scores them with `evaluate_folders(exact=True,
geometry=True)`, and appends one JSON line to `<run>/curve.jsonl`: step, F1@.25 per class (wall, door, window,
mean over the box classes), the median room-extent error (metres), whether the prompt is obeyed (the share of rooms
where `-d arch` still writes boxes, and where `-c bed -c sofa` writes another class) and the seconds it took. Those
lines are the held-out learning curve.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from spatialvlm_cli.evaluation import evaluate_folders
from spatialvlm_cli.generation import GenerationSettings
from spatialvlm_cli.model.loaded import LoadedModel
from spatialvlm_cli.pipeline import SceneSettings, infer_scene, write_scene_outputs
from spatialvlm_cli.preprocess import read_scan
from spatialvlm_cli.training.data import LayoutExample, PromptMix
from spatialvlm_cli.training.loss import IGNORE_INDEX

log = logging.getLogger(__name__)

CURVE_FILE = "curve.jsonl"
OBEDIENCE_CATEGORIES = ("bed", "sofa")  # the category prompt of the obedience check (two generator classes)


def heldout_rooms(folder: Path, count: int) -> list[Path]:
    """The first `count` `.ply` files of `folder` (sorted) that have a ground-truth `.txt` beside them."""
    rooms = [p for p in sorted(Path(folder).glob("*.ply")) if p.with_suffix(".txt").is_file()]
    return rooms[:count]


def evaluate_heldout(loaded: LoadedModel, rooms: list[Path], out: Path, max_new_tokens: int = 1200) -> dict[str, Any]:
    """Greedy layouts for `rooms` into out/pred, scored against their .txt into a dict (F1 x100, metres).

    loaded: a `LoadedModel` (model in eval mode). Returns {"wall", "door", "window", "boxes": F1@.25 x100 or None,
    "extent_median_m": median room-extent error, "wall_error_median_m": median wall OSPA error, "arch_with_boxes" and
    "categories_other": shares of rooms whose `-d arch` answer has boxes, whose `-c bed -c sofa` answer has another
    class, as the model wrote them (`SceneResult.outside_request`; 0 for a model that obeys the prompt), "rooms": n}."""
    pred, gt = out / "pred", out / "gt"
    for folder in (pred, gt):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    settings = SceneSettings(generation=GenerationSettings(greedy=True, max_new_tokens=max_new_tokens))
    arch = SceneSettings(detect_type="arch", generation=settings.generation)
    categories = SceneSettings(categories=OBEDIENCE_CATEGORIES, generation=settings.generation)
    arch_with_boxes = categories_other = 0
    with torch.no_grad():
        for room in rooms:
            scan = read_scan(room, settings.scan)  # read once for the three requests
            result = infer_scene(loaded, room, settings, scan=scan)
            write_scene_outputs(result, pred / f"{room.stem}.txt", pred / f"{room.stem}.json", {"model": "training"})
            shutil.copy(room.with_suffix(".txt"), gt / f"{room.stem}.txt")
            arch_with_boxes += infer_scene(loaded, room, arch, scan=scan).outside_request > 0
            categories_other += infer_scene(loaded, room, categories, scan=scan).outside_request > 0
    report = evaluate_folders(pred, gt, exact=True, geometry=True)
    geometry = report.geometry

    def percent(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 1)

    return {
        **{name: percent(report.f1(name, 0.25)) for name in ("wall", "door", "window")},
        "boxes": percent(report.group_mean("objects", 0.25)),
        "extent_median_m": None if geometry is None else geometry.summary("extent").median,
        "wall_error_median_m": None if geometry is None else geometry.summary("wall").median,
        "arch_with_boxes": arch_with_boxes / max(1, len(rooms)),
        "categories_other": categories_other / max(1, len(rooms)),
        "rooms": len(rooms),
    }


def answer_loss(loaded: LoadedModel, examples: list[LayoutExample]) -> float:
    """Teacher-forced cross-entropy of the answers (request 'all'), nats per answer token averaged over the
    examples, model in eval mode: comparable between any two models that share a tokenizer."""
    mix = PromptMix(loaded.processor)
    model = loaded.model
    was_training = model.training
    model.eval()
    losses = []
    try:
        with torch.no_grad():
            for example in examples:
                batch = mix.collate([example])
                length = batch["target_length"]
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               point_clouds=batch["point_clouds"], logits_to_keep=length + 1).logits[0, :-1]
                labels = batch["labels"][0, -length:]
                losses.append(torch.nn.functional.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX))
    finally:
        model.train(was_training)
    return float(torch.stack(losses).mean())


def log_heldout(loaded: LoadedModel, rooms: list[Path], run: Path, step: int) -> dict[str, Any]:
    """Evaluate (model switched to eval mode and back to train mode) and append the result to run/curve.jsonl."""
    model = loaded.model
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        scores = evaluate_heldout(loaded, rooms, run / "heldout-eval")
    finally:
        model.train(was_training)
    entry = {"step": step, **scores, "seconds": round(time.perf_counter() - started, 1)}
    with (run / CURVE_FILE).open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    log.info("held-out at step %d: %s", step, entry)
    return entry
