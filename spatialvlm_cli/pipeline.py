"""Point-cloud inference as a library: .ply -> preprocess -> model -> layout (metres, the file's frame).

The CLI's `infer --point_cloud` builds a `PointCloudRun` from its flags, plans it (`plan_point_cloud_run`), loads
the model and hands the planned scenes to `run_scenes`, one scene or many; notebooks and tests can call
`infer_scene` directly with a model they loaded once. A folder run records every scene in its run manifest
(`spatialvlm_cli.runs`), which `--skip_existing` resumes from and torchrun's ranks merge.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spatialvlm_cli.errors import ConfigError, OutputError, error_line
from spatialvlm_cli.generation import GenerationResult, GenerationSettings, generate_batch, stream_generate
from spatialvlm_cli.io import check_overwrite, find_point_clouds, write_text_atomic
from spatialvlm_cli.layout import Layout, ParseIssue, dedupe_layout, format_layout, layout_to_json, parse_layout
from spatialvlm_cli.layout.entities import Bbox, Door, Wall, Window
from spatialvlm_cli.layout.request import DETECT_TYPES, Request, restrict_layout
from spatialvlm_cli.preprocess import PreparedCloud, Scan, ScanOptions, ScanTransform, prepare_point_cloud, read_scan
from spatialvlm_cli.runs import OK, ManifestPart, RunKey, read_manifest

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import Tensor

    from spatialvlm_cli.model.loaded import LoadedModel
    from spatialvlm_cli.model.modeling import SpatialLMModel

log = logging.getLogger(__name__)

# A context manager around a scene's generation, given the model (see `infer_scene`).
ModelWatch = Callable[["SpatialLMModel"], contextlib.AbstractContextManager]

# --quantize: none, or the CPU fast path (`spatialvlm_cli.model.quantize.QUANTIZERS`; checked here before torch loads).
QUANTIZE_MODES = ("none", "int8")


@dataclass(frozen=True)
class SceneSettings:
    """What to ask the model for one scene. detect_type: all | arch | object; categories: SpatialLM class names."""

    detect_type: str = "all"
    categories: tuple[str, ...] = ()
    clean: bool = True
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    scan: ScanOptions = field(default_factory=ScanOptions)

    def __post_init__(self) -> None:
        if self.detect_type not in DETECT_TYPES:
            raise ConfigError(f"--detect_type must be one of {', '.join(DETECT_TYPES)}, got '{self.detect_type}'")

    @property
    def request(self) -> Request:
        return Request(self.detect_type, self.categories)

    def to_json(self) -> dict[str, Any]:
        """Every setting (generation's included), so a run can be repeated from its JSON file."""
        # "scan" only when asked for: the run key of every earlier run stays what it was.
        scan = {"scan": self.scan.to_json()} if self.scan != ScanOptions() else {}
        return {"detect_type": self.detect_type, "categories": list(self.categories), "cleanup": self.clean,
                **self.generation.to_json(), **scan}


@dataclass(frozen=True)
class PointCloudRun:
    """One `infer --point_cloud` run as its flags (and YAML config) ask for it.

    point_cloud: a .ply file or a folder of them; output: a folder, or a .txt file for one scene (see
    `output_paths`). scene: what to ask the model. model: checkpoint directory, shipped model, preset or hub id.
    vlm_pe / merge_rule: the --VLM_PE / --PCD_PE_Merge_Rule values as given, None when not given (the checkpoint's
    is kept); vlm_pe 'None' asks for stock 1-D RoPE. pe_options: PE options over the checkpoint's. device / dtype /
    attn_implementation / quantize: as `load_spatiallm` takes them. skip_existing / overwrite: as
    `plan_point_cloud_run`. batch_size: scenes per `generate()` call in a folder run (`run_scenes`)."""

    point_cloud: Path
    output: Path
    scene: SceneSettings
    model: str
    vlm_pe: str | None = None
    merge_rule: str | None = None
    pe_options: Mapping[str, object] = field(default_factory=dict)
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str | None = None
    skip_existing: bool = False
    overwrite: bool = False
    batch_size: int = 1
    quantize: str = "none"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"--batch_size must be at least 1, got {self.batch_size}")
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, got '{self.quantize}'")

    @property
    def key(self) -> RunKey:
        """What a scene must have been run with for `skip_existing` to leave it out: model, PE flags, settings. The
        batch size counts only when sampling (sampled rows share one random stream; greedy rows do not depend on
        their batch). So does the fast path (int8 text differs from float32's), only when asked for: keys of runs
        without it are unchanged."""
        settings = self.scene.to_json()
        if not self.scene.generation.greedy and self.batch_size > 1:
            settings["batch_size"] = self.batch_size
        if self.quantize != "none":
            settings["quantize"] = self.quantize
        return RunKey.build(self.model, self.vlm_pe, self.merge_rule, self.pe_options, settings)

    @property
    def manifest_folder(self) -> Path | None:
        """The folder of a folder run's outputs and its run manifest; None for a single .ply (no manifest)."""
        if not Path(self.point_cloud).is_dir():
            return None
        output = Path(self.output)
        return output.parent if output.suffix.lower() == ".txt" and not output.is_dir() else output


