"""`spatialvlm eval`: SpatialLM's layout and object F1 for a folder of predictions against ground truth, or (with
`--task caption|vqa`) caption and VQA metrics for panorama answers against references."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spatialvlm_cli.cli.console import terminal
from spatialvlm_cli.cli.options import ConfigOpt
from spatialvlm_cli.errors import ConfigError, InputError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from spatialvlm_cli.evaluation import EvalReport, GeometryReport
    from spatialvlm_cli.evaluation.answers import TextReport

TASKS = ("layout", "caption", "vqa")
# The flags only `--task layout` reads, with their defaults: another task refuses them when changed.
LAYOUT_FLAGS = {"metadata": None, "label_mapping": None, "label_from": "spatiallm59", "label_to": "spatiallm20",
                "iou": "0.25,0.5", "exact": False, "geometry": False, "geometry_cutoff": 2.0}
SHOWN_ITEMS = 20  # per-item rows printed; --json holds every item


def eval_command(
    ctx: typer.Context,
    pred: Annotated[
        Path | None,
        typer.Option("--pred", "--pred_dir", "--pred-dir",
                     help="Folder of predicted layouts, <scene>.txt (required); caption/vqa: answers, a .jsonl / "
                     ".json file or a folder of them (infer --image's JSON files)."),
    ] = None,
    gt: Annotated[
        Path | None,
        typer.Option("--gt", "--gt_dir", "--gt-dir",
                     help="Folder of ground-truth layouts, same names (required); caption/vqa: references, a .jsonl "
                     "/ .json file or a folder of them."),
    ] = None,
    task: Annotated[
        str,
        typer.Option("--task", help="layout (SpatialLM's F1) | caption (BLEU-4, METEOR, ROUGE-L, CIDEr-D) | vqa "
                     "(exact-match and normalised accuracy)."),
    ] = "layout",
    metadata: Annotated[
        Path | None,
        typer.Option("--metadata", help="SpatialLM's test.csv: score the scenes of its 'id' column, in order."),
    ] = None,
    label_mapping: Annotated[
        Path | None,
        typer.Option(
            "--label_mapping",
            "--label-mapping",
            help="SpatialLM's benchmark_categories.tsv (replaces the built-in 59 -> 20 class table).",
        ),
    ] = None,
    label_from: Annotated[
        str, typer.Option("--label_from", "--label-from", help="TSV column of the layout files' class names.")
    ] = "spatiallm59",
    label_to: Annotated[str, typer.Option("--label_to", "--label-to", help="TSV column of the scored classes.")] = (
        "spatiallm20"
    ),
    iou: Annotated[str, typer.Option("--iou", help="Comma-separated IoU thresholds.")] = "0.25,0.5",
    exact: Annotated[
        bool,
        typer.Option(
            "--exact",
            help="Geometrically exact variants instead of SpatialLM's: unsigned wall-plane distance, centred box "
            "heights (numbers then differ from SpatialLM's tables).",
        ),
    ] = False,
    geometry: Annotated[
        bool,
        typer.Option(
            "--geometry",
            help="Also print geometric errors in metres per room, with no matching threshold: room extent, wall "
            "centre lines, door and window centres (median and mean over rooms; missing or extra entities cost "
            "the cutoff).",
        ),
    ] = False,
    geometry_cutoff: Annotated[
        float,
        typer.Option("--geometry_cutoff", "--geometry-cutoff",
                     help="Worst geometric error in metres: the cost of a missing or extra entity; larger "
                     "distances are capped to it."),
    ] = 2.0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write every number, per scene and match, to this JSON file.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --json file that is not an eval report.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Score predicted layouts against ground truth with SpatialLM's benchmark metric.

    Walls, doors and windows are scored as vertical rectangles (2-D IoU in the ground-truth plane, pairs parallel
    within 5° and within 0.2 m), objects by oriented 3-D box IoU; per scene and class, Hungarian matching, TP at
    IoU >= threshold; each class's F1 is the mean of per-scene F1 over the scenes that have the class, as in
    SpatialLM's eval.py (the numbers of its README tables, shown here x100). A scene with no prediction file counts
    as an empty prediction; a prediction with no ground truth counts as false positives.

    --geometry adds errors in metres that no threshold hides, per room with ground truth: the room extent error
    (largest difference of the wall-endpoint boxes' sides, in the ground truth's principal frame), the wall error
    (walls paired by a Hungarian assignment on the Hausdorff distance between centre lines) and the door and
    window errors (centre distance in the floor plane). Missing and extra walls, doors and windows each cost
    --geometry_cutoff metres (OSPA), so an empty prediction scores the cutoff, the worst value; 0 is perfect.

    Object classes: box names are mapped to SpatialLM's 20 benchmark classes by a built-in table (e.g. dining_chair
    -> chair, sideboard -> cabinet; unmapped classes are not scored) or by --label_mapping.

    Examples:

      spatialvlm eval --pred out/ --gt SpatialLM-Testset/layout

      spatialvlm eval --pred out/ --gt layout/ --metadata test.csv --label_mapping benchmark_categories.tsv

      spatialvlm eval --pred runs/3d_rope/ --gt layout/ --iou 0.25,0.5,0.75 --exact --json scores.json

      spatialvlm eval --pred out/ --gt scenes/ --exact --geometry

      spatialvlm eval --config eval.yaml --pred runs/mixed/   (YAML keys: pred, gt, metadata, label_mapping, ...)

      spatialvlm eval --task vqa --pred answers/answers.jsonl --gt qa/questions.jsonl --json vqa.json

      spatialvlm eval --task caption --pred captions.jsonl --gt references.jsonl

    --task caption and vqa score panorama answers (records with 'text' / 'answer') against references ('answers' /
    'references' lists or 'answer'), matched by 'id' or by image and question; per item and over the corpus.
    BLEU-4, ROUGE-L and CIDEr-D are computed as pycocoevalcap computes them (on our own tokens, not the PTB
    tokenizer); METEOR is the exact-match variant (no stemming, WordNet synonyms or paraphrases), so lower than
    pycocoevalcap's METEOR 1.5; CIDEr-D's IDF comes from the scored references.
    """

    from spatialvlm_cli.config import merge_config
    from spatialvlm_cli.evaluation import evaluate_folders
    from spatialvlm_cli.io import check_overwrite, write_text_atomic

    values = merge_config(ctx, config)
    if values["task"] not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got '{values['task']}'")
    if values["task"] != "layout":
        _eval_answers(values)
        return
    if values["pred"] is None or values["gt"] is None:
        raise InputError("give both --pred (predicted layouts) and --gt (ground-truth layouts) folders")
    out, err = terminal.out, terminal.err
    if not out.is_terminal:
        out.width = 160  # piped or redirected: keep each table row on one line
    thresholds = _parse_thresholds(values["iou"])
    replaced = []
    if values["json_path"] is not None:
        inputs = [path for path in (values["pred"], values["gt"], values["metadata"], values["label_mapping"]) if path]
        replaced = check_overwrite([values["json_path"]], inputs, values["overwrite"], _written_by_eval)
    start = time.perf_counter()
    report = evaluate_folders(values["pred"], values["gt"], metadata=values["metadata"],
                              label_mapping=values["label_mapping"], label_from=values["label_from"],
                              label_to=values["label_to"], thresholds=thresholds, exact=values["exact"],
                              geometry=values["geometry"], geometry_cutoff=values["geometry_cutoff"])
    _print_notes(err, report, time.perf_counter() - start)
    for group, classes in (("Layouts", report.layout_classes), ("Objects", report.object_classes)):
        out.print(_table(report, group, classes))
    if report.geometry is not None:
        out.print(_geometry_table(report.geometry))
    if values["json_path"] is not None:
        import json

        write_text_atomic(values["json_path"], json.dumps(report.to_json(), indent=1) + "\n")
        err.print(f"wrote {values['json_path']}{' (replacing an earlier report)' if replaced else ''}")


