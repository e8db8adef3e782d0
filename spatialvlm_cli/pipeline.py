"""Point-cloud inference as a library: .ply -> preprocess -> model -> layout (metres, the file's frame).

The CLI's `infer --point_cloud` is a thin shell over `run_point_cloud_inference`; notebooks and tests can call
`infer_scene` directly with a model they loaded once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialvlm_cli.errors import ConfigError, OutputError, SpatialVLMError
from spatialvlm_cli.generation import GenerationSettings, stream_generate
from spatialvlm_cli.io import PointCloud, find_point_clouds, read_point_cloud, write_text_atomic
from spatialvlm_cli.layout import Layout, ParseIssue, dedupe_layout, format_layout, layout_to_json, parse_layout
from spatialvlm_cli.preprocess import prepare_point_cloud

log = logging.getLogger(__name__)

DETECT_TYPES = ("all", "arch", "object")


@dataclass(frozen=True)
class SceneSettings:
    """What to ask the model for one scene. detect_type: all | arch | object; categories: SpatialLM class names."""

    detect_type: str = "all"
    categories: tuple[str, ...] = ()
    clean: bool = True
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    def __post_init__(self) -> None:
        if self.detect_type not in DETECT_TYPES:
            raise ConfigError(f"--detect_type must be one of {', '.join(DETECT_TYPES)}, got '{self.detect_type}'")


@dataclass
class SceneResult:
    """One scene's outcome. layout: metres/radians in the input file's frame; text: the raw model output (bins)."""

    source: Path
    text: str
    layout: Layout
    parse_issues: list[ParseIssue]
    num_points: int
    num_voxels: int
    num_point_tokens: int
    num_new_tokens: int
    stopped_by_repeat: bool
    seconds: float

    def to_json(self, run_meta: dict[str, Any]) -> dict[str, Any]:
        """run_meta: model spec and the PE it ran with (model, vlm_pe, pcd_pe_merge_rule, pe)."""
        return {
            "source": str(self.source),
            **run_meta,
            "layout": layout_to_json(self.layout),
            "raw_text": self.text,
            "skipped_lines": [issue.__dict__ for issue in self.parse_issues],
            "stats": {
                "num_points": self.num_points,
                "num_voxels": self.num_voxels,
                "num_point_tokens": self.num_point_tokens,
                "num_new_tokens": self.num_new_tokens,
                "stopped_by_repeat": self.stopped_by_repeat,
                "seconds": round(self.seconds, 3),
            },
        }


def infer_scene(
    loaded: Any,
    path: Path,
    settings: SceneSettings,
    on_text: Callable[[str], None] | None = None,
    cloud: PointCloud | None = None,
) -> SceneResult:
    """Run one .ply through a loaded model (`spatialvlm_cli.model.load_spatiallm(...)`).

    cloud: the file's contents when the caller already read it (to fail fast before loading a model)."""
    import torch

    start = time.perf_counter()
    cloud = cloud if cloud is not None else read_point_cloud(path)
    prepared = prepare_point_cloud(cloud, loaded.num_bins, clean=settings.clean)
    inputs = loaded.processor(
        [torch.from_numpy(prepared.rows)], detect_type=settings.detect_type, categories=list(settings.categories)
    )
    num_point_tokens = int((inputs["input_ids"] == loaded.model.config.point_token_id).sum())
    inputs = {key: _to_device(value, loaded.model.device) for key, value in inputs.items()}
    with _verbose_checkpoints(loaded.model):
        result = stream_generate(loaded.model, loaded.tokenizer, inputs, settings.generation, on_text)
    layout, issues = decode_layout(result.text, loaded.num_bins, prepared.min_extent, source=path.name)
    if issues:
        log.warning("'%s': skipped %d malformed line(s) of model output", path.name, len(issues))
    return SceneResult(
        source=Path(path),
        text=result.text,
        layout=layout,
        parse_issues=issues,
        num_points=len(cloud),
        num_voxels=prepared.num_voxels,
        num_point_tokens=num_point_tokens,
        num_new_tokens=result.num_new_tokens,
        stopped_by_repeat=result.stopped_by_repeat,
        seconds=time.perf_counter() - start,
    )


