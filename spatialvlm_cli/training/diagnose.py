"""Does a room model read its point cloud? Eight measurements on held-out rooms (the README's diagnosis).

    python -m spatialvlm_cli.training.diagnose spatialvlm-rooms --rooms 20 [--json out.json]
    python -m spatialvlm_cli.training.diagnose spatialvlm-rooms configs/train-rooms.yaml --markdown \
        --title "shipped now" --title untrained                                              # the README's table

* input ablation: teacher-forced layout loss (nats per answer token) with the real clouds, with their point
  features (xyz, rgb) zeroed, and with another room's cloud; a model that reads its input loses clearly more;
* attention: the share of attention that the answer tokens give the point tokens, per decoder layer, against the
  point tokens' share of the context (what uniform attention would give);
* collapse: the projected point tokens' mean vector norm against the mean norm of each token's deviation from it
  (after the decoder's RMSNorm only the direction counts, so a large common vector hides the per-token part);
* linear probe: ridge regression (leave-one-out) from mean- and max-pooled projected tokens to the cloud's x and y
  extent (metres), against predicting the mean extent;
* answer probe: the same regression from the decoder's last hidden state (after its final norm) at the position
  that writes the first answer token: has the decoder gathered the room's size before it writes the first wall?
  Compare it with the model's written extent error (`eval --geometry`): a probe far better than the written
  numbers says the size is read but lost on the way to the number tokens;
* fields: teacher-forced, each value of the answer predicted from the true text before it (its argmax over the
  number tokens), with the room's own cloud and with the next room's: the median error in metres of where walls
  end, of door, window and box centres and box sizes (x and y together), and how often the box class is the top
  token. A field the model reads from the scan is clearly worse with another room's cloud; one it guesses from the
  text so far (a prior) is not;
* position probes: ridge regression from the point tokens' states at each decoder layer's input to each token's own
  cell centre (do the tokens carry where they are, readably?), and from the decoder's last state where it writes a
  box's y to that y (has it fetched the box's position when it writes it?), against predicting the mean.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from spatialvlm_cli.layout.bins import FIELD_RANGES, bin_size
from spatialvlm_cli.layout.entities import Bbox, Door, Wall, Window
from spatialvlm_cli.layout.request import ALL, Request
from spatialvlm_cli.model import load_spatiallm
from spatialvlm_cli.training.data import LayoutExample, PromptMix, answer_token_starts, build_examples
from spatialvlm_cli.training.dense import token_cell_size_m
from spatialvlm_cli.training.loss import NumberVocabulary, layout_loss

if TYPE_CHECKING:
    from spatialvlm_cli.model.modeling import SpatialLMModel


def probe_mae(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Leave-one-out ridge regression (unit ridge) from features (N, F) to targets (N, T): the mean absolute error
    per target column (T,), in the targets' units."""
    predictions = []
    for held in range(len(features)):
        keep = [j for j in range(len(features)) if j != held]
        x_mean, y_mean = features[keep].mean(0), targets[keep].mean(0)
        centred = features[keep] - x_mean
        weights = np.linalg.solve(centred.T @ centred + np.eye(features.shape[1]), centred.T @ (targets[keep] - y_mean))
        predictions.append((features[held] - x_mean) @ weights + y_mean)
    return np.abs(np.asarray(predictions) - targets).mean(0)


def heldout_examples(rooms: int, model: str) -> list[LayoutExample]:
    """Held-out rooms 0..rooms-1 (seeds 1,000,000+) prepared for `model` (anything `--model` takes; its config
    decides the bins and the point-token count, so compared models must share them)."""
    return build_examples(model, "heldout", 0, rooms, workers=1)


# The values of each entity's text line after its '(' (parse.py's order): numeric fields, a wall id, a class.
LINE_VALUES: dict[str, tuple[str, ...]] = {
    "wall": Wall.numeric_fields,
    "door": ("wall_id", *Door.numeric_fields),
    "window": ("wall_id", *Window.numeric_fields),
    "bbox": ("class_name", *Bbox.numeric_fields),
}
# (row name, entity label, the x and y fields measured together) of the field errors.
FIELD_ROWS: tuple[tuple[str, str, tuple[str, str]], ...] = (
    ("wall end", "wall", ("bx", "by")),
    ("door centre", "door", ("position_x", "position_y")),
    ("window centre", "window", ("position_x", "position_y")),
    ("box centre", "bbox", ("position_x", "position_y")),
    ("box size", "bbox", ("scale_x", "scale_y")),
)
BOX_CLASS = "box class"


