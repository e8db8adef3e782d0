"""Data-parallel training over processes started by torchrun (gloo: the trainer runs on CPU).

    torchrun --standalone --nproc-per-node 2 scripts/train_rooms.py --out runs/rooms ...

Every rank holds the whole model and takes its share of each global batch (`Ranks.shard`). A loss term that is a
mean over this rank's elements (answer tokens, point tokens) is weighted by this rank's share of the elements of the
whole batch (`Ranks.shares`), and the gradients are summed over ranks (`Ranks.sum_gradients`), so a step is the
one-process step on the whole batch up to float summation order, and a checkpoint resumes with any number of
ranks. With one process (no process group) every method is the identity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Ranks:
    """This process's rank among `world` training processes (0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Ranks:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and evaluations."""
        return self.rank == 0

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
