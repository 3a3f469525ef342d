#!/usr/bin/env python3
"""What each 32x32 network costs to train on this machine: one process, one math thread, batches
of 256, each step through paddle.Model.train_batch as a run's fit takes it (with the runner's CPU
settings: MKL's AMD switch, freed memory kept, the matmul bias add).

    python bench/cifar_networks.py                       # the runner's 32x32 networks, LeNet and AlexNet
    python bench/cifar_networks.py --models resnet9 --steps 20

Per network: trainable parameters, multiply-accumulates and FLOPs (2 per MAC) of one forward pass
at 32x32, training images/s, the GFLOP/s that makes (forward + backward taken as 3 forward passes),
its share of one core's float32 matrix-product limit, and the minutes one 50 000-image Cifar10
epoch would take. The inputs are random images in [-1, 1]: speed does not depend on the values.
Each network takes `--steps` timed steps after two untimed ones, or fewer (at least 3) once
`--max-seconds` of timed steps have passed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import runner  # noqa: E402,F401  (sets MKL's CPU switch before paddle loads)
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from runner.run.conv_bias import use_matmul_bias  # noqa: E402
from runner.cpu import keep_freed_memory, set_math_threads  # noqa: E402
from runner.models import RUNNER, build_model, build_network, count_flops, list_models  # noqa: E402
from runner.run.objectives import ClassificationLoss  # noqa: E402
from speed import matmul_limit_gflops  # noqa: E402

EPOCH_IMAGES = 50_000
COURSE_AT_32 = ["lenet", "alexnet"]


def train_images_per_second(name: str, batch: int, steps: int, max_seconds: float) -> tuple[float, int]:
    """Training images/s of `name` at 32x32 with 10 classes, and the number of steps timed."""
    paddle.seed(0)
    network = build_network(name, 10, 32)
    use_matmul_bias(network)
    model = build_model(network, 32)
    model.prepare(paddle.optimizer.Momentum(0.01, 0.9, parameters=network.parameters(), use_nesterov=True,
                                            weight_decay=5e-4), ClassificationLoss())
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, 3, 32, 32)).astype("float32")
    y = rng.integers(0, 10, (batch, 1)).astype("int64")
    for _ in range(2):  # first-call allocations and kernel choice
        model.train_batch([x], [y])
    timed, started = 0, time.perf_counter()
    while timed < steps and (timed < 3 or time.perf_counter() - started < max_seconds):
        model.train_batch([x], [y])
        timed += 1
    return batch * timed / (time.perf_counter() - started), timed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list_models(RUNNER) + COURSE_AT_32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=90.0, help="stop timing a network after this long (>= 3 steps)")
    args = ap.parse_args()

    set_math_threads(1)
    keep_freed_memory()
    per_core = matmul_limit_gflops() / len(os.sched_getaffinity(0))
    print(f"one process, one thread, batch {args.batch}, 32x32, 10 classes; MKL_DEBUG_CPU_TYPE="
          f"{os.environ.get('MKL_DEBUG_CPU_TYPE', 'unset')}; float32 matrix-product limit of one core "
          f"{per_core:.0f} GFLOP/s; load average {os.getloadavg()[0]:.2f} on {len(os.sched_getaffinity(0))} cores",
          flush=True)
    header = (f"{'model':<20} {'params':>11} {'fwd MMAC':>9} {'fwd MFLOP':>10} {'steps':>5} {'train img/s':>11} "
              f"{'GFLOP/s':>8} {'of core':>7} {'min/epoch':>9}")
    print(header, flush=True)
    for name in args.models:
        network = build_network(name, 10, 32)
        params = sum(int(p.size) for p in network.parameters() if p.trainable)
        macs = count_flops(network, 32)
        del network
        ips, timed = train_images_per_second(name, args.batch, args.steps, args.max_seconds)
        gflops = 2 * macs * 3 * ips / 1e9  # forward + backward = 3 forward passes
        print(f"{name:<20} {params:>11,} {macs / 1e6:>9.1f} {2 * macs / 1e6:>10.1f} {timed:>5} {ips:>11.1f} "
              f"{gflops:>8.1f} {gflops / per_core:>7.1%} {EPOCH_IMAGES / ips / 60:>9.1f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}: another process on the same core slows every row")


if __name__ == "__main__":
    main()
