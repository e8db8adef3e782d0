"""One training run from start to end, shared by `spatialvlm train` and `scripts/train_rooms.py`: the process group
under torchrun, the examples (built once into a cache file, then reused), then `train`.

Under torchrun (the caller passes the launch its environment describes: RANK, WORLD_SIZE, LOCAL_RANK) the processes
join a process group (gloo on CPU, NCCL with one GPU per process), rank 0 builds or checks the example cache while
the others wait, then every rank loads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from spatialvlm_cli.distributed import Ranks, join_process_group, leave_process_group, rank_device
from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.flags import parse_key_values, parse_vlm_pe
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.pe.spec import KEEP
from spatialvlm_cli.training.data import LayoutExample, build_examples, load_examples, save_examples
from spatialvlm_cli.training.scans import Scan, build_scan_examples, find_scans
from spatialvlm_cli.training.settings import TrainSettings
from spatialvlm_cli.training.trainer import REPORT_FILE, TrainReport, train

EXAMPLES_FILE = "examples.pt"  # the example cache of a run trained on scans, in its run folder
LEG_FOLDER = "leg-{}"  # an earlier leg of a run with further legs, inside the run folder
# Settings a further leg cannot change: it continues the same model (a LoRA leg's checkpoint holds adapters, which
# a warm start cannot load, so only the last leg may train LoRA).
FIXED_IN_LEGS = ("model", "vlm_pe", "merge_rule", "pe_options", "init_from")


@dataclass
class TrainingJob:
    """settings: what decides the weights; out: the run folder. The examples: `scans` (a data set, see `scans.py`)
    or, without it, `rooms` synthetic training rooms (generator seeds split_seed('train', 0..rooms-1)); cache: their
    example file (default out/examples.pt; rebuilt when it holds other examples). resume, stop_after, heldout,
    eval_every, eval_rooms, device: as `train` takes them (under torchrun `auto`/`cuda` is each process's own GPU);
    workers: processes that prepare examples; threads: torch threads per process (None: torch's choice)."""

    settings: TrainSettings
    out: Path
    scans: Path | None = None
    rooms: int = 0
    cache: Path | None = None
    resume: bool = False
    stop_after: int | None = None
    heldout: Path | None = None
    eval_every: int = 0
    eval_rooms: int = 8
    workers: int = 2
    threads: int | None = None
    device: str = "cpu"
    then: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def legs(self) -> list[tuple[TrainSettings, Path]]:
        """(settings, run folder) of every leg in order. Raises ConfigError for a leg's bad settings."""
        legs = [(self.settings, self.out if not self.then else self.out / LEG_FOLDER.format(1))]
        for number, changes in enumerate(self.then, start=2):
            folder = self.out if number == len(self.then) + 1 else self.out / LEG_FOLDER.format(number)
            legs.append((leg_settings(legs[-1][0], changes, legs[-1][1]), folder))
        return legs

    @property
    def total_steps(self) -> int:
        """Steps this job runs over all its legs (stop_after included)."""
        total = sum(settings.steps for settings, _ in self.legs())
        return total if self.stop_after is None else min(total, self.stop_after)


def parse_legs(legs: list[str] | None) -> tuple[dict[str, Any], ...]:
    """--then values ('steps=400 all_share=0.2', one per leg) -> each leg's changes, values read as YAML scalars.
    Raises ConfigError for a word without '='."""
    return tuple(parse_key_values(leg.split(), "--then") for leg in legs or ())


def leg_settings(previous: TrainSettings, changes: dict[str, Any], previous_out: Path) -> TrainSettings:
    """The settings of a leg that follows `previous` (trained into `previous_out`): the same, warm-started from its
    last checkpoint, with `changes` (setting name -> value, e.g. {'steps': 400, 'all_share': 0.2}). The warm-up is
    kept within the leg's steps. Raises ConfigError for a setting that is unknown, fixed or of the wrong type."""
    if previous.lora_rank > 0:
        raise ConfigError("a LoRA leg must be the last one (a warm start loads full weights, not adapters)")
    defaults = {item.name: item.default for item in dataclasses.fields(TrainSettings)}
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in defaults or name in FIXED_IN_LEGS:
            allowed = ", ".join(sorted(set(defaults) - set(FIXED_IN_LEGS)))
            raise ConfigError(f"--then: '{name}' is not a setting a further leg can change (it can: {allowed})")
        default = defaults[name]
        if not _same_kind(default, value):
            kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(type(default), "a word")
            raise ConfigError(f"--then: {name}={value!r} should be {kind}")
        values[name] = float(value) if type(default) is float else value
    values.setdefault("warmup_steps", previous.warmup_steps)
    values["warmup_steps"] = min(values["warmup_steps"], values.get("steps", previous.steps))
    return dataclasses.replace(previous, init_from=str(previous_out), **values)


def _same_kind(default: Any, value: Any) -> bool:
    """Whether `value` (read as YAML) can stand for a setting whose default is `default` (an int is a float)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float, str)):
        return isinstance(value, (int, float) if type(default) is float else type(default))
    return True


def leg_finished(settings: TrainSettings, out: Path) -> bool:
    """Whether `out` holds the saved model of a run with these settings that ran its whole schedule."""
    try:
        saved = json.loads((out / REPORT_FILE).read_text())
        return TrainSettings.from_saved(saved["settings"]) == settings and saved["report"]["steps"] >= settings.steps
    except (OSError, ValueError, KeyError, TypeError):
        return False



def resolve_pe(model: str, vlm_pe: str | None, merge_rule: str | None, pe_options: dict[str, Any]
               ) -> tuple[str | None, str | None, dict[str, Any]]:
    """The PE a run trains with, as `TrainSettings` stores it: the flags (`vlm_pe` None: not given, the model's own
    is kept; 'None' is stock RoPE) applied over `model`'s config, as `--VLM_PE` applies at load time. Returns
    (vlm_pe, merge_rule, options): None, None, {} for stock RoPE. Raises ConfigError for unknown names or options."""
    stored = load_processor(model).config.pe_spec
    spec = stored.overridden(KEEP if vlm_pe is None else parse_vlm_pe(vlm_pe), merge_rule or KEEP, pe_options)
    fields = spec.config_fields()
    return fields["vlm_pe"], fields["pcd_pe_merge_rule"], fields["pe"]


# (RANK, WORLD_SIZE, LOCAL_RANK) of a process torchrun started as one of several; None for a plain run.
Launch = tuple[int, int, int] | None


def join_torchrun(launch: Launch, device: str = "cpu") -> Ranks:
    """This process's `Ranks`: with a launch, after joining its process group (NCCL for a CUDA device, else
    gloo); else one process."""
    if launch is not None and Ranks.current().world == 1:
        rank, world, local_rank = launch
        return join_process_group(rank, world, rank_device(device, local_rank))
    return Ranks.current()


def prepare_examples(job: TrainingJob, ranks: Ranks, on_built: Callable[[int], None] | None = None
                     ) -> list[LayoutExample]:
    """The job's examples from its cache, built there first when missing or stale (rank 0 checks and builds while
    the others wait, then they load it). on_built(total) is called once per example built, with the number to
    build."""
    cache = job.cache or job.out / EXAMPLES_FILE
    if not ranks.is_main:
        ranks.barrier()
        return load_examples(cache)[0]
    scans = find_scans(job.scans) if job.scans is not None else None
    meta = _examples_meta(job, scans)
    examples = None
    if cache.is_file():
        examples, stored = load_examples(cache)
        if stored != meta:
            examples = None
    if examples is None:
        examples = _build(job, scans, on_built)
        save_examples(cache, examples, meta)
    ranks.barrier()
    return examples


def _examples_meta(job: TrainingJob, scans: list[Scan] | None) -> dict[str, Any]:
    """What the cached examples were built from, so a stale cache is rebuilt: the model and, for scans, a digest of
    every scan's name, layout text and .ply size and modification time."""
    if scans is None:
        return {"architecture": Path(job.settings.model).name, "split": "train", "start": 0, "count": job.rooms}
    digest = hashlib.sha256()
    for scan in scans:
        status = scan.point_cloud.stat()
        digest.update(f"{scan.name}\0{scan.layout_text}\0{scan.request}\0{status.st_size}\0{status.st_mtime_ns}\0"
                      .encode())
    return {"model": job.settings.model, "scans": str(Path(job.scans).resolve()), "digest": digest.hexdigest()}