def _verbose_checkpoints(model: Any) -> contextlib.AbstractContextManager:
    """SPATIALVLM_VERBOSE=1 prints the nine attention-layer checkpoints during the prefill (to stderr: stdout
    carries the streamed text). Off, nothing is installed on the model."""
    if os.environ.get("SPATIALVLM_VERBOSE") != "1":
        return contextlib.nullcontext()
    from rich.console import Console

    from spatialvlm_cli.check import verbose_prefill

    return verbose_prefill(model, Console(stderr=True))


def decode_layout(text: str, num_bins: int, min_extent: Any,
                  source: str = "model output") -> tuple[Layout, list[ParseIssue]]:
    """Model text (integer bins, relative to the cloud's min corner) -> layout in metres in the file's frame.

    Near-duplicate entity lines (same kind, every value within one bin) are dropped and repeated ids renumbered
    (`layout.dedupe_layout`), with a warning naming `source` that says how many."""
    layout_bins, issues = parse_layout(text)
    layout_bins, stats = dedupe_layout(layout_bins, tolerance=1)
    if stats:
        log.warning("'%s': dropped %d near-duplicate entity line(s), renumbered %d repeated id(s)", source,
                    stats.dropped, stats.renumbered)
    return layout_bins.undiscretize(num_bins).translate(tuple(float(v) for v in min_extent)), issues


def _to_device(value: Any, device: Any) -> Any:
    if isinstance(value, list):
        return [_to_device(item, device) for item in value]
    return value.to(device) if hasattr(value, "to") else value


def output_paths(inputs: list[Path], output: Path) -> list[tuple[Path, Path]]:
    """(layout .txt, .json) per input. `output` is a folder, or a .txt file when there is exactly one input."""
    if output.suffix.lower() == ".txt":
        if len(inputs) != 1:
            raise OutputError(f"--output '{output}' is a file but {len(inputs)} scenes were given: pass a folder")
        return [(output, output.with_suffix(".json"))]
    if output.suffix and output.suffix.lower() != ".txt":
        raise OutputError(f"--output '{output}' must be a folder or a .txt file")
    return [(output / f"{path.stem}.txt", output / f"{path.stem}.json") for path in inputs]


def write_scene_outputs(result: SceneResult, txt_path: Path, json_path: Path, meta: dict[str, Any]) -> None:
    """Write the layout in SpatialLM's language (metres) and as JSON, each atomically."""
    write_text_atomic(txt_path, format_layout(result.layout) + "\n")
    payload = result.to_json(meta)
    write_text_atomic(json_path, json.dumps(payload, indent=2) + "\n")


@dataclass
class BatchSummary:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def plan_point_cloud_run(point_cloud: Path, output: Path, skip_existing: bool) -> list[tuple[Path, Path, Path]]:
    """(input, txt, json) for every scene to run; with skip_existing, scenes whose .txt and .json exist are left out."""
    inputs = find_point_clouds(point_cloud)
    plan = [(src, txt, js) for src, (txt, js) in zip(inputs, output_paths(inputs, output), strict=True)]
    if skip_existing:
        plan = [item for item in plan if not (item[1].exists() and item[2].exists())]
    return plan


def run_scenes(
    loaded: Any,
    plan: list[tuple[Path, Path, Path]],
    settings: SceneSettings,
    meta: dict[str, Any],
    on_text: Callable[[str], None] | None = None,
    on_scene_done: Callable[[Path, SceneResult | None, str | None], None] | None = None,
) -> BatchSummary:
    """Run every planned scene; one failing scene is recorded and the batch goes on."""
    summary = BatchSummary()
    for source, txt_path, json_path in plan:
        try:
            result = infer_scene(loaded, source, settings, on_text)
            write_scene_outputs(result, txt_path, json_path, meta)
        except SpatialVLMError as error:
            summary.failed.append((source, str(error)))
            if on_scene_done is not None:
                on_scene_done(source, None, str(error))
            continue
        summary.done.append(source)
        if on_scene_done is not None:
            on_scene_done(source, result, None)
    return summary
