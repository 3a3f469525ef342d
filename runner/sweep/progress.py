"""Where a sweep stands, from its events: each run's epoch, elapsed time and time left, and the
sweep's. The CLI shows it as a live table on a terminal and as one line per event elsewhere (a file,
a pipe, CI), so a long sweep keeps saying what it does.

Time left is what this machine measured (runner/sweep/estimate.py): a queued run's fixed part and
epochs; a running run's epochs still to train at the pace of those it finished in this sweep, then
its tail; the sweep's, these runs started in order on its cores, then the scoring on corrupted
images of the runs whose file asks for their robustness (which starts once all have trained), then
its closing report. Every epoch and run that finishes is measured too, so the estimate refines as
the sweep goes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from runner.errors import first_line
from runner.sweep.estimate import MachineTimings, RunCost, epoch_seconds, makespan
from runner.sweep.plan import PlannedRun, slots_needed


@dataclass
class RunState:
    run_id: str
    name: str
    config: dict
    status: str = "queued"
    epoch: int = 0
    epochs_at_start: int = 0  # where this attempt began
    started: float | None = None
    epoch_times: list[float] = field(default_factory=list)  # seconds of the epochs of this attempt
    last_epoch_at: float | None = None
    cost: RunCost | None = None  # what the plan expects of it, from where it stands
    step: tuple[int, int, int] | None = None  # (epoch, step, steps) of the newest step it wrote
    val: dict = field(default_factory=dict)  # the last finished epoch's validation scores
    outcome: str = ""  # how it ended: its score, or why it stopped

    @property
    def epochs(self) -> int:
        return self.config["epochs"]

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

    def seconds_left(self, now: float) -> float | None:
        """A queued run's whole cost; a running one's epochs to go at its own pace in this attempt
        (the plan's before it finished one), less what the current one has run, and its tail."""
        if self.status not in ("queued", "running") or self.cost is None:
            return None
        if self.status == "queued" or self.started is None:
            return self.cost.seconds
        if not self.epoch_times:  # never below its tail: it has not finished training
            return max(self.cost.seconds - (now - self.started), self.cost.tail)
        pace = sum(self.epoch_times) / len(self.epoch_times)
        since = now - self.last_epoch_at
        if self.epoch < self.epochs:
            return max(pace * (self.epochs - self.epoch) - since, 0.0) + self.cost.tail
        return max(self.cost.tail - since, 0.0)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Scoring:
    """A run's scoring on corrupted images, after the file's runs have trained: its estimated
    `seconds`, when its worker started, and whether it has ended (done, failed or interrupted)."""
    seconds: float | None
    started: float | None = None
    ended: bool = False

    def seconds_left(self, now: float) -> float | None:
        if self.seconds is None or self.started is None:
            return self.seconds
        return max(self.seconds - (now - self.started), 0.0)


class SweepProgress:
    def __init__(self, parallel: int = 1, timings: MachineTimings | None = None):
        """`parallel`: the cores (or GPUs) runs share; `timings`: what this machine measured so far."""
        self.runs: dict[str, RunState] = {}
        self.parallel, self.timings = max(1, parallel), timings or MachineTimings()
        self.started = time.monotonic()
        self.to_come: list[dict] = []  # configs of the runs a search has yet to ask for
        self.to_come_said = False
        self.scoring: dict[str, Scoring] = {}  # by run id: the robustness still to score

    # ---- events: on_event(kind, **details) calls on_<kind>(**details) --------------------------------

    def on_event(self, kind: str, **details) -> str | None:
        """Update from a sweep event; the line to log for it, if it deserves one."""
        handler = getattr(self, f"on_{kind}", None)
        return handler(**details) if handler else None

    def on_plan(self, planned: list[PlannedRun]) -> str | None:
        for p in planned:
            status = {"skip": p.status if p.status == "pruned" else "done", "hold": "failed (held)",
                      "stale": "stale (refused)"}.get(p.action, "queued")
            self.add(p, status)
        self.plan_scoring(planned)
        todo = [r for r in self.runs.values() if r.status == "queued"]
        if not self.runs:
            return None
        scored = f", {len(self.scoring)} to score on corrupted images" if self.scoring else ""
        return (f"plan: {len(self.runs)} runs, {len(todo)} to train{scored}; about {clock(self.seconds_left())} "
                f"at {self.parallel} at a time")

    def plan_scoring(self, planned: list[PlannedRun]) -> None:
        """The scoring each run's robustness still needs; the first run of each dataset and image
        size also makes the corrupted copies the others read from the cache."""
        sizes = set()
        for p in planned:
            if p.robustness_sets:
                c = p.spec.config
                size = (c["dataset"], c["image_size"], c.get("validation"), c.get("fold"), c.get("val_limit"))
                self.scoring[p.spec.run_id] = Scoring(self.timings.scoring_seconds(c, p.robustness_sets,
                                                                                   size not in sizes))
                sizes.add(size)

    def add(self, planned: PlannedRun, status: str = "queued") -> RunState:
        p = planned
        run = RunState(p.spec.run_id, p.spec.display_name, p.spec.config, status, epoch=p.epochs_done,
                       epochs_at_start=p.epochs_done)
        if status == "queued":
            run.cost = self.timings.cost(run.config, run.epoch)
        self.runs[run.run_id] = run
        return run

    def on_added(self, planned: PlannedRun) -> None:
        """A run a search adds as it goes."""
        self.add(planned)

    def on_expected(self, specs: list) -> str | None:
        """The runs a search will still add: their settings are not drawn yet."""
        self.to_come = [spec.config for spec in specs]
        if self.to_come_said:  # once: the search's plan
            return None
        self.to_come_said = True
        queued = sum(r.status in ("queued", "running") for r in self.runs.values())
        return (f"plan: {queued} runs queued and {len(self.to_come)} to come; about "
                f"{clock(self.seconds_left())} at {self.parallel} at a time")

    def on_note(self, message: str) -> str:
        return f"note: {message}"

    def on_robustness(self, run_id: str, message: str, phase: str = "progress") -> str:
        """A finished run scored on corrupted images (runner/sweep/robustness.py); `phase`: started,
        progress, requeued or ended."""
        scoring = self.scoring.get(run_id)
        if scoring and phase in ("started", "requeued"):
            scoring.started = time.monotonic() if phase == "started" else None
        elif scoring and phase == "ended":
            scoring.ended = True
        return f"robustness {run_id}: {message}"

    def on_started(self, planned: PlannedRun) -> str:
        run = self.runs[planned.spec.run_id]
        run.status, run.started, run.step, run.outcome = "running", time.monotonic(), None, ""
        run.epochs_at_start, run.epoch_times = run.epoch, []
        run.cost = self.timings.cost(run.config, run.epoch)
        resumed = f", resuming after epoch {run.epoch}" if run.epoch else ""
        return f"started {run.run_id} ({run.name}){resumed}; {self.sweep_times()}"

    def on_epoch(self, planned: PlannedRun, record: dict) -> str:
        run = self.runs[planned.spec.run_id]
        run.epoch, run.last_epoch_at = record["epoch"], time.monotonic()
        if record.get("seconds"):
            run.epoch_times.append(record["seconds"])  # this run's time left: at its pace as it goes now
            self.timings.add_epochs(run.config, epoch_seconds(record, run.config) or record["seconds"])
            self.refresh()
        run.val = record.get("val") or {}
        return (f"epoch {run.epoch}/{run.epochs} {run.run_id}: {run.scores()}; run {clock(self.run_elapsed(run))} "
                f"elapsed, {clock(run.seconds_left(time.monotonic()))} left; {self.sweep_times()}")

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
            self.learn_fixed_part(run, result)
        else:
            line = error.strip()
            run.outcome, run.step = first_line(line, 160), None
            if status == "interrupted" and "resuming" in error:
                run.status = "queued"
                run.cost = self.timings.cost(run.config, run.epoch)
        return f"{status} {run.run_id}: {line}; {self.sweep_times()}"

    def learn_fixed_part(self, run: RunState, result: dict) -> None:
        """A finished run's head and tail, for the runs still to come: its tail is all of its wall time
        that neither its setup nor its epochs took (the cost to run, Grad-CAM, files, the exit)."""
        head = result.get("setup_seconds")
        if head is None or run.started is None:
            return
        wall = time.monotonic() - run.started
        self.timings.add_fixed(run.config, head, max(result.get("finish_seconds") or 0.0,
                                                     wall - head - sum(run.epoch_times)))
        self.refresh()

    def refresh(self) -> None:
        """The queued runs' costs, after something more was measured."""
        for queued in self.runs.values():
            if queued.status == "queued":
                queued.cost = self.timings.cost(queued.config, queued.epoch)

    # ---- times -------------------------------------------------------------------------------------

    def run_elapsed(self, run: RunState) -> float | None:
        return time.monotonic() - run.started if run.started else None

    def seconds_left(self) -> float | None:
        """The open runs, those running going on and the queued started in order as cores free up,
        then the sweep's closing report."""
        now = time.monotonic()
        open_runs = [r for r in self.runs.values() if r.status in ("queued", "running")]
        cores = lambda config: slots_needed(config, config.get("device", "cpu").startswith("gpu"))  # noqa: E731
        running = [(r.seconds_left(now), cores(r.config)) for r in open_runs if r.status == "running"]
        queued = [(r.seconds_left(now), cores(r.config)) for r in open_runs if r.status == "queued"]
        for config in self.to_come:
            cost = self.timings.cost(config)
            queued.append((cost.seconds if cost else None, cores(config)))
        scoring = [s for s in self.scoring.values() if not s.ended]
        scoring_running = [(s.seconds_left(now), 1) for s in scoring if s.started is not None]
        scoring_queued = [(s.seconds_left(now), 1) for s in scoring if s.started is None]
        if any(left is None for left, _ in running + queued + scoring_running + scoring_queued):
            return None
        if not running and not queued and not scoring:
            return 0.0
        # before any run started (the plan's line, a dry run) the sweep's own start counts whole
        start = 0.0 if any(r.started for r in self.runs.values()) else self.timings.start_seconds()
        return (start + makespan(running, queued, self.parallel)
                + makespan(scoring_running, scoring_queued, self.parallel) + self.timings.report_seconds(len(self.runs)))

    def sweep_times(self) -> str:
        return f"sweep {clock(time.monotonic() - self.started)} elapsed, {clock(self.seconds_left())} left"

    def rows(self) -> list[tuple[str, ...]]:
        """For the live table: run, name, status, epoch n/N, elapsed, left, detail."""
        out, now = [], time.monotonic()
        for run in self.runs.values():
            elapsed = self.run_elapsed(run) if run.status == "running" else None
            left = run.seconds_left(now)
            out.append((run.run_id, run.name, run.status, f"{run.epoch}/{run.epochs}",
                        clock(elapsed) if elapsed is not None else "", clock(left) if left is not None else "",
                        run.detail))
        return out