def _build(job: TrainingJob, scans: list[Scan] | None, on_built: Callable[[int], None] | None
           ) -> list[LayoutExample]:
    if scans is not None:
        done = (lambda: on_built(len(scans))) if on_built else None
        return build_scan_examples(job.settings.model, scans, job.workers, on_done=done)
    if job.rooms <= 0:
        raise ValueError("no training data: give a data set or a number of synthetic rooms")
    done = (lambda: on_built(job.rooms)) if on_built else None
    return build_examples(job.settings.model, "train", 0, job.rooms, job.workers, on_done=done)


def _counted_from(on_step: Callable[[int, float], None], offset: int, step: int, loss: float) -> None:
    on_step(offset + step, loss)


def run_training(job: TrainingJob, launch: Launch = None, on_built: Callable[[int], None] | None = None,
                 on_step: Callable[[int, float], None] | None = None) -> TrainReport:
    """Prepare the examples and train every leg (see `train`); with a torchrun launch, joins its process group first
    and leaves it at the end. on_step(step, loss) counts steps over all legs. With --resume a leg that finished is
    skipped. Returns the whole job's report (steps, seconds and loss windows of every leg run; the last leg's model
    size)."""
    if job.threads:
        torch.set_num_threads(job.threads)
    ranks = join_torchrun(launch, job.device)
    device = job.device if launch is None else rank_device(job.device, launch[2])
    try:
        examples = prepare_examples(job, ranks, on_built)
        if job.eval_every and (job.heldout is None or not Path(job.heldout).is_dir()):
            raise ValueError(f"no held-out rooms in '{job.heldout}' (scripts/make_scenes.py --split heldout)")
        total = TrainReport(steps=0, seconds=0.0, losses=[], parameters=0)
        for settings, out in job.legs():
            left = None if job.stop_after is None else job.stop_after - total.steps
            if left is not None and left <= 0:
                break
            if job.resume and leg_finished(settings, out):
                total.steps += settings.steps
                continue
            offset = total.steps
            report = train(settings, examples, out, resume=job.resume, stop_after=left, heldout=job.heldout,
                           eval_every=job.eval_every, eval_rooms=job.eval_rooms, device=device,
                           on_step=None if on_step is None else partial(_counted_from, on_step, offset))
            total = TrainReport(steps=offset + report.steps, seconds=total.seconds + report.seconds,
                                losses=total.losses + report.losses, parameters=report.parameters)
        return total
    finally:
        leave_process_group()
