#!/usr/bin/env python3
"""How close the plan's time estimate comes to a sweep's wall time once this machine has measured
a sweep, in one invocation: experiments/quick.toml is swept in a fresh output root (its runs and
the sweep itself are the measurements), then the same runs, in a fresh folder of that root, are
planned (`runner sweep --dry-run`) and swept again. Prints planned against actual wall time and
their ratio, for both sweeps (the first is planned from the defaults: nothing measured yet).

    nice -n 10 python bench/estimate.py            # trains quick.toml's three small runs twice
    python bench/estimate.py --jobs 1 --file experiments/quick.toml
"""
from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def runner(*args, env) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "runner", *map(str, args)], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"runner {' '.join(map(str, args))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def planned_seconds(dry_run_output: str) -> float:
    """The plan line's "about H:MM:SS" (or M:SS) in seconds."""
    match = re.search(r"^plan: .*; about ((?:\d+:)?\d+:\d\d) at", dry_run_output, re.M)
    if not match:
        raise SystemExit(f"no estimate in the plan:\n{dry_run_output}")
    seconds = 0
    for part in match.group(1).split(":"):
        seconds = 60 * seconds + int(part)
    return float(seconds)


def run_walls(folder: Path) -> dict[str, float]:
    """Each run's wall time in the sweep's registry (its worker's start to its end)."""
    db = sqlite3.connect(f"file:{folder / 'runs.sqlite'}?mode=ro", uri=True)
    try:
        return {run_id: finished - started for run_id, started, finished in
                db.execute("SELECT id, started_at, finished_at FROM runs WHERE status = 'done'")}
    finally:
        db.close()


def sweep(file: Path, jobs: list[str], env) -> tuple[float, float, str, float]:
    """(planned seconds, wall seconds, the dry run's table, the mean load average while it ran) of
    one sweep of `file`."""
    plan = runner("sweep", file, "--dry-run", *jobs, env=env).stdout
    loads, done = [], threading.Event()

    def sample():  # the 1-minute load average every 5 s: what else the cores were doing
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    runner("sweep", file, *jobs, env=env)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    return planned_seconds(plan), wall, plan, sum(loads) / len(loads) if loads else os.getloadavg()[0]


def measured(root: Path, file: Path) -> str:
    """What the estimate has measured in `root` for `file`'s runs: fixed parts and seconds an epoch."""
    sys.path.insert(0, str(REPO))
    from runner.config import load_experiment
    from runner.sweep.estimate import MachineTimings

    timings = MachineTimings.measured_in(root)
    lines = [f"  measured: sweep start {timings.start_seconds():.1f} s, report {timings.report_seconds(1):.1f} s a run"]
    for spec in load_experiment(file).runs:
        cost = timings.cost(spec.config)
        lines.append(f"  {spec.config['model']}: head {cost.head:.1f} s, {cost.epochs} epochs of {cost.epoch:.1f} s, "
                     f"tail {cost.tail:.1f} s = {cost.seconds:.1f} s ({cost.source})")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=REPO / "experiments" / "quick.toml")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RUNNER_DATA_ROOT", REPO.parent / "shared" / "data")))
    ap.add_argument("--jobs", type=int, help="runs at a time (default: the sweep's, one per core)")
    args = ap.parse_args()
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    text = args.file.read_text()
    name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M).group(1)

    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        root = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(root), "RUNNER_DATA_ROOT": str(args.data),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        again = Path(tmp) / f"{name}-again.toml"
        again.write_text(re.sub(r'^name\s*=\s*"[^"]+"', f'name = "{name}-again"', text, count=1, flags=re.M))
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        rows = []
        for label, file in (("first sweep (nothing measured)", args.file), ("second sweep (measured)", again)):
            planned, wall, plan, load = sweep(file, jobs, env)
            rows.append((label, planned, wall, load))
            print(plan.rstrip())
            folder = root / re.search(r'^name\s*=\s*"([^"]+)"', file.read_text(), re.M).group(1)
            print("  each run's wall seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in run_walls(folder).items()))
            print(measured(root, file))
        print(f"\n{'sweep':34} {'planned s':>10} {'actual s':>10} {'actual/planned':>15} {'mean load':>10}")
        for label, planned, wall, load in rows:
            print(f"{label:34} {planned:10.0f} {wall:10.1f} {wall / planned:15.2f} {load:10.2f}")
        print("(a load that differs between the sweeps changes how fast they train: the estimate is of this "
              "machine under the load it measured)")


if __name__ == "__main__":
    main()
