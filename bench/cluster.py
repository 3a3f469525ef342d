#!/usr/bin/env python3
"""The Ray executor against the local one: the same experiment file swept on this machine with
`--jobs 2` and on a local Ray cluster of two one-CPU nodes (`--cluster`), wall time of each in one
invocation, and the check that both trained the same numbers.

    python bench/cluster.py                           # experiments/quick.toml
    python bench/cluster.py experiments/quick.toml --repeat 2

The cluster runs inside a network namespace with only the loopback interface (`unshare -n`, so
root is needed): a head node without CPUs and two worker nodes, all at 127.0.0.1. Its start-up is
not counted: the executor is meant for a cluster that is already running.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sweep(experiment: Path, output_root: Path, *extra: str) -> float:
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(output_root)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runner", "sweep", str(experiment), *extra], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def finals(output_root: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text())["final"] for p in output_root.glob("*/runs/*/result.json")}


def on_cluster(experiment: Path, output_roots: list[Path]) -> list[float]:
    """Inside the namespace: start the cluster, then time one sweep per output root."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    return [sweep(experiment, root, "--cluster", cluster.address) for root in output_roots]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", nargs="?", default=str(REPO / "experiments" / "quick.toml"))
    parser.add_argument("--repeat", type=int, default=1, help="sweeps of each kind (fresh output folders)")
    parser.add_argument("--inside", nargs="+", help=argparse.SUPPRESS)  # the namespace's half of the run
    args = parser.parse_args()
    experiment = Path(args.experiment).resolve()
    if args.inside:
        print(json.dumps(on_cluster(experiment, [Path(p) for p in args.inside])))
        sys.stdout.flush()
        os._exit(0)

    with tempfile.TemporaryDirectory() as tmp:
        local_roots = [Path(tmp) / f"local{i}" for i in range(args.repeat)]
        ray_roots = [Path(tmp) / f"ray{i}" for i in range(args.repeat)]
        local = [sweep(experiment, root, "--jobs", "2") for root in local_roots]
        proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", sys.executable, __file__, str(experiment),
                               "--inside", *map(str, ray_roots)], capture_output=True, text=True, check=True)
        on_ray = json.loads(proc.stdout.strip().splitlines()[-1])
        same = all(finals(a) == finals(b) for a, b in zip(local_roots, ray_roots))
    print(f"{experiment.name} on {os.cpu_count()} cores")
    print(f"local executor, --jobs 2:           {', '.join(f'{t:.1f}' for t in local)} s")
    print(f"Ray executor, 2 nodes x 1 CPU:      {', '.join(f'{t:.1f}' for t in on_ray)} s")
    ratio = min(on_ray) / min(local)
    print(f"Ray / local (best of each): {ratio:.3f} ({(ratio - 1) * 100:+.1f} %); same metrics: {same}")


if __name__ == "__main__":
    main()
