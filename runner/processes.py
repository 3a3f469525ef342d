"""Child processes that never outlive the runner, and the runner's workers on this machine."""
import ctypes
import os
import signal
import time
from pathlib import Path

WORKER_MODULE = "runner.run.worker"  # how runner/store/jobs.py starts a worker (`python -m`) ...
WORKER_FILE = "runner/run/worker.py"  # ... or, under paddle.distributed.launch, by its file
LAUNCHER_MODULE = "paddle.distributed.launch"  # how jobs.py starts a run of several processes


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the child gets SIGKILL when its parent dies, even by kill -9, so a
    restarted sweep never finds an orphan still writing the run it is about to resume, and no
    VisualDL server is left behind."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def die_with_launcher() -> None:
    """For a worker that paddle.distributed.launch started: SIGKILL when the launcher dies. The
    launcher dies with the sweep (die_with_parent), but paddle starts its processes without it, so a
    killed sweep would leave them training the run it resumes next. A worker whose launcher is gone
    already ends here."""
    die_with_parent()
    parent = command_line(os.getppid())
    if parent is not None and LAUNCHER_MODULE not in parent:  # None: no /proc, nothing to check
        os.kill(os.getpid(), signal.SIGKILL)


def command_line(pid: int | str) -> list[str] | None:
    """A process's arguments from Linux's /proc; None if it is gone, not ours to read, or there is no /proc."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None


def job_of(argv: list[str]) -> str | None:
    """The job file a runner worker's command line runs ("" if it names none), None for any other
    process. paddle's launcher of a run of several processes names it as its workers do."""
    for i, arg in enumerate(argv):
        if arg == WORKER_MODULE or arg.endswith(WORKER_FILE):
            return argv[i + 1] if i + 1 < len(argv) else ""
    return None


def runner_jobs() -> dict[int, str]:
    """{pid: job file} of this machine's runner worker processes (and launchers of them). Linux's
    /proc; elsewhere none are seen. A process still inside exec has an empty command line there
    and is not seen yet."""
    out = {}
    for proc in Path("/proc").glob("[0-9]*"):
        argv = command_line(proc.name)
        job = job_of(argv) if argv is not None else None  # None: gone meanwhile, or not ours to read
        if job is not None:
            out[int(proc.name)] = job
    return out


def runner_workers(under: str | None = None) -> list[int]:
    """pids of this machine's runner worker processes, those whose job lies under `under` only, if given."""
    return [pid for pid, job in runner_jobs().items() if under is None or under in job]


def other_runs(own_job: str | None, jobs: dict[int, str] | None = None) -> int:
    """How many runs train here (among `jobs`, else runner_jobs()) besides the one of `own_job`: a
    run of several processes, its launcher included, counts once."""
    return len(set((runner_jobs() if jobs is None else jobs).values()) - {own_job})


def machine_load() -> dict:
    """Under which load a timing is taken: the 1-minute load average and the other runs training here."""
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"cost_load_average": load, "cost_other_runs": other_runs(job_of(command_line("self") or []))}


def process_age() -> float | None:
    """Seconds since this process started, the interpreter's start and the imports included (Linux's
    /proc: its start in clock ticks after boot, against the seconds since boot); None elsewhere."""
    try:
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def process_started() -> float:
    """time.perf_counter() at this process's start (at this call where /proc cannot say)."""
    return time.perf_counter() - (process_age() or 0.0)
