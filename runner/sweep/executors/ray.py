"""Workers on a Ray cluster: each run is one Ray task that starts the same worker process a local
sweep starts (`python -m runner.run.worker job.json`, or paddle's launcher for nproc > 1), so paddle's
per-process state stays isolated. Ray places the tasks by the resources they ask for (threads x
nproc CPUs, or nproc GPUs) and reruns a task whose node dies; the run then resumes from its last
checkpoint, because outputs live on storage every node sees.

    runner sweep experiments/all.toml --cluster auto          # or HOST:PORT, ray://HOST:PORT

The sweep process stays the only writer of runs.sqlite; the tasks report through the run files.
If the sweep process dies, even by kill -9, Ray ends its job's tasks, and each worker process dies
with its task (processes.die_with_parent): nothing keeps training unattended.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from runner.errors import RunnerError
from runner.sweep.executors.base import Ended, Executor
from runner.sweep.plan import PlannedRun

DEFAULT_RETRIES = 2
STOP_GRACE_SECONDS = 30


def import_ray():
    # Ray's C++ core logs warnings (no route to 8.8.8.8, GCS retries) to stderr: errors only
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        import ray
    except ImportError:
        raise RunnerError("--cluster needs Ray, which is not installed: pip install -e '.[cluster]'") from None
    return ray


def run_worker(job: str, config: dict) -> int:
    """The body of a run's Ray task, on whichever node Ray chose: the worker process, its exit code.
    A cancelled task (the sweep's Ctrl-C) stops its worker as Ctrl-C stops a local one."""
    import ray

    from runner.run.distributed import NODE_VARIABLE
    from runner.processes import die_with_parent
    from runner.run.worker import command

    job_path = Path(job)
    env = {**os.environ, "RUNNER_WORKER": "1", NODE_VARIABLE: ray.get_runtime_context().get_node_id()}
    with open(job_path.parent / "train.log", "a") as log:
        proc = subprocess.Popen(command(job_path, config, python=sys.executable), stdout=log,
                                stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                return proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()


def probe_node(token_file: str, token: str, data_roots: list[str]) -> tuple[str, str | None]:
    """On one node: (its name, what it cannot see of the sweep's folder and data roots, or None)."""
    import socket

    host = socket.gethostname()
    try:
        if Path(token_file).read_text() != token:
            return host, f"it reads another {token_file} than the sweep wrote"
    except OSError as err:
        return host, f"it cannot read {token_file} ({err.strerror})"
    for root in data_roots:
        if not Path(root).is_dir() or not os.access(root, os.R_OK):
            return host, f"it cannot read the data root {root}"
    return host, None


def no_answer(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at HOST:PORT (Ray itself retries for minutes), or None; `auto` is Ray's to find."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        return None
    except OSError as err:
        return f"nothing answers at {host}:{port}: {err.strerror or err}"


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str, retries: int = DEFAULT_RETRIES):
        ray = self.ray = import_ray()
        unreachable = no_answer(address)
        if unreachable:
            raise RunnerError(f"cannot join the Ray cluster at {address!r} ({unreachable}); start one with "
                              "`ray start --head` (see docs/cluster.md) or check the address")
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
        except Exception as err:  # ConnectionError, ValueError, RuntimeError: Ray says which
            raise RunnerError(f"cannot join the Ray cluster at {address!r} ({type(err).__name__}: {err}); start one "
                              "with `ray start --head` (see docs/cluster.md) or check the address") from None
        self.retries = retries
        self.task = ray.remote(run_worker)
        self.tasks: dict = {}  # ObjectRef -> PlannedRun

    def check_storage(self, sweep_root: Path, data_roots: list[str]) -> None:
        """Every alive node must see the sweep's folder and the data at the same paths: a task on
        each node reads a file the sweep wrote just now."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        token_file, token = sweep_root / ".cluster-check", uuid.uuid4().hex
        token_file.write_text(token)
        probe = self.ray.remote(probe_node)
        try:
            nodes = [n for n in self.ray.nodes() if n.get("Alive")]
            answers = self.ray.get([
                probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(token_file), token, data_roots) for n in nodes], timeout=120)
        finally:
            token_file.unlink(missing_ok=True)
        for (host, problem), node in zip(answers, nodes):
            if problem:
                raise RunnerError(f"Ray node {node['NodeID'][:8]} ({host}) cannot use this sweep's files: {problem}. "
                                  f"Outputs ({sweep_root}) and data must be on storage every node mounts at the same "
                                  "path (NFS or the like); see docs/cluster.md")

    def capacity(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def fits(self, planned: PlannedRun, idle: bool) -> bool:
        return True  # Ray queues a task until some node has the resources it asks for

    def start(self, planned: PlannedRun, job: Path, config: dict) -> None:
        wide = max(1, config.get("nproc", 1))
        resources = ({"num_gpus": wide, "num_cpus": 1} if config["device"].startswith("gpu")
                     else {"num_cpus": max(1, config.get("threads", 1)) * wide})
        ref = self.task.options(max_retries=self.retries, retry_exceptions=False, **resources).remote(str(job), config)
        self.tasks[ref] = planned

    def running(self) -> list[PlannedRun]:
        return list(self.tasks.values())

    def ended(self) -> list[Ended]:
        if not self.tasks:
            return []
        ready, _ = self.ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=0)
        out = []
        for ref in ready:
            planned = self.tasks.pop(ref)
            try:
                out.append(Ended(planned, self.ray.get(ref)))
            except self.ray.exceptions.TaskCancelledError:
                out.append(Ended(planned, -signal.SIGINT))
            except self.ray.exceptions.RayError as err:  # the node died beyond the retries, or the task broke
                out.append(Ended(planned, -signal.SIGKILL, lost=f"Ray lost the run's task ({type(err).__name__}: "
                                                                  f"{str(err).splitlines()[0][:200]})"))
        return out

    def stop(self, run_id: str) -> None:
        for ref, planned in self.tasks.items():
            if planned.spec.run_id == run_id:
                self.ray.cancel(ref, force=False)

    def stop_all(self) -> list[PlannedRun]:
        """Cancel every task: a running one gets KeyboardInterrupt and stops its worker cleanly."""
        for ref in self.tasks:
            self.ray.cancel(ref, force=False)
        deadline = time.monotonic() + STOP_GRACE_SECONDS + 5
        pending = list(self.tasks)
        while pending and time.monotonic() < deadline:
            _, pending = self.ray.wait(pending, num_returns=len(pending), timeout=1)
        for ref in pending:
            self.ray.cancel(ref, force=True)
        stopped = list(self.tasks.values())
        self.tasks.clear()
        return stopped

    def close(self) -> None:
        self.ray.shutdown()
