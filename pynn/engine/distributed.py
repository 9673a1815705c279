"""Data-parallel training over MPI (mpi4py): what the engine needs from a communicator.

The scheme (as PyTorch's DistributedDataParallel, on pynn's flat buffers): rank 0's weights and
optimizer state are broadcast at the start; every rank draws the same permutation of the same
data; global batch k is the k-th slice of ``batch_size * size`` samples of it and rank r takes the
r-th ``batch_size`` of those; each rank's loss gradient is scaled by its share of the global
sample weight, the flat gradient buffer is summed with one Allreduce, and every rank takes the
same optimizer step. So N ranks with per-rank batch b compute what one process with batch N*b
computes, up to the order of the sums.

mpi4py is imported only when a communicator is given (the optional `mpi` extra:
``pip install mpi4py mpich``).
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["DataParallel", "rank_zero"]


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - only without mpi4py
        raise ImportError("distributed training needs mpi4py and an MPI library: "
                          "pip install mpi4py mpich") from exc
    return MPI


def rank_zero(comm: object) -> bool:
    """Whether this process is rank 0 (or there is no communicator): the one that prints."""
    return comm is None or comm.Get_rank() == 0


class DataParallel:
    """One communicator's collectives, as the training engine uses them."""

    def __init__(self, comm: object) -> None:
        MPI = _mpi()
        if not isinstance(comm, MPI.Comm):
            raise TypeError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), got "
                            f"{type(comm).__name__}")
        if comm.Is_inter():
            raise TypeError("comm must be an intra-communicator")
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._scalars = np.zeros(4, dtype=np.float64)

    # ---- start of a fit ------------------------------------------------------------------------
    def check_agreement(self, facts: dict) -> None:
        """Every rank passes the same facts (model, data size, seeds, settings), else a
        ValueError on every rank naming what differs and where."""
        everyone = self.comm.allgather(facts)
        problems = []
        for rank, theirs in enumerate(everyone[1:], 1):
            for key in sorted(set(everyone[0]) | set(theirs)):
                if everyone[0].get(key) != theirs.get(key):
                    problems.append(f"{key}: rank 0 has {everyone[0].get(key)!r}, rank {rank} "
                                    f"has {theirs.get(key)!r}")
        if problems:
            raise ValueError("the ranks of comm disagree (every rank must pass the same model, "
                             "data and settings): " + "; ".join(problems[:5])
                             + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))

    def broadcast(self, array: np.ndarray) -> None:
        """Rank 0's values into `array` on every rank, in place."""
        self.comm.Bcast(array, root=0)

    def broadcast_object(self, value: object) -> object:
        return self.comm.bcast(value, root=0)

    def threads_per_rank(self) -> int:
        """Cores of this host divided among the ranks that run on it (at least 1)."""
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            ranks_here = local.Get_size()
        finally:
            local.Free()
        return max(1, (os.cpu_count() or 1) // ranks_here)

    # ---- a step --------------------------------------------------------------------------------
    def part(self, start: int, stop: int, per_rank: int) -> tuple[int, int]:
        """This rank's rows of the global batch [start, stop): the rank-th run of per_rank."""
        lo = min(start + self.rank * per_rank, stop)
        return lo, min(lo + per_rank, stop)

    def sum_scalars(self, loss_weighted: float, weight: float, correct: float,
                    bad: bool) -> np.ndarray:
        """Sums over ranks of (loss x weight, weight, correct predictions, non-finite flags)."""
        s = self._scalars
        s[0], s[1], s[2], s[3] = loss_weighted, weight, correct, 1.0 if bad else 0.0
        self.comm.Allreduce(self.MPI.IN_PLACE, s, op=self.MPI.SUM)
        return s

    def sum(self, array: np.ndarray) -> None:
        """Sum `array` over the ranks, in place (the flat gradient buffer: one Allreduce)."""
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's contiguous share of n rows (for evaluation)."""
        bounds = np.linspace(0, n, self.size + 1).astype(np.int64)
        return int(bounds[self.rank]), int(bounds[self.rank + 1])