def value_tokens(text: str, token_starts: list[int]) -> list[tuple[int, int, str, str, str]]:
    """Where each value of layout `text` starts a token: (token index, line index, entity label, value name, value
    text) for every value of `LINE_VALUES` whose text begins at one of `token_starts` (character offsets of the
    tokens)."""
    token_at = {start: index for index, start in enumerate(token_starts)}
    found, line_start = [], 0
    for line_index, line in enumerate(text.split("\n")):
        label = line.partition("_")[0]
        open_pos, close_pos = line.find("("), line.find(")")
        if label in LINE_VALUES and 0 <= open_pos < close_pos:
            value_start = line_start + open_pos + 1
            for name, value in zip(LINE_VALUES[label], line[open_pos + 1 : close_pos].split(","), strict=False):
                if value_start in token_at:
                    found.append((token_at[value_start], line_index, label, name, value))
                value_start += len(value) + 1
        line_start += len(line) + 1
    return found


def answer_values(tokenizer: PreTrainedTokenizerBase, answer: list[int]) -> list[tuple[int, int, str, str, str]]:
    """`value_tokens` of an answer (ids, the last one ending the turn); none where its text does not tokenise back
    to it."""
    offsets = answer_token_starts(tokenizer, answer[:-1])
    return [] if offsets is None else value_tokens(*offsets)


def field_errors(answer: list[int], logits: Tensor, values: list[tuple[int, int, str, str, str]],
                 numbers: NumberVocabulary, num_bins: int) -> dict[str, list[float]]:
    """Teacher-forced errors of one answer. answer: its ids; logits: (T, V), row i predicting answer[i]; values:
    its `answer_values`. Returns {row of `FIELD_ROWS`: per entity, the distance in metres between the argmax number
    tokens of its two fields and the true ones; `BOX_CLASS`: per box, 1.0 when its class's first token is the top
    token, else 0.0}. Values that are not one token each are left out."""
    value_of_id = numbers.value_of_id.to(logits.device)
    predicted_bin = logits[:, numbers.ids.to(logits.device)].argmax(-1)
    bins: dict[tuple[int, str], tuple[int, int]] = {}  # (line, field) -> (predicted, true) bin
    errors: dict[str, list[float]] = {name: [] for name, _, _ in FIELD_ROWS} | {BOX_CLASS: []}
    for token, line, _, name, value in values:
        if name == "class_name":
            errors[BOX_CLASS].append(float(int(logits[token].argmax()) == answer[token]))
        elif str(int(value_of_id[answer[token]])) == value:  # the whole value is this one number token
            bins[line, name] = int(predicted_bin[token]), int(value_of_id[answer[token]])
    label_of_line = {line: label for _, line, label, _, _ in values}
    for row, label, fields in FIELD_ROWS:
        for line in (line for line, line_label in label_of_line.items() if line_label == label):
            if all((line, name) in bins for name in fields):
                steps = [bin_size(FIELD_RANGES[label][name], num_bins) * (bins[line, name][0] - bins[line, name][1])
                         for name in fields]
                errors[row].append(float(np.hypot(*steps)))
    return errors


def position_probe_errors(token_states: list[np.ndarray], centres: np.ndarray, box_states: np.ndarray,
                          box_ys: np.ndarray, max_tokens: int = 600) -> dict[str, list[float]]:
    """The position probes (module docstring). token_states: per decoder layer, (M, H) the point tokens' states at
    its input (every room's); centres: (M, 2) their cell centres (m); box_states: (N, H) the last states that write
    the boxes' y values; box_ys: (N, 1) those values (m). Returns {"token_position": per layer, the larger of the x
    and y leave-one-out errors (m) over at most `max_tokens` tokens (a seeded sample), "token_position_mean": the same
    for predicting the mean centre, "box_y": [probe error, mean-predictor error] (m), empty under 3 boxes}."""
    sample = np.random.default_rng(0).permutation(len(centres))[:max_tokens]
    y = centres[sample].astype(np.float64)
    token_errors = [float(probe_mae(states[sample].astype(np.float64), y).max()) for states in token_states]
    box = [float(probe_mae(box_states.astype(np.float64), box_ys)[0]), float(np.abs(box_ys - box_ys.mean()).mean())] \
        if len(box_ys) > 2 else []
    return {"token_position": [round(v, 3) for v in token_errors],
            "token_position_mean": [round(float(np.abs(y - y.mean(0)).mean(0).max()), 3)],
            "box_y": [round(v, 3) for v in box]}


