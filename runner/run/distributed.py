"""Data parallelism through paddle's own engine: `paddle.distributed.launch` starts the processes
(gloo on CPU, NCCL on GPUs), paddle.Model wraps the network in DataParallel when it sees more than
one rank, and this module gives each rank its share of every batch.

The global batch (the run's `batch_size`) is the same whatever the number of processes: batch k of
an epoch is the k-th slice of one seeded permutation of the training set, and rank r takes every
world-th image of it. A run on one process sees exactly those global batches, so a run on N
processes differs from it only in floating-point sums (and batch-norm statistics, which are per process).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from runner.options import epoch_seed


# Set by the Ray executor for the worker it starts: the Ray node a run trained on, for result.json.
NODE_VARIABLE = "RUNNER_RAY_NODE"


def where_it_runs() -> dict:
    """`host` (the machine's name) and, on a Ray cluster, `node` (its Ray node id)."""
    import socket

    where = {"host": socket.gethostname()}
    if os.environ.get(NODE_VARIABLE):
        where["node"] = os.environ[NODE_VARIABLE]
    return where


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of processes), from the variables paddle.distributed.launch sets."""
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
    return rank, world


class ShardedBatchSampler:
    """Batches of indices: a permutation seeded by (seed, epoch), cut into global batches, each split
    across ranks. Without shuffling the order is the dataset's; the last batches are padded by
    repeating images only when several ranks need equal shares (as paddle's DistributedBatchSampler)."""

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
        self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        if not self.shuffle:
            order = np.arange(self.size)
        else:
            order = np.random.RandomState(epoch_seed(self.seed, self.epoch) % 2 ** 32).permutation(self.size)
        if self.world > 1 and len(order) % self.world:
            order = np.concatenate([order, order[: self.world - len(order) % self.world]])
        return order

    def __iter__(self):
        order = self.order()
        for start in range(0, len(order), self.batch_size):
            yield order[start:start + self.batch_size][self.rank::self.world].tolist()

    def __len__(self) -> int:
        return -(-len(self.order()) // self.batch_size)


def gathered_order(size: int, batch_size: int, world: int) -> np.ndarray:
    """Dataset index of each prediction after paddle.Model's all_gather in evaluation: per global
    batch, rank 0's share, then rank 1's, ... (padding dropped)."""
    sampler = ShardedBatchSampler(size, batch_size, shuffle=False, world=world)
    order = sampler.order()
    out = []
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        out += [i for r in range(world) for i in chunk[r::world]]
    return np.asarray(out[:size])


def launch_command(job_file: Path, nproc: int, log_dir: Path, device: str) -> list[str]:
    """`python -m paddle.distributed.launch` running the worker on `nproc` processes."""
    worker = Path(__file__).with_name("worker.py")
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", str(log_dir)]
    if device.startswith("gpu"):
        cmd += ["--devices", ",".join(str(i) for i in range(nproc))]
    return cmd + [str(worker), str(job_file)]
