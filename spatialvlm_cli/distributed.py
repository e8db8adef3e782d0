"""Processes started by torchrun: data-parallel training (gloo) and `infer` over a folder split by rank.

    torchrun --standalone --nproc-per-node 2 scripts/train_rooms.py --out runs/rooms ...
    torchrun --standalone --nproc-per-node 2 -m spatialvlm_cli infer -p scenes/ -o out/ ...

`Ranks` is this process's place among them. Training: every rank holds the whole model and takes its share of each
global batch (`Ranks.shard`). A loss term that is a mean over this rank's elements (answer tokens, point tokens) is
weighted by this rank's share of the elements of the whole batch (`Ranks.shares`), and the gradients are summed over
ranks (`Ranks.sum_gradients`), so a step is the one-process step on the whole batch up to float summation order, and
a checkpoint resumes with any number of ranks. Inference: every rank runs its share of the scenes (`Ranks.split`)
and the ranks meet only at barriers (`join_process_group`). With one process (no process group) every method is the
identity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from spatialvlm_cli.errors import ConfigError

# How long a rank waits at a barrier for the others: an `infer` rank that is done waits for the slowest rank's
# last scenes (hours on a large benchmark), so far longer than torch's default of 10 (NCCL) or 30 (gloo) minutes.
BARRIER_TIMEOUT = timedelta(days=7)

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's rank among `world` processes (0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Ranks:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and evaluations, and merges `infer`'s run manifest."""
        return self.rank == 0

    def split(self, items: list[T]) -> list[T]:
        """This rank's items of a list of any length (every world-th, from its rank): ranks get counts that differ
        by at most one, and the same list splits the same way on every rank."""
        return items[self.rank :: self.world]

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's examples of a global batch (every world-th, from its rank)."""
        if len(indices) % self.world:
            raise ValueError(f"a batch of {len(indices)} does not split over {self.world} processes")
        return indices[self.rank :: self.world]

    def totals(self, values: list[float]) -> list[float]:
        """Each value summed over ranks, in one all-reduce."""
        if self.world == 1:
            return list(values)
        buffer = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(buffer)
        return buffer.tolist()

    def shares(self, counts: list[int]) -> list[float]:
        """This rank's share of each count summed over ranks: the weights of means over its `counts` elements."""
        return [count / total if total > 0 else 0.0 for count, total in zip(counts, self.totals(counts), strict=True)]

    def sum_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Sum every gradient over ranks, in one flat buffer. Every rank must hold gradients for the same
        parameters (the same model and losses on every rank guarantee it)."""
        if self.world == 1:
            return
        grads: list[Tensor] = [p.grad for p in parameters if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def rank_device(device: str, local_rank: int) -> str:
    """The device a rank runs on: `--device auto` or `cuda` on a CUDA machine is the GPU numbered LOCAL_RANK (one GPU
    per rank, as torchrun's `--nproc-per-node` counts them); cpu and mps are kept. ConfigError for `cuda:N` (every
    rank would share GPU N) and when LOCAL_RANK names a GPU this machine lacks."""
    if device.startswith("cuda:"):
        raise ConfigError(f"--device {device} would put every rank on one GPU; under torchrun use --device cuda or "
                          "auto (each rank takes the GPU numbered by its LOCAL_RANK; CUDA_VISIBLE_DEVICES picks them)")
    if device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(f"LOCAL_RANK {local_rank} has no GPU of its own: this machine has {count}; start at most "
                          f"{count} processes per node (torchrun --nproc-per-node)")
    return f"cuda:{local_rank}"


def join_process_group(rank: int, world: int, device: str) -> Ranks:
    """Join the process group of `world` processes that torchrun started (its env:// rendezvous: MASTER_ADDR,
    MASTER_PORT), as `rank`. device: this rank's device (`rank_device`): NCCL on a CUDA device, gloo otherwise (CPU,
    MPS). Barriers wait up to `BARRIER_TIMEOUT`. Leave with `leave_process_group`."""
    if device.startswith("cuda"):
        cuda = torch.device(device)
        torch.cuda.set_device(cuda)
        dist.init_process_group("nccl", rank=rank, world_size=world, timeout=BARRIER_TIMEOUT, device_id=cuda)
    else:
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=BARRIER_TIMEOUT)
    return Ranks.current()


def leave_process_group() -> None:
    """Destroy the process group `join_process_group` joined (nothing without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