def prompt_use(model: SpatialLMModel, mix: PromptMix, examples: list[LayoutExample]) -> dict[str, list[float]]:
    """The prompt-use measurement (module docstring) over `examples` (each answering 'all'): {"arch_end": [p under
    `-d arch`, p under `all`], "category": [p under `-c CLASS`, p under `all`]}, probabilities averaged over the
    rooms that have boxes (arch_end) and over every box of the answer to `-c CLASS`, CLASS the room's first box's."""

    def probabilities(example: LayoutExample, request: Request, answer: list[int], at: list[int]) -> list[float]:
        """p(answer[i] | prompt of `request`, answer[:i]) for i in `at`."""
        ids = mix.prompt_with_points(request, example.num_point_tokens) + answer
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                           point_clouds=[torch.from_numpy(example.rows)], logits_to_keep=len(answer) + 1).logits
        predicted = logits[0, :-1].float().softmax(-1)  # row i predicts answer[i]
        return [float(predicted[i, answer[i]]) for i in at]

    arch_end: list[list[float]] = []
    category: list[list[float]] = []
    for example in examples:
        text = mix.answer_text(example)
        classes = [line.split("(", 1)[1].split(",", 1)[0] for line in text.splitlines() if line.startswith("bbox_")]
        if not classes:
            continue
        arch = mix.target_ids(example, Request("arch"))  # its last id is the end of the answer
        arch_end.append([probabilities(example, request, arch, [len(arch) - 1])[0]
                         for request in (Request("arch"), ALL)])
        asked = Request("all", (classes[0],))
        answer = mix.target_ids(example, asked)
        at = [token for token, _, _, name, _ in answer_values(mix.tokenizer, answer) if name == "class_name"]
        under_prompt, under_all = probabilities(example, asked, answer, at), probabilities(example, ALL, answer, at)
        category.extend([a, b] for a, b in zip(under_prompt, under_all, strict=True))
    return {name: [round(float(v), 3) for v in np.mean(pairs, 0)] if pairs else [] for name, pairs in
            (("arch_end", arch_end), ("category", category))}


class ForwardPass(NamedTuple):
    """One teacher-forced pass of `diagnose`: loss (nats per answer token), attention_on_points (per layer, the
    answer tokens' mean attention on the point tokens), point_share (the point tokens' share of the context),
    hidden_states (per layer input, then the final norm's output: (L, H) each), point_mask (L,) bool, answer_length
    (T), fields (`field_errors`)."""

    loss: float
    attention_on_points: list[float]
    point_share: float
    hidden_states: list[Tensor]
    point_mask: Tensor
    answer_length: int
    fields: dict[str, list[float]]


