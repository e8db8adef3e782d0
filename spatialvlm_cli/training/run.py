"""One training run from start to end, shared by `spatialvlm train` and `scripts/train_rooms.py`: the process group
under torchrun, the examples (built once into a cache file, then reused), then `train`.

Under torchrun (the caller passes the launch its environment describes: RANK, WORLD_SIZE, LOCAL_RANK) the processes
join a process group (gloo on CPU, NCCL with one GPU per process), rank 0 builds or checks the example cache while
the others wait, then every rank loads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spatialvlm_cli.distributed import Ranks, join_process_group, leave_process_group, rank_device
from spatialvlm_cli.flags import parse_vlm_pe
from spatialvlm_cli.model.loading import load_processor
from spatialvlm_cli.pe.spec import KEEP
from spatialvlm_cli.training.data import LayoutExample, build_examples, load_examples, save_examples
from spatialvlm_cli.training.scans import Scan, build_scan_examples, find_scans
from spatialvlm_cli.training.trainer import TrainReport, TrainSettings, train

EXAMPLES_FILE = "examples.pt"  # the example cache of a run trained on scans, in its run folder


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


def run_training(job: TrainingJob, launch: Launch = None, on_built: Callable[[int], None] | None = None,
                 on_step: Callable[[int, float], None] | None = None) -> TrainReport:
    """Prepare the examples and train (see `train`); with a torchrun launch, joins its process group first and
    leaves it at the end."""
    if job.threads:
        torch.set_num_threads(job.threads)
    ranks = join_torchrun(launch, job.device)
    device = job.device if launch is None else rank_device(job.device, launch[2])
    try:
        examples = prepare_examples(job, ranks, on_built)
        if job.eval_every and (job.heldout is None or not Path(job.heldout).is_dir()):
            raise ValueError(f"no held-out rooms in '{job.heldout}' (scripts/make_scenes.py --split heldout)")
        return train(job.settings, examples, job.out, resume=job.resume, on_step=on_step, stop_after=job.stop_after,
                     heldout=job.heldout, eval_every=job.eval_every, eval_rooms=job.eval_rooms, device=device)
    finally:
        leave_process_group()
