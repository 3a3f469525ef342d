"""Workers on this machine: one process per run, as many at a time as the cores (`--jobs`) or GPUs
(`--devices`) allow."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from runner.cpu import usable_cores
from runner.sweep.executors.base import Ended, Executor
from runner.sweep.plan import PlannedRun, slots_needed
from runner.processes import die_with_parent
from runner.run.worker import command

STOP_GRACE_SECONDS = 30


def next_to_start(pending: list[PlannedRun], free_slots: int, idle: bool, on_gpus: bool) -> int | None:
    """Index of the first pending run that fits in the free slots, so that short single-core runs
    fill a core that a wide run cannot use yet; a run wider than the whole budget starts alone."""
    for i, planned in enumerate(pending):
        if slots_needed(planned.spec.config, on_gpus) <= free_slots or idle:
            return i
    return None


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, jobs: int | None = None, devices: list[int] | None = None):
        self.devices = devices or []
        # Slots: one per GPU with --devices; otherwise --jobs cores (paddle computes in one thread per
        # process on CPU unless a run asks for more), each run taking threads x nproc of them.
        self.slots = len(self.devices) if self.devices else max(1, jobs or usable_cores())
        self.procs: dict[str, tuple[subprocess.Popen, PlannedRun, str]] = {}

    def capacity(self) -> int:
        return self.slots

    def free_slots(self) -> int:
        return self.slots - sum(slots_needed(p.spec.config, bool(self.devices)) for _, p, _ in self.procs.values())

    def fits(self, planned: PlannedRun, idle: bool) -> bool:
        return next_to_start([planned], self.free_slots(), idle, bool(self.devices)) is not None

    def place(self, planned: PlannedRun) -> dict:
        config = planned.spec.config
        if not self.devices:
            return config
        busy = {device for _, _, device in self.procs.values()}  # a GPU no other running run has
        return {**config, "device": next(f"gpu:{d}" for d in self.devices if f"gpu:{d}" not in busy)}

    def start(self, planned: PlannedRun, job: Path, config: dict) -> None:
        with open(job.parent / "train.log", "a") as log:
            proc = subprocess.Popen(command(job, config), stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent, env={**os.environ, "RUNNER_WORKER": "1"})
        self.procs[planned.spec.run_id] = (proc, planned, config["device"])

    def running(self) -> list[PlannedRun]:
        return [planned for _, planned, _ in self.procs.values()]

    def ended(self) -> list[Ended]:
        out = []
        for run_id, (proc, planned, _) in list(self.procs.items()):
            code = proc.poll()
            if code is not None:
                del self.procs[run_id]
                out.append(Ended(planned, code))
        return out

    def stop(self, run_id: str) -> None:
        proc = self.procs.get(run_id, (None,))[0]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    def stop_all(self) -> list[PlannedRun]:
        """From a terminal the workers got the same SIGINT; a `kill -INT` of the sweep alone is passed on."""
        for proc, _, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        stopped = []
        for proc, planned, _ in self.procs.values():
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            stopped.append(planned)
        self.procs.clear()
        return stopped