@dataclass
class SceneResult:
    """One scene's outcome. layout: metres/radians in the input file's frame, only what the request asked for;
    text: the raw model output (bins); outside_request: entities the model wrote that the request did not ask for
    (left out of `layout`)."""

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
    settings: SceneSettings = field(default_factory=SceneSettings)
    hit_token_limit: bool = False
    outside_request: int = 0
    transform: ScanTransform = field(default_factory=ScanTransform)

    def to_json(self, run_meta: dict[str, Any]) -> dict[str, Any]:
        """run_meta: model spec and the PE it ran with (model, vlm_pe, pcd_pe_merge_rule, pe), device, dtype."""
        scan = {} if self.transform.is_identity else {"scan_transform": self.transform.to_json(),
                                                      "layout_input_frame": self.transform.input_corners(self.layout)}
        return {
            "source": str(self.source.resolve()),  # absolute: `written_for` must find it from any working folder
            **run_meta,
            "settings": self.settings.to_json(),
            "layout": layout_to_json(self.layout),
            "raw_text": self.text,
            "skipped_lines": [issue.__dict__ for issue in self.parse_issues],
            "stats": {
                "num_points": self.num_points,
                "num_voxels": self.num_voxels,
                "num_point_tokens": self.num_point_tokens,
                "num_new_tokens": self.num_new_tokens,
                "stopped_by_repeat": self.stopped_by_repeat,
                "hit_token_limit": self.hit_token_limit,
                "outside_request": self.outside_request,
                "seconds": round(self.seconds, 3),
            },
            **scan,
        }


@dataclass
class _PreparedScene:
    """A scene read and preprocessed, ready for the model. seconds: reading and preprocessing."""

    source: Path
    num_points: int
    prepared: PreparedCloud
    seconds: float
    transform: ScanTransform


def _prepare_scene(loaded: LoadedModel, path: Path, settings: SceneSettings, scan: Scan | None = None
                   ) -> _PreparedScene:
    start = time.perf_counter()
    cloud, transform = scan if scan is not None else read_scan(path, settings.scan)
    prepared = prepare_point_cloud(cloud, loaded.num_bins, clean=settings.clean)
    return _PreparedScene(Path(path), len(cloud), prepared, time.perf_counter() - start, transform)


def _model_inputs(loaded: LoadedModel, scenes: list[_PreparedScene],
                  settings: SceneSettings) -> tuple[dict[str, Tensor | list[Tensor]], list[int]]:
    """The processor's inputs for B scenes on the model's device (input_ids and attention_mask (B, L), left-padded;
    point_clouds: B (V_i, 9) rows), and each row's number of point tokens M_i."""
    import torch  # here, not at the top: `infer` imports this module to plan its run before torch loads

    inputs = loaded.processor([torch.from_numpy(scene.prepared.rows) for scene in scenes],
                              detect_type=settings.detect_type, categories=list(settings.categories))
    counts = (inputs["input_ids"] == loaded.model.config.point_token_id).sum(dim=1).tolist()
    return {key: _to_device(value, loaded.model.device) for key, value in inputs.items()}, counts


def _scene_result(loaded: LoadedModel, scene: _PreparedScene, generated: GenerationResult, settings: SceneSettings,
                  num_point_tokens: int, seconds: float) -> SceneResult:
    """The generated text as a layout in the file's frame, with warnings for a cut-off text and skipped lines."""
    path = scene.source
    layout, issues = decode_layout(generated.text, loaded.num_bins, scene.prepared.min_extent, source=path.name)
    layout = scene.transform.to_written_frame(layout)
    layout, outside_request = restrict_layout(layout, settings.request)
    if outside_request:
        log.warning("'%s': left out %d entity line(s) the request did not ask for (the model wrote them anyway)",
                    path.name, outside_request)
    if generated.hit_token_limit:
        log.warning("'%s': generation stopped at --max_new_tokens %d, so the last line is cut off; raise "
                    "--max_new_tokens for the whole layout", path.name, settings.generation.max_new_tokens)
    if issues:
        log.warning("'%s': skipped %d malformed line(s) of model output: %s", path.name, len(issues),
                    "; ".join(f"line {issue.line_no} ({issue.reason})" for issue in issues[:3])
                    + ("; …" if len(issues) > 3 else ""))
    return SceneResult(
        source=path,
        text=generated.text,
        layout=layout,
        parse_issues=issues,
        num_points=scene.num_points,
        num_voxels=scene.prepared.num_voxels,
        num_point_tokens=num_point_tokens,
        num_new_tokens=generated.num_new_tokens,
        stopped_by_repeat=generated.stopped_by_repeat,
        seconds=seconds,
        settings=settings,
        hit_token_limit=generated.hit_token_limit,
        outside_request=outside_request,
        transform=scene.transform,
    )


