#!/usr/bin/env python3
"""How close finished runs trained to this machine's float32 matrix-product limit.

    python bench/training_gflops.py outputs/cifar10_fast [more output folders]

For every finished run: its training work (3 x 2 x multiply-accumulates of a forward pass per
image, for the forward and the two products of the backward pass, times the images it trained on)
over its training seconds, against the matrix-product limit measured in the same invocation
(bench/speed.py's: numpy's float32 product on one core, times the cores this process may use),
and against one core's share of it, since a run with threads = 1 uses one core. Also its time to
each of --targets validation accuracies, read from its per-epoch history (so it is counted in whole
epochs: the first epoch whose evaluation reached the target).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def time_to(history: list[dict], target: float) -> tuple[float, int] | None:
    """(training seconds, epochs) until the first epoch whose validation accuracy reached `target`."""
    seconds = 0.0
    for record in history:
        seconds += record["train_seconds"]
        if record["val"]["acc"] >= target:
            return seconds, record["epoch"]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--targets", default="0.90,0.93,0.94")
    args = ap.parse_args()
    from speed import matmul_limit_gflops

    limit = matmul_limit_gflops()
    cores = len(os.sched_getaffinity(0))
    print(f"float32 matrix-product limit: {limit:.0f} GFLOP/s on {cores} cores ({limit / cores:.0f} per core), "
          f"load average {os.getloadavg()[0]:.2f}")
    targets = [float(t) for t in args.targets.split(",")]
    for folder in args.folders:
        for path in sorted(folder.glob("runs/*/result.json")):
            result = json.loads(path.read_text())
            history = result["history"]
            images = result["train_images"] * len(history)
            gflop = 3 * 2 * result["flops"] * images / 1e9
            rate = gflop / result["train_seconds"]
            threads = result["config"].get("threads", 1)
            share = limit / cores * min(threads, cores)
            reached = []
            for target in targets:
                hit = time_to(history, target)
                reached.append(f"{target:.0%} " + (f"{hit[0] / 60:.1f} min (epoch {hit[1]})" if hit else "not reached"))
            print(f"{result['name']}: final {result['final']['acc']:.2%} after {result['train_seconds'] / 60:.1f} min "
                  f"training ({len(history)} epochs, {result['eval_seconds'] / 60:.1f} min evaluating); "
                  f"{rate:.0f} GFLOP/s = {rate / share:.0%} of {threads} core(s)' limit, {rate / limit:.0%} of the "
                  f"machine's; time to " + ", ".join(reached))


if __name__ == "__main__":
    main()
