"""Training data from scans: SpatialLM's fine-tuning layout, or a folder of scan + layout pairs.

`--data` may be:

* a folder with `pcd/` and `layout/` (SpatialLM's fine-tuning data, e.g. ARKitScenes-SpatialLM): every
  `pcd/<id>.ply` that has a `layout/<id>.txt`, each answering 'all';
* a ShareGPT `.json` as SpatialLM's `spatiallm/tuner/create_dataset.py` writes it: a list of items with
  `conversations` (a human turn whose task sentence, e.g. "Detect boxes.", becomes the example's request, and a gpt
  turn holding the layout between `<|layout_s|>` and `<|layout_e|>`) and `point_clouds` (one path, relative to the
  json's folder);
* a folder of `<name>.ply` + `<name>.txt` pairs, like `scenes/` or `scripts/make_scenes.py`'s output.

Layouts are SpatialLM layout text in metres in the scan's frame. Each example is built as `infer` reads a scan
(`read_point_cloud`, `prepare_point_cloud`) with the layout in bins relative to the prepared cloud's min corner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.io import read_point_cloud
from spatialvlm_cli.layout import CATEGORIES, parse_layout
from spatialvlm_cli.layout.request import ALL, Request
from spatialvlm_cli.model.prompt import DETECT_TYPE_PROMPTS
from spatialvlm_cli.training.data import LayoutExample, worker_builder

LAYOUT_START, LAYOUT_END = "<|layout_s|>", "<|layout_e|>"  # SpatialLM's placeholders in ShareGPT answers
_TASK_SENTENCE = re.compile(r"Detect ([^.]*)\.")


@dataclass(frozen=True)
class Scan:
    """One training scan: its name, the .ply, the layout text (metres, the scan's frame) and what it answers."""

    name: str
    point_cloud: Path
    layout_text: str
    request: Request = ALL


def request_from_prompt(text: str) -> Request:
    """The request of a SpatialLM prompt: its first 'Detect ….' sentence, one of the three detect types or a
    category list (with or without walls, doors, windows). Raises InputError for any other sentence."""
    match = _TASK_SENTENCE.search(text)
    if match is None:
        raise InputError("the prompt has no 'Detect ….' task sentence")
    sentence = match.group(0)
    for detect_type, prompt in DETECT_TYPE_PROMPTS.items():
        if sentence == prompt:
            return Request(detect_type)
    names = [name.strip() for name in match.group(1).split(",")]
    detect_type = "object"
    if names[:3] == ["walls", "doors", "windows"]:
        detect_type, names = "all", names[3:]
    unknown = [name for name in names if name not in CATEGORIES]
    if not names or unknown:
        raise InputError(f"unsupported task sentence '{sentence}' (unknown classes: {', '.join(unknown) or 'none'})")
    return Request(detect_type, tuple(names))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read '{path}': {error}") from None


def _sharegpt_scans(path: Path) -> list[Scan]:
    try:
        items = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(f"'{path}' is not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(items, list):
        raise InputError(f"'{path}' is not a ShareGPT list of conversations")
    scans = []
    for index, item in enumerate(items):
        try:
            turns = {turn["from"]: turn["value"] for turn in item["conversations"]}
            (cloud,) = item["point_clouds"]
            answer = turns["gpt"]
            layout = answer[answer.index(LAYOUT_START) + len(LAYOUT_START) : answer.index(LAYOUT_END)]
            request = request_from_prompt(turns["human"])
        except (KeyError, TypeError, ValueError, InputError) as error:
            raise InputError(f"'{path}' item {index}: not a SpatialLM training conversation ({error})") from None
        scans.append(Scan(Path(cloud).stem, path.parent / cloud, layout, request))
    return scans


def find_scans(data: Path) -> list[Scan]:
    """The scans of a data set (see the module docstring), sorted by name for folders, in file order for a
    ShareGPT json. Raises InputError when there are none or the path is none of the three layouts."""
    data = Path(data)
    if data.is_file() and data.suffix == ".json":
        scans = _sharegpt_scans(data)
    elif data.is_dir():
        clouds, layouts = (data / "pcd", data / "layout") if (data / "pcd").is_dir() else (data, data)
        scans = [Scan(ply.stem, ply, _read_text(layouts / f"{ply.stem}.txt"))
                 for ply in sorted(clouds.glob("*.ply")) if (layouts / f"{ply.stem}.txt").is_file()]
    else:
        raise InputError(f"'{data}' is neither a data folder nor a ShareGPT .json")
    if not scans:
        raise InputError(f"no scans with layouts in '{data}' (pcd/*.ply + layout/*.txt, or *.ply + *.txt pairs)")
    return scans


def _build_one(model: str, scan: Scan, index: int) -> LayoutExample:
    layout, _ = parse_layout(scan.layout_text)
    return worker_builder(model).from_cloud(read_point_cloud(scan.point_cloud), layout, index, scan.request)


def build_scan_examples(model: str, scans: list[Scan], workers: int = 2,
                        on_done: Callable[[], None] | None = None) -> list[LayoutExample]:
    """Examples of `scans` for `model` (anything `--model` takes), in order; `workers` processes. A scan that
    cannot be read raises InputError naming it."""
    build = partial(_build_one, model)
    examples = []
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        results = pool.map(build, scans, range(len(scans))) if pool else map(build, scans, range(len(scans)))
        for example in results:
            examples.append(example)
            if on_done:
                on_done()
    return examples