def _eval_answers(values: dict) -> None:
    """`eval --task caption|vqa`: score answers against references, print the tables, write --json."""
    from spatialvlm_cli.evaluation.answers import evaluate_answers
    from spatialvlm_cli.io import check_overwrite, write_text_atomic

    task = values["task"]
    changed = [name for name, default in LAYOUT_FLAGS.items() if values[name] != default]
    if changed:
        raise ConfigError(f"--{changed[0]} applies to --task layout only, not --task {task}")
    if values["pred"] is None or values["gt"] is None:
        raise InputError(f"give both --pred (answers) and --gt (references) for --task {task}")
    replaced = []
    if values["json_path"] is not None:
        replaced = check_overwrite([values["json_path"]], [values["pred"], values["gt"]], values["overwrite"],
                                   _written_by_eval)
    out, err = terminal.out, terminal.err
    if not out.is_terminal:
        out.width = 160
    start = time.perf_counter()
    report = evaluate_answers(values["pred"], values["gt"], task)
    _print_answer_notes(err, report, time.perf_counter() - start)
    out.print(_answers_table(report))
    if values["json_path"] is not None:
        import json

        write_text_atomic(values["json_path"], json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n")
        err.print(f"wrote {values['json_path']}{' (replacing an earlier report)' if replaced else ''}")


def _print_answer_notes(err: Console, report: TextReport, seconds: float) -> None:
    """Unmatched records, one line each, then what was scored and how."""
    for names, what in ((report.missing_predictions, "reference(s) with no prediction (scored as empty answers)"),
                        (report.unmatched_predictions, "prediction(s) with no reference (not scored)")):
        if names:
            shown = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
            err.print(f"[yellow]{len(names)} {what}:[/] {shown}")
    how = ("METEOR exact-match only; CIDEr-D IDF from these references" if report.task == "caption"
           else "exact and normalised match with any reference")
    err.print(f"scored {len(report.items)} item(s) in {seconds:.2f} s ({how})")
    if report.chance is not None:
        err.print(f"chance level (a uniform guess among each question's options): {100 * report.chance:.1f}")


def _answers_table(report: TextReport) -> Table:
    """Per-item scores (the first SHOWN_ITEMS) and the corpus row."""
    from rich import box
    from rich.table import Table

    scale = "x100, CIDEr-D x10 of [0, 10]" if report.task == "caption" else "accuracy x100"
    table = Table(title=f"{report.task}: {len(report.items)} item(s), {scale}", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("item", no_wrap=True, max_width=40)
    table.add_column("prediction", max_width=40, style="dim")
    for name in report.metrics:
        table.add_column(name, justify="right")
    for index, item in enumerate(report.items[:SHOWN_ITEMS]):
        shown = "–" if item.missing_prediction else item.prediction.replace("\n", " ")
        table.add_row(item.key, shown, *(_score_cell(name, report.scores[name].items[index])
                                          for name in report.metrics))
    if len(report.items) > SHOWN_ITEMS:
        table.add_row(f"… {len(report.items) - SHOWN_ITEMS} more (--json)", "", *[""] * len(report.metrics))
    table.add_section()
    table.add_row("corpus", "", *(_score_cell(name, report.scores[name].corpus) for name in report.metrics),
                  style="bold")
    return table


def _score_cell(metric: str, value: float) -> str:
    """CIDEr-D (already in [0, 10]) as is, the other metrics x100."""
    return f"{value:.3f}" if metric == "CIDEr-D" else f"{100 * value:.1f}"


def _written_by_eval(path: Path) -> bool:
    """True when `path` is a JSON report this command wrote (layout or answers)."""
    import json

    from spatialvlm_cli.evaluation.answers import REPORT_KEYS

    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and ({"thresholds", "aggregation", "summary"} <= report.keys()
                                         or report.keys() >= REPORT_KEYS)


def _parse_thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--iou must be comma-separated numbers such as 0.25,0.5, got '{text}'") from None
    if not values:
        raise ConfigError("--iou needs at least one threshold")
    return values


def _print_notes(err: Console, report: EvalReport, seconds: float) -> None:
    """What was not scored as asked, one line each, then a one-line summary."""
    for name, reason in report.skipped[:10]:
        err.print(f"[yellow]skipped scene[/] {name}: {reason}")
    if len(report.skipped) > 10:
        err.print(f"[yellow]skipped {len(report.skipped) - 10} more scene(s)[/] (listed with --json)")
    for status, what in (("no_prediction", "no prediction file (scored as an empty prediction)"),
                         ("no_ground_truth", "no ground-truth file (predictions count as false positives)")):
        names = report.scenes_with(status)
        if names:
            shown = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
            err.print(f"[yellow]{len(names)} scene(s) with {what}:[/] {shown}")
    pred_lines = sum(len(s.pred_issues) for s in report.scenes)
    gt_lines = sum(len(s.gt_issues) for s in report.scenes)
    if pred_lines or gt_lines:
        err.print(f"[yellow]skipped malformed lines:[/] {pred_lines} in predictions, {gt_lines} in ground truth "
                  "(details with --json)")
    degenerate = sum(s.degenerate_pairs for s in report.scenes)
    if degenerate:
        err.print(f"[yellow]{degenerate} wall/door/window pair(s) with a zero-area rectangle scored IoU 0[/] "
                  "(SpatialLM's eval.py stops on them)")
    mode = "exact geometry" if report.exact else "SpatialLM's conventions"
    err.print(f"scored {len(report.scenes)} scene(s) in {seconds:.2f} s ({mode})")


def _table(report: EvalReport, group: str, classes: tuple[str, ...]) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=f"{group}: P, R, F1 x100 (per-class means over scenes)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("class", no_wrap=True)
    for label in ("scenes", "pred", "gt"):
        table.add_column(label, justify="right", style="dim")
    for t in report.thresholds:
        for metric in ("P", "R", "F1"):
            table.add_column(f"{metric}@{t:g}".replace("@0.", "@."), justify="right",
                             style="bold" if metric == "F1" else None)
    first = report.thresholds[0]
    for class_name in classes:
        score = report.scores[class_name][first]
        cells = [_percent(getattr(report.scores[class_name][t], m)) for t in report.thresholds
                 for m in ("precision", "recall", "f1")]
        table.add_row(class_name, str(score.num_scenes), str(score.num_pred), str(score.num_gt), *cells)
    table.add_section()
    means = [_percent(report.group_mean(group.lower(), t, m)) for t in report.thresholds
             for m in ("precision", "recall", "f1")]
    table.add_row("mean", "", "", "", *means, style="bold")
    return table


def _geometry_table(geometry: GeometryReport) -> Table:
    """Median and mean error (metres) over rooms of each geometric metric, with the entity counts."""
    from rich import box
    from rich.table import Table

    from spatialvlm_cli.evaluation import METRICS
    from spatialvlm_cli.evaluation.room_geometry import METRIC_TITLES

    table = Table(title=f"Geometry: errors in metres over rooms (0 perfect, {geometry.cutoff:g} = cutoff = worst)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("error", no_wrap=True)
    for label in ("rooms", "pred", "gt", "paired"):
        table.add_column(label, justify="right", style="dim")
    table.add_column("median m", justify="right", style="bold")
    table.add_column("mean m", justify="right")
    table.add_column("paired mean m", justify="right", style="dim")
    for metric in METRICS:
        summary = geometry.summary(metric)
        if metric == "extent":
            counts = ["", "", ""]
            paired = "–"
        else:
            sets = [getattr(room, f"{metric}s") for room in geometry.rooms]
            counts = [str(sum(s.num_pred for s in sets)), str(sum(s.num_gt for s in sets)),
                      str(sum(s.num_matched for s in sets))]
            total = sum(s.matched_mean * s.num_matched for s in sets if s.matched_mean is not None)
            num_matched = sum(s.num_matched for s in sets)
            paired = f"{total / num_matched:.3f}" if num_matched else "–"
        table.add_row(METRIC_TITLES[metric], str(summary.rooms), *counts, _metres(summary.median),
                      _metres(summary.mean), paired)
    return table


def _metres(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"