def infer_scene(
    loaded: LoadedModel,
    path: Path,
    settings: SceneSettings,
    on_text: Callable[[str], None] | None = None,
    scan: Scan | None = None,
    watch: ModelWatch | None = None,
) -> SceneResult:
    """Run one .ply through a loaded model (`spatialvlm_cli.model.load_spatiallm(...)`).

    scan: the file as `preprocess.read_scan` gives it when the caller already read it (to fail fast before loading
    a model); None reads it here with settings.scan.
    watch: a context around generation, given the model (e.g. `check.verbose_prefill` printing the nine
    checkpoints); None runs the model as it is."""
    start = time.perf_counter()
    scene = _prepare_scene(loaded, path, settings, scan)
    inputs, counts = _model_inputs(loaded, [scene], settings)
    with watch(loaded.model) if watch is not None else contextlib.nullcontext():
        generated = stream_generate(loaded.model, loaded.tokenizer, inputs, settings.generation, on_text)
    return _scene_result(loaded, scene, generated, settings, counts[0], time.perf_counter() - start)


def infer_batch(
    loaded: LoadedModel,
    paths: list[Path],
    settings: SceneSettings,
    watch: ModelWatch | None = None,
) -> list[SceneResult | Exception]:
    """Run several .ply files through one `generate()` call: their prompts left-padded into one batch (each with its
    own number of point tokens), each row stopping on its own. One result per path, in order: a SceneResult, or the
    exception that reading or preprocessing that file raised (the others still run). Greedy rows give the text
    `infer_scene` gives for the scene alone. A failure of the batch itself (e.g. out of memory) raises.
    seconds of a result: its reading and preprocessing plus an equal share of the batch's generation."""
    outcomes: dict[int, SceneResult | Exception] = {}
    scenes: list[tuple[int, _PreparedScene]] = []
    for index, path in enumerate(paths):
        try:
            scenes.append((index, _prepare_scene(loaded, path, settings)))
        except Exception as error:
            outcomes[index] = error
    if scenes:
        start = time.perf_counter()
        inputs, counts = _model_inputs(loaded, [scene for _, scene in scenes], settings)
        with watch(loaded.model) if watch is not None else contextlib.nullcontext():
            rows = generate_batch(loaded.model, loaded.tokenizer, inputs, settings.generation)
        share = (time.perf_counter() - start) / len(scenes)
        for (index, scene), generated, count in zip(scenes, rows, counts, strict=True):
            outcomes[index] = _scene_result(loaded, scene, generated, settings, count, scene.seconds + share)
    return [outcomes[index] for index in range(len(paths))]


def decode_layout(text: str, num_bins: int, min_extent: np.ndarray | tuple[float, float, float],
                  source: str = "model output") -> tuple[Layout, list[ParseIssue]]:
    """Model text (integer bins, relative to the cloud's min corner) -> layout in metres in the file's frame.

    Model output is read strictly: a line with more values than its entity takes (which SpatialLM's parser, and
    `parse_layout` for saved files, would accept by dropping the extras) is skipped as malformed. Near-duplicate
    entity lines (same kind, every value within one bin) are dropped and repeated ids renumbered
    (`layout.dedupe_layout`), with a warning naming `source` that says how many."""
    lines = text.split("\n")
    extra = [ParseIssue(number, line, reason) for number, line in enumerate(lines, 1)
             if (reason := _extra_values(line)) is not None]
    for issue in extra:
        lines[issue.line_no - 1] = ""
    layout_bins, issues = parse_layout("\n".join(lines))
    issues = sorted(issues + extra, key=lambda issue: issue.line_no)
    layout_bins, stats = dedupe_layout(layout_bins, tolerance=1)
    if stats:
        changes = [f"dropped {stats.dropped} near-duplicate entity line(s)" if stats.dropped else "",
                   f"renumbered {stats.renumbered} repeated id(s)" if stats.renumbered else ""]
        log.warning("'%s': %s", source, ", ".join(change for change in changes if change))
    return layout_bins.undiscretize(num_bins).translate(tuple(float(v) for v in min_extent)), issues