def diagnose(spec: str, examples: list[LayoutExample]) -> dict[str, Any]:
    """The eight measurements for model `spec` on `examples` (`heldout_examples`; one set serves several models)."""
    loaded = load_spatiallm(spec, device="cpu", attn_implementation="eager")
    model = loaded.model.eval()
    mix = PromptMix(loaded.processor)
    numbers = NumberVocabulary.from_tokenizer(loaded.tokenizer, loaded.num_bins, model.config.vocab_size)

    def run(example: LayoutExample, values: list[tuple[int, int, str, str, str]], rows: np.ndarray, tokens: int
            ) -> ForwardPass:
        """The teacher-forced pass of `example`'s answer (its `answer_values`: `values`) on the cloud `rows`."""
        batch = mix.collate([LayoutExample(rows, example.target_ids, tokens, example.seed)])
        length = batch["target_length"]
        with torch.no_grad():
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        point_clouds=batch["point_clouds"], output_attentions=True, output_hidden_states=True)
        logits = out.logits[:, -length - 1 : -1]
        loss = layout_loss(logits.reshape(-1, logits.shape[-1]), batch["labels"][:, -length:].reshape(-1), numbers,
                           1.5).item()
        mask = batch["input_ids"][0] == model.config.point_token_id
        mass = [float(att[0, :, -length:, :][..., mask].sum(-1).mean()) for att in out.attentions]
        fields = field_errors(example.target_ids.tolist(), logits[0], values, numbers, loaded.num_bins)
        return ForwardPass(loss, mass, float(mask.sum() / batch["attention_mask"].sum()),
                           [hidden[0] for hidden in out.hidden_states], mask, length, fields)

    real, zeroed, swapped, masses, shares, answer_states = [], [], [], [], [], []
    own_fields: dict[str, list[float]] = {}
    other_fields: dict[str, list[float]] = {}
    token_states: list[list[np.ndarray]] = [[] for _ in range(model.config.num_hidden_layers)]
    box_states, box_ys = [], []
    for index, example in enumerate(examples):
        values = answer_values(loaded.tokenizer, example.target_ids.tolist())
        own = run(example, values, example.rows, example.num_point_tokens)
        real.append(own.loss)
        masses.append(own.attention_on_points)
        shares.append(own.point_share)
        final = own.hidden_states[-1][-own.answer_length - 1 : -1]  # (T, H) the states predicting the answer
        answer_states.append(final[0].numpy())
        for layer, hidden in zip(token_states, own.hidden_states[:-1], strict=True):  # each layer's input
            layer.append(hidden[own.point_mask].numpy())
        for token, _, label, name, value in values:
            if label == "bbox" and name == "position_y" and value.isdigit():
                box_states.append(final[token].numpy())
                box_ys.append([bin_size(FIELD_RANGES[label][name], loaded.num_bins) * int(value)])
        rows = example.rows.copy()
        rows[:, 3:] = 0.0
        zeroed.append(run(example, values, rows, example.num_point_tokens).loss)
        other = examples[(index + 1) % len(examples)]
        swap = run(example, values, other.rows, other.num_point_tokens)
        swapped.append(swap.loss)
        for collected, measured in ((own_fields, own.fields), (other_fields, swap.fields)):
            for name, errors in measured.items():
                collected.setdefault(name, []).extend(errors)

    cell_size = token_cell_size_m(loaded.num_bins, model.config.point_config.get("stride", ()))
    pooled, extents, common, residual, centres = [], [], [], [], []
    for example in examples:
        with torch.no_grad():
            features, grid, _ = model.encode_point_clouds([torch.from_numpy(example.rows)], torch.float32)
        mean = features.mean(0)
        common.append(float(mean.norm()))
        residual.append(float((features - mean).norm(dim=1).mean()))
        pooled.append(torch.cat([mean, features.max(0).values]).numpy())
        extents.append(example.rows[:, 3:5].max(0))
        centres.append((grid[:, :2].numpy() + 0.5) * cell_size)
    probes = position_probe_errors([np.concatenate(layer) for layer in token_states], np.concatenate(centres),
                                   np.asarray(box_states).reshape(len(box_states), model.config.hidden_size),
                                   np.asarray(box_ys))
    y = np.asarray(extents, dtype=np.float64)
    constant = np.abs(y - y.mean(0)).mean(0)
    return {
        "model": spec,
        "rooms": len(examples),
        "loss_real": float(np.mean(real)),
        "loss_features_zeroed": float(np.mean(zeroed)),
        "loss_other_room": float(np.mean(swapped)),
        "attention_on_points_per_layer": [round(v, 3) for v in np.mean(masses, 0).tolist()],
        "point_share_of_context": round(float(np.mean(shares)), 3),
        "token_common_norm": float(np.mean(common)),
        "token_residual_norm": float(np.mean(residual)),
        "probe_mae_m": [round(float(v), 3) for v in probe_mae(np.asarray(pooled, dtype=np.float64), y)],
        "answer_probe_mae_m": [round(float(v), 3) for v in probe_mae(np.asarray(answer_states, dtype=np.float64), y)],
        "constant_mae_m": [round(float(v), 3) for v in constant],
        **{f"prompt_{name}_p": pair for name, pair in prompt_use(model, mix, examples).items()},
        **{f"probe_{name}_m": values for name, values in probes.items()},
        "fields": {name: [round(float(summary(own_fields.get(name, []))), 3),
                          round(float(summary(other_fields.get(name, []))), 3), len(own_fields.get(name, []))]
                   for name, summary in [(row, _median) for row, _, _ in FIELD_ROWS] + [(BOX_CLASS, _mean)]},
    }


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _pair(values: list[float], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def _relative(result: dict[str, Any], key: str) -> str:
    change = result[key] - result["loss_real"]
    return f"{result[key]:.4f} ({change:+.4f})"


def _fields(row: str) -> Callable[[dict[str, Any]], str]:
    return lambda result: _pair(result["fields"][row][:2], 2)


# (row label, figure of one model's result) of the markdown table, in the README's order.
TABLE_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("teacher-forced answer loss, real clouds (nats/token)", lambda r: f"{r['loss_real']:.4f}"),
    ("… with every point feature (xyz, rgb) zeroed", lambda r: _relative(r, "loss_features_zeroed")),
    ("… with the next room's cloud", lambda r: _relative(r, "loss_other_room")),
    ("attention of answer tokens on point tokens, per layer", lambda r: _pair(r["attention_on_points_per_layer"], 2)),
    ("point tokens' share of the context (uniform attention)", lambda r: f"{r['point_share_of_context']:.2f}"),
    ("projected point tokens: norm of their mean vector", lambda r: f"{r['token_common_norm']:.1f}"),
    ("… mean norm of each token's deviation from it", lambda r: f"{r['token_residual_norm']:.1f}"),
    ("linear probe, pooled point tokens → cloud extent x, y (m, leave-one-out)", lambda r: _pair(r["probe_mae_m"], 2)),
    ("linear probe, state before the first answer token → cloud extent x, y (m)",
     lambda r: _pair(r["answer_probe_mae_m"], 2)),
    ("predicting the mean extent x, y (m)", lambda r: _pair(r["constant_mae_m"], 2)),
    ("p(end of answer) after the last window, under `-d arch`, under `all`",
     lambda r: _pair(r["prompt_arch_end_p"], 2)),
    ("p(a box's class) under `-c CLASS`, under `all`", lambda r: _pair(r["prompt_category_p"], 2)),
    *((f"teacher-forced {row}, median error (m): own cloud, next room's", _fields(row)) for row, _, _ in FIELD_ROWS),
    ("teacher-forced box class, share top-1: own cloud, next room's", _fields(BOX_CLASS)),
    ("linear probe, point tokens → their own cell centre, at each decoder layer's input (m)",
     lambda r: _pair(r["probe_token_position_m"], 2)),
    ("… predicting the mean cell centre (m)", lambda r: _pair(r["probe_token_position_mean_m"], 2)),
    ("linear probe, state that writes a box's y → that y (m); predicting the mean",
     lambda r: _pair(r["probe_box_y_m"], 2)),
)


def markdown_table(results: list[dict[str, Any]], titles: list[str]) -> str:
    """One column per model: the README's diagnosis table."""
    lines = ["| measurement | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(figure(r) for r in results) + " |" for label, figure in TABLE_ROWS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="Checkpoint directory, shipped model name or preset (several: one column each).")
    parser.add_argument("--rooms", type=int, default=20, help="Held-out rooms (seeds 1,000,000..).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here (a list, one per model).")
    parser.add_argument("--markdown", action="store_true", help="Print the README's table instead of JSON.")
    parser.add_argument("--title", action="append", default=[], metavar="TITLE",
                        help="Column title for each model, in order (repeatable; default: the model argument).")
    args = parser.parse_args(argv)
    if args.title and len(args.title) != len(args.models):
        parser.error(f"{len(args.title)} --title for {len(args.models)} models")
    torch.set_num_threads(1)
    examples = heldout_examples(args.rooms, args.models[0])
    results = [diagnose(model, examples) for model in args.models]
    text = json.dumps(results, indent=2)
    print(markdown_table(results, args.title or args.models) if args.markdown else text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
