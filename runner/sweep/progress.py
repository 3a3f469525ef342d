"""Where a sweep stands, from its events: each run's epoch, elapsed time and time left, and the
sweep's. The CLI shows it as a live table on a terminal and as one line per event elsewhere (a file,
a pipe, CI), so a long sweep keeps saying what it does.

Time left: a running run's remaining epochs at its own measured pace; a queued run's plan estimate
(runner/sweep/plan.py), scaled by how the runs finished in this sweep compared with their estimates.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from runner.errors import first_line
from runner.sweep.plan import PlannedRun


@dataclass
class RunState:
    run_id: str
    name: str
    epochs: int
    status: str = "queued"
    epoch: int = 0
    epochs_at_start: int = 0
    started: float | None = None
    epoch_times: list[float] = field(default_factory=list)
    estimate: float | None = None  # minutes, from the plan
    step: tuple[int, int, int] | None = None  # (epoch, step, steps) of the newest step it wrote
    val: dict = field(default_factory=dict)  # the last finished epoch's validation scores
    outcome: str = ""  # how it ended: its score, or why it stopped

    @property
    def detail(self) -> str:
        """The progress cell, built from where the run is: its outcome once it ended, else the step
        of the epoch it trains and the last epoch's scores (never text appended to text)."""
        if self.outcome:
            return self.outcome
        training = self.step and self.status == "running" and self.step[0] > self.epoch  # an epoch not finished
        step = f"step {self.step[1]}/{self.step[2]}" if training else ""
        return "  ".join(part for part in (step, self.scores()) if part)

    def scores(self) -> str:
        shown = [f"{k} {self.val[k]:.4f}" for k in ("acc", "auc", "loss") if k in self.val]
        return "val " + " ".join(shown) if shown else ""

    def seconds_left(self, scale: float) -> float | None:
        if self.status == "running" and self.epoch_times:
            pace = sum(self.epoch_times) / len(self.epoch_times)
            return pace * (self.epochs - self.epoch)
        if self.status in ("queued", "running") and self.estimate is not None:
            done = self.epoch / self.epochs if self.epochs else 0.0
            return self.estimate * 60 * scale * (1 - done)
        return None


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class SweepProgress:
    def __init__(self, parallel: int = 1, estimate=None):
        """`estimate(planned) -> minutes or None`, for queued runs; `parallel`: runs at a time."""
        self.runs: dict[str, RunState] = {}
        self.parallel, self.estimate = max(1, parallel), estimate
        self.started = time.monotonic()
        self.estimated_done: list[tuple[float, float]] = []  # (estimate s, actual s) of finished runs
        self.to_come: list[float | None] = []  # plan minutes of the runs a search has yet to ask for
        self.to_come_said = False

    # ---- events: on_event(kind, **details) calls on_<kind>(**details) --------------------------------

    def on_event(self, kind: str, **details) -> str | None:
        """Update from a sweep event; the line to log for it, if it deserves one."""
        handler = getattr(self, f"on_{kind}", None)
        return handler(**details) if handler else None

    def on_plan(self, planned: list[PlannedRun]) -> str | None:
        for p in planned:
            status = {"skip": p.status if p.status == "pruned" else "done", "hold": "failed (held)",
                      "stale": "stale (refused)"}.get(p.action, "queued")
            state = RunState(p.spec.run_id, p.spec.display_name, p.spec.config["epochs"], status,
                             epoch=p.epochs_done, epochs_at_start=p.epochs_done)
            if p.to_do and self.estimate:
                state.estimate = self.estimate(p)
            self.runs[state.run_id] = state
        todo = [r for r in self.runs.values() if r.status == "queued"]
        if not self.runs:
            return None
        return (f"plan: {len(self.runs)} runs, {len(todo)} to train; about {clock(self.seconds_left())} "
                f"at {self.parallel} at a time")

    def on_added(self, planned: PlannedRun) -> None:
        """A run a search adds as it goes."""
        p = planned
        self.runs[p.spec.run_id] = RunState(p.spec.run_id, p.spec.display_name, p.spec.config["epochs"],
                                            epoch=p.epochs_done, epochs_at_start=p.epochs_done,
                                            estimate=self.estimate(p) if self.estimate else None)

    def on_expected(self, specs: list) -> str | None:
        """The runs a search will still add: their settings are not drawn yet."""
        self.to_come = [self.estimate(PlannedRun(spec, "new", "run", 0)) if self.estimate else None for spec in specs]
        if self.to_come_said:  # once: the search's plan
            return None
        self.to_come_said = True
        queued = sum(r.status in ("queued", "running") for r in self.runs.values())
        return (f"plan: {queued} runs queued and {len(self.to_come)} to come; about "
                f"{clock(self.seconds_left())} at {self.parallel} at a time")

    def on_note(self, message: str) -> str:
        return f"note: {message}"

    def on_started(self, planned: PlannedRun) -> str:
        run = self.runs[planned.spec.run_id]
        run.status, run.started, run.step, run.outcome = "running", time.monotonic(), None, ""
        resumed = f", resuming after epoch {run.epoch}" if run.epoch else ""
        return f"started {run.run_id} ({run.name}){resumed}; {self.sweep_times()}"

    def on_epoch(self, planned: PlannedRun, record: dict) -> str:
        run = self.runs[planned.spec.run_id]
        run.epoch = record["epoch"]
        if record.get("seconds"):
            run.epoch_times.append(record["seconds"])
        run.val = record.get("val") or {}
        return (f"epoch {run.epoch}/{run.epochs} {run.run_id}: {run.scores()}; run {clock(self.run_elapsed(run))} "
                f"elapsed, {clock(run.seconds_left(self.scale()))} left; {self.sweep_times()}")

    def on_progress(self, run_id: str, progress: dict) -> None:
        run, p = self.runs.get(run_id), progress
        if run and p.get("event") == "step" and p.get("step") and p.get("steps"):
            run.step = (p.get("epoch", 0), p["step"], p["steps"])

    def on_finished(self, planned: PlannedRun, status: str, result: dict | None = None, error: str = "") -> str:
        run = self.runs[planned.spec.run_id]
        run.status = status
        if status == "done":
            run.epoch = result.get("epochs_run", run.epoch)
            run.outcome = line = f"val acc {result['final'].get('acc', float('nan')):.2%} in {result['train_seconds']:.0f}s"
            if run.estimate and run.started:
                self.estimated_done.append((run.estimate * 60 * (1 - run.epochs_at_start / run.epochs),
                                            time.monotonic() - run.started))
        else:
            line = error.strip()
            run.outcome, run.step = first_line(line, 160), None
            if status == "interrupted" and "resuming" in error:
                run.status = "queued"
        return f"{status} {run.run_id}: {line}; {self.sweep_times()}"

    # ---- times -------------------------------------------------------------------------------------

    def run_elapsed(self, run: RunState) -> float | None:
        return time.monotonic() - run.started if run.started else None

    def scale(self) -> float:
        """How long runs took against their plan estimate in this sweep so far (1 before any finished)."""
        if not self.estimated_done:
            return 1.0
        return sum(actual for _, actual in self.estimated_done) / max(1e-9, sum(est for est, _ in self.estimated_done))

    def seconds_left(self) -> float | None:
        open_runs = [r for r in self.runs.values() if r.status in ("queued", "running")]
        lefts = [r.seconds_left(self.scale()) for r in open_runs]
        lefts += [None if m is None else m * 60 * self.scale() for m in self.to_come]
        if any(left is None for left in lefts):
            return None
        return sum(lefts) / min(self.parallel, max(1, len(lefts)))

    def sweep_times(self) -> str:
        return f"sweep {clock(time.monotonic() - self.started)} elapsed, {clock(self.seconds_left())} left"

    def rows(self) -> list[tuple[str, ...]]:
        """For the live table: run, name, status, epoch n/N, elapsed, left, detail."""
        out = []
        for run in self.runs.values():
            elapsed = self.run_elapsed(run) if run.status == "running" else None
            left = run.seconds_left(self.scale()) if run.status in ("running", "queued") else None
            out.append((run.run_id, run.name, run.status, f"{run.epoch}/{run.epochs}",
                        clock(elapsed) if elapsed is not None else "", clock(left) if left is not None else "",
                        run.detail))
        return out