_VALUES_TAKEN = {"wall": len(Wall.numeric_fields), "door": 1 + len(Door.numeric_fields),
                 "window": 1 + len(Window.numeric_fields), "bbox": 1 + len(Bbox.numeric_fields)}


def _extra_values(line: str) -> str | None:
    """The reason a model output line has more values than its entity takes, else None."""
    label = line.split("=")[0].partition("_")[0].strip()
    taken = _VALUES_TAKEN.get(label)
    opening, closing = line.find("("), line.find(")")
    if taken is None or opening < 0 or closing < opening:
        return None
    given = len(line[opening + 1 : closing].split(","))
    return f"{label.capitalize()} takes {taken} values, got {given}" if given > taken else None


def _to_device(value: Tensor | list[Tensor], device: torch.device) -> Tensor | list[Tensor]:
    return [item.to(device) for item in value] if isinstance(value, list) else value.to(device)


def output_paths(inputs: list[Path], output: Path) -> list[tuple[Path, Path]]:
    """(layout .txt, .json) per input. `output` is a folder (an existing one may have a dot in its name), or a .txt
    file when there is exactly one input."""
    if output.is_dir():
        return [(output / f"{path.stem}.txt", output / f"{path.stem}.json") for path in inputs]
    if output.suffix.lower() == ".txt":
        if len(inputs) != 1:
            raise OutputError(f"--output '{output}' is a file but {len(inputs)} scenes were given: pass a folder")
        return [(output, output.with_suffix(".json"))]
    if output.suffix and output.suffix.lower() != ".txt":
        raise OutputError(f"--output '{output}' must be a folder or a .txt file")
    return [(output / f"{path.stem}.txt", output / f"{path.stem}.json") for path in inputs]


def write_scene_outputs(result: SceneResult, txt_path: Path, json_path: Path, meta: dict[str, Any]) -> None:
    """Write the layout as JSON and in SpatialLM's language (metres), each atomically. The JSON goes first: it names
    the scene, so a run stopped between the two leaves a .json that marks the .txt slot as this tool's."""
    write_text_atomic(json_path, json.dumps(result.to_json(meta), indent=2) + "\n")
    write_text_atomic(txt_path, format_layout(result.layout) + "\n")


@dataclass
class BatchSummary:
    done: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class RunPlan:
    """scenes: (input, txt, json) to run; skipped: inputs left out by skip_existing (done with the same model, PE
    flags and settings); rerun: inputs the manifest records as done with another model, PE or settings, which run
    again; replaced: existing outputs an earlier run of this tool wrote for the same scene (or any, with overwrite),
    which the run will replace; folder: where the run manifest lives (None for a single .ply)."""

    scenes: list[tuple[Path, Path, Path]]
    skipped: list[Path]
    rerun: list[Path]
    replaced: list[Path]
    folder: Path | None

    @property
    def stale(self) -> dict[Path, list[Path]]:
        """Per rerun scene, its existing outputs (written with another model, PE or settings): a try that fails
        removes them, so that the folder never holds a layout of another encoding under this run's manifest."""
        replaced = set(self.replaced)
        rerun = set(self.rerun)
        return {src: [path for path in (txt, js) if path in replaced] for src, txt, js in self.scenes if src in rerun}


def written_for(json_path: Path, source: Path) -> bool:
    """True when `json_path` is a JSON file `infer` wrote for the scene `source`."""
    try:
        payload = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(payload, dict) and "raw_text" in payload and isinstance(payload.get("source"), str)
            and Path(payload["source"]).resolve() == Path(source).resolve())


