"""Where do a room model's boxes get lost: in the point tokens, or between them and the written layout?

    python -m spatialvlm_cli.training.box_report --run runs/x --rooms 20          # do the tokens hold the boxes?
    python -m spatialvlm_cli.training.box_report --pred out/x/pred --gt data/heldout   # where the written boxes land

* tokens (`--run`, a run folder of `spatialvlm train` with the dense loss): the run's dense head (from its
  resume.pt) reads every point token of the first held-out rooms as the first decoder layer sees it; the average
  precision of its occupancy score per class (wall, door, window, each box class, and "any box") says how well the
  tokens tell what their 80 cm cell holds. The share of tokens holding the class is the AP of a random score.
* placement (`--pred`, `--gt`: layout files of one name): for every ground-truth box, the written box with the
  nearest centre (any class): the median distance in metres, the share within 0.3 and 0.6 m, and the share whose
  class is right; with the classes written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spatialvlm_cli.layout import parse_layout
from spatialvlm_cli.training.data import PromptMix
from spatialvlm_cli.training.dense import DENSE_CLASSES
from spatialvlm_cli.training.diagnose import heldout_examples
from spatialvlm_cli.training.model import load_for_training
from spatialvlm_cli.training.objective import Objective
from spatialvlm_cli.training.settings import TrainSettings
from spatialvlm_cli.training.trainer import CHECKPOINT_FILE

BOX_CLASSES = DENSE_CLASSES[3:]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of `scores` (N,) ranking the positives of `labels` (N,) 0/1: the mean, over positives, of
    the precision among the items ranked at or above each one. 0 when there is no positive."""
    hits = labels[np.argsort(-scores, kind="stable")].astype(np.float64)
    if not hits.sum():
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def token_occupancy_ap(run: Path, rooms: int) -> dict[str, dict[str, float]]:
    """Per class of DENSE_CLASSES and 'any box': {'share': share of tokens holding it, 'ap': the dense head's AP}
    over the point tokens of held-out rooms 0..rooms-1. run: a run folder whose resume.pt has a dense head."""
    state = torch.load(run / CHECKPOINT_FILE, weights_only=False, map_location="cpu")
    if state.get("dense_head") is None:
        raise ValueError(f"'{run}' was trained without the dense loss: it has no dense head to read the tokens")
    settings = TrainSettings.from_saved(state["settings"])
    loaded = load_for_training(settings.model, settings.vlm_pe, settings.merge_rule, settings.pe_options)
    loaded.model.load_state_dict(state["model"])
    loaded.model.eval()
    mix = PromptMix(loaded.processor)
    objective = Objective(settings, loaded, mix, None)
    objective.dense_head.load_state_dict(state["dense_head"])
    config = loaded.model.config
    scores, labels = [], []
    with torch.no_grad():
        for index, example in enumerate(heldout_examples(rooms, str(run))):
            batch = mix.collate([example])
            loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         point_clouds=batch["point_clouds"], logits_to_keep=1)
            tokens = objective.take_captured()["normed"][batch["input_ids"] == config.point_token_id]
            _, _, targets = objective.token_targets(batch["point_clouds"], [objective.dense_labels(index, example)])
            scores.append(torch.sigmoid(objective.dense_head.occupancy_logits(tokens)).numpy())
            labels.append(targets.occupancy.numpy())
    score, label = np.concatenate(scores), np.concatenate(labels)
    boxes = slice(len(DENSE_CLASSES) - len(BOX_CLASSES), None)
    columns = {name: (score[:, c], label[:, c]) for c, name in enumerate(DENSE_CLASSES)}
    columns["any box"] = (score[:, boxes].max(1), label[:, boxes].max(1))
    return {name: {"share": float(y.mean()), "ap": average_precision(s, y)} for name, (s, y) in columns.items()}


def box_placement(pred: Path, gt: Path) -> dict[str, Any]:
    """How close the written boxes of `pred` come to the ground-truth boxes of `gt` (layout .txt files matched by
    name). Returns gt_boxes, written_boxes, median_m, within_0_3_m, within_0_6_m, right_class (shares of the ground
    truth boxes; rooms with no written box count as misses at the median's 'inf'), classes: {class: count written}."""
    distances, right, written = [], 0, Counter()
    for truth_file in sorted(gt.glob("*.txt")):
        truth, _ = parse_layout(truth_file.read_text())
        pred_file = pred / truth_file.name
        predicted = parse_layout(pred_file.read_text())[0].bboxes if pred_file.is_file() else []
        written.update(box.class_name for box in predicted)
        centres = np.array([[box.position_x, box.position_y] for box in predicted]).reshape(-1, 2)
        for box in truth.bboxes:
            if not len(centres):
                distances.append(np.inf)
                continue
            gaps = np.hypot(*(centres - [box.position_x, box.position_y]).T)
            distances.append(float(gaps.min()))
            right += predicted[int(gaps.argmin())].class_name == box.class_name
    gaps = np.array(distances)
    count = max(1, len(gaps))
    return {"gt_boxes": len(gaps), "written_boxes": sum(written.values()),
            "median_m": float(np.median(gaps)) if len(gaps) else float("nan"),
            "within_0_3_m": float((gaps < 0.3).sum() / count), "within_0_6_m": float((gaps < 0.6).sum() / count),
            "right_class": right / count, "classes": dict(written.most_common())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="A run folder with the dense loss: score its point tokens.")
    parser.add_argument("--rooms", type=int, default=20, help="Held-out rooms for --run.")
    parser.add_argument("--pred", type=Path, help="Written layouts (.txt), e.g. out/x/pred of eval_rooms.sh.")
    parser.add_argument("--gt", type=Path, default=Path("data/heldout"), help="Ground-truth layouts for --pred.")
    args = parser.parse_args(argv)
    if args.run is None and args.pred is None:
        print("error: give --run (tokens) or --pred (written boxes)", file=sys.stderr)
        return 1
    report: dict[str, Any] = {}
    try:
        if args.run is not None:
            report["tokens"] = token_occupancy_ap(args.run, args.rooms)
        if args.pred is not None:
            report["placement"] = box_placement(args.pred, args.gt)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
