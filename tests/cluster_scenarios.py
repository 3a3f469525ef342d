"""Ray cluster scenarios for tests/test_cluster.py, run inside a network namespace that has only the
loopback interface (`unshare -n -p -f --mount-proc`), so every Ray address is 127.0.0.1, nothing
leaves the machine, and every Ray process ends with the namespace.

    python cluster_scenarios.py SCENARIO EXPERIMENT.toml OUTPUT_ROOT

Prints one JSON object on its last line: what the test asserts on besides the files.
The cluster: a head node with no CPUs (so that it never trains) and two worker nodes of one CPU.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# a dead node is noticed within seconds rather than the default half minute
os.environ.setdefault("RAY_health_check_period_ms", "500")
os.environ.setdefault("RAY_health_check_failure_threshold", "4")
os.environ.setdefault("RAY_health_check_initial_delay_ms", "0")


def up():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    return cluster, nodes


def sweep(experiment: str, address: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner", "sweep", experiment, "--cluster", address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def workers() -> list[int]:
    """pids of runner worker processes in this namespace."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"runner.run.worker" in cmdline:
                out.append(int(proc.name))
    return out


def worker_node(pid: int) -> str | None:
    try:
        env = dict(kv.split(b"=", 1) for kv in (Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")) if b"=" in kv)
    except OSError:
        return None
    node = env.get(b"RUNNER_RAY_NODE")
    return node.decode() if node else None


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def epochs_checkpointed(output_root: Path) -> int:
    return len(list(output_root.glob("*/checkpoints/*/epoch-*")))


def scenario_sweep(experiment, output_root):
    cluster, _ = up()
    proc = sweep(experiment, cluster.address)
    log, _ = proc.communicate(timeout=600)
    return {"code": proc.returncode, "log": log, "node_ids": [n.node_id for n in cluster.list_all_nodes()]}


def scenario_remove_node(experiment, output_root):
    """The node a run trains on dies after the run has checkpointed an epoch."""
    cluster, nodes = up()
    proc = sweep(experiment, cluster.address)
    pid = wait_for(lambda: epochs_checkpointed(output_root) >= 1 and workers(), 300, "a checkpointed epoch")[0]
    node_id = wait_for(lambda: worker_node(pid), 10, "the worker's node")
    victim = next(n for n in nodes if n.node_id == node_id)
    cluster.remove_node(victim, allow_graceful=False)
    log, _ = proc.communicate(timeout=600)
    return {"code": proc.returncode, "log": log, "removed": node_id,
            "survivor": next(n.node_id for n in nodes if n is not victim)}


def scenario_kill_driver(experiment, output_root):
    """kill -9 of the sweep while its runs train: no worker may keep running; the rerun completes."""
    cluster, _ = up()
    proc = sweep(experiment, cluster.address)
    wait_for(lambda: epochs_checkpointed(output_root) >= 1 and workers(), 300, "training to start")
    training = workers()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    try:
        wait_for(lambda: not workers(), 60, "the workers to end")
        orphans_after = None
    except SystemExit:
        orphans_after = workers()
    gone_in = time.monotonic() - started
    rerun = sweep(experiment, cluster.address)
    log, _ = rerun.communicate(timeout=600)
    return {"training_at_kill": len(training), "orphans": orphans_after, "workers_gone_in_s": round(gone_in, 1),
            "code": rerun.returncode, "log": log}


if __name__ == "__main__":
    name, experiment, output_root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    outcome = globals()[f"scenario_{name}"](experiment, output_root)
    print(json.dumps(outcome))
    sys.stdout.flush()
    os._exit(0)  # the namespace's end takes every Ray process with it