def plan_point_cloud_run(run: PointCloudRun) -> RunPlan:
    """What a run will do, before any model is loaded. With skip_existing (folder runs only: ConfigError for one
    .ply), a scene is left out when the run manifest (merged: `runs.merge_manifest`) records its latest try as ok
    under the run's key (model, PE flags, settings) and its .txt and .json are still there; failed scenes and those
    done with another key run again. An existing output is replaced only when this tool wrote it for the same scene
    (the .json names it; the .txt goes with its .json) or `overwrite` is set; an output that is an input is never
    written (OutputError)."""
    inputs = find_point_clouds(run.point_cloud)
    scenes = [(src, txt, js) for src, (txt, js) in zip(inputs, output_paths(inputs, run.output), strict=True)]
    folder = run.manifest_folder
    entries = read_manifest(folder) if folder is not None else {}
    if run.skip_existing and folder is None:
        raise ConfigError(f"--skip_existing resumes a folder run from its manifest; '{run.point_cloud}' is one file "
                          "(run it again without --skip_existing)")
    key = run.key
    ok = {src: entry.key for src, _, _ in scenes if (entry := entries.get(src.name)) is not None
          and entry.status == OK}
    rerun = [src for src, _, _ in scenes if src in ok and ok[src] != key]
    skipped = [src for src, txt, js in scenes if run.skip_existing and ok.get(src) == key and txt.exists()
               and written_for(js, src)]
    scenes = [item for item in scenes if item[0] not in skipped]
    replaced = []
    for source, txt_path, json_path in scenes:
        replaced += check_overwrite([txt_path, json_path], inputs, run.overwrite,
                                    lambda _, src=source, js=json_path: written_for(js, src))
    return RunPlan(scenes, skipped, rerun, replaced, folder)


def run_scenes(
    loaded: LoadedModel,
    plan: list[tuple[Path, Path, Path]],
    settings: SceneSettings,
    meta: dict[str, Any],
    on_text: Callable[[str], None] | None = None,
    on_scene_done: Callable[[Path, SceneResult | None, str | None], None] | None = None,
    watch: ModelWatch | None = None,
    reraise: bool = False,
    first_scan: Scan | None = None,
    manifest: ManifestPart | None = None,
    batch_size: int = 1,
    stale: Mapping[Path, list[Path]] | None = None,
) -> BatchSummary:
    """Run every planned scene, one or many, and write its outputs; a scene that fails for any reason (bad file,
    numerical or library error) is recorded with a one-line reason and the batch goes on. Ctrl-C stops the batch
    (KeyboardInterrupt propagates); `reraise` lets the first failure through instead (the CLI's SPATIALVLM_DEBUG,
    and its one-scene runs, whose failure is the command's error). on_text / watch: as in `infer_scene`.
    first_scan: the first planned scene as `preprocess.read_scan` gives it when the caller already read it (to fail
    fast before loading a model). manifest: where a folder run records each scene once its outputs are written (or
    it failed).
    batch_size: scenes per `generate()` call (`infer_batch`, no streaming: on_text is not called); a batch whose
    generation fails runs again scene by scene, so the failure is the failing scene's alone. stale: outputs to
    remove when their scene fails (`RunPlan.stale`)."""
    summary = BatchSummary()

    def finish(source: Path, txt_path: Path, json_path: Path, outcome: SceneResult | Exception, start: float) -> None:
        """Write a scene's outputs and record it, or record its failure; then tell the caller."""
        if isinstance(outcome, SceneResult):
            try:
                write_scene_outputs(outcome, txt_path, json_path, meta)
            except Exception as error:
                outcome = error
        if isinstance(outcome, Exception):
            reason = error_line(outcome)
            for path in (stale or {}).get(source, []):
                path.unlink(missing_ok=True)
            if manifest is not None:
                manifest.record(source, time.perf_counter() - start, error=reason)
            if reraise:
                raise outcome
            summary.failed.append((source, reason))
            if on_scene_done is not None:
                on_scene_done(source, None, reason)
            return
        if manifest is not None:
            manifest.record(source, outcome.seconds, outcome.num_point_tokens, outcome.num_new_tokens)
        summary.done.append(source)
        if on_scene_done is not None:
            on_scene_done(source, outcome, None)

    def one(index: int, source: Path, txt_path: Path, json_path: Path) -> None:
        start = time.perf_counter()
        try:
            outcome: SceneResult | Exception = infer_scene(loaded, source, settings, on_text,
                                                           scan=first_scan if index == 0 else None, watch=watch)
        except Exception as error:
            outcome = error
        finish(source, txt_path, json_path, outcome, start)

    if batch_size == 1:
        for index, (source, txt_path, json_path) in enumerate(plan):
            one(index, source, txt_path, json_path)
        return summary
    for first in range(0, len(plan), batch_size):
        chunk = plan[first : first + batch_size]
        start = time.perf_counter()
        try:
            outcomes = infer_batch(loaded, [source for source, _, _ in chunk], settings, watch=watch)
        except Exception as error:
            if reraise:
                raise
            log.warning("a batch of %d scene(s) failed (%s); running them one by one", len(chunk), error_line(error))
            for offset, (source, txt_path, json_path) in enumerate(chunk):
                one(first + offset, source, txt_path, json_path)
            continue
        for (source, txt_path, json_path), outcome in zip(chunk, outcomes, strict=True):
            finish(source, txt_path, json_path, outcome, start)
    return summary
