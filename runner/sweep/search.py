"""Hyper-parameter search with Optuna: trials are runs, selection never sees the validation set.

    [search]                          beside [defaults] and the [[runs]] entry to search around
    trials = 40                       trials to finish (pruned ones count)
    sampler = "tpe"                   tpe | random
    pruner = "hyperband"              hyperband | median | none
    prune_after = 3                   epochs a trial trains before the pruner may stop it (default 1)
    objective = "auc"                 acc | auc | loss (loss is minimised)
    final_seeds = [0, 1, 2]           the best settings, trained on all training images, scored once
    [search.space]                    on the official validation set
    "optimizer.learning_rate" = { log = [1e-4, 3e-3] }
    image_size = { choice = [128, 160] }

The sweep process owns the study (Optuna's ask and tell) and is its only writer; the study lives in
the sweep's folder (study.sqlite, Optuna's own storage). Each trial is one run, or one run per fold
under `kfold:K`, started through the same executor as any run; each epoch's score, as the worker
reports it, goes to the pruner, and a pruned run stops at once with the status `pruned`: its
worker waits after each epoch for the sweep's verdict (runs/<id>/verdict.json), so how far a
trial trains never depends on how busy the machine is (folds judged together excepted). A trial's
runs follow from its settings, so a sweep killed at any moment picks its trials up again: nothing
finished is trained twice and no trial is counted twice.
"""
from __future__ import annotations

from pathlib import Path

from runner.config import ConfigError, Experiment, RunSpec, dotted, each_fold, identity, resolve
from runner.search_space import Dimension
from runner.store.runfiles import read_result
from runner.store.study import RECORD, check_study, open_study, record
from runner.sweep.loop import SweepLoop
from runner.sweep.plan import DataNow, plan_run
from runner.sweep.stale import refuse_stale


def suggest(trial, space: list[Dimension]) -> dict:
    """The trial's settings, drawn by Optuna's sampler."""
    params = {}
    for dim in space:
        if dim.kind == "choice":
            params[dim.key] = trial.suggest_categorical(dim.key, list(dim.values))
        elif dim.kind == "int":
            params[dim.key] = trial.suggest_int(dim.key, *dim.values)
        else:
            params[dim.key] = trial.suggest_float(dim.key, float(dim.values[0]), float(dim.values[1]),
                                                  log=dim.kind == "log")
    return params


def trial_specs(experiment: Experiment, params: dict) -> list[RunSpec]:
    """The runs of a trial: the base run with the trial's settings, one per fold under kfold."""
    search = experiment.search
    config = resolve(search.base, list(params.items()), search.overrides, str(experiment.path), "search trial")
    return [RunSpec(experiment.name, one) for one in each_fold(config)]


def final_specs(experiment: Experiment, params: dict, trial_number: int) -> list[RunSpec]:
    """The best settings on all training images, scored once on the official images, per final seed."""
    search = experiment.search
    specs = []
    for seed in search.final_seeds:
        settings = list(params.items()) + [("validation", "official"), ("fold", 0), ("seed", seed)]
        config = resolve(search.base, settings, search.overrides, str(experiment.path), "search final")
        config["label"] = f"{config['model']} selected by search (trial {trial_number}) seed={seed}"
        specs.append(RunSpec(experiment.name, config))
    return specs


def runs_to_come(experiment: Experiment, trials_left: int) -> list[RunSpec]:
    """The runs a search has yet to ask for, its final seeds included, as the base run stands in for
    settings not drawn yet: for the time-left estimate of a running search and of its dry run."""
    return trial_specs(experiment, {}) * max(0, trials_left) + final_specs(experiment, {}, 0)


def make_study(experiment: Experiment, storage_path, epochs: int):
    """The study of `experiment`, created or loaded from Optuna's storage in the sweep's folder; a
    damaged or foreign file, or a study of another search, is refused (runner/store/study.py)."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("a [search] needs Optuna, which is not installed: pip install -e '.[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = experiment.search
    base = dotted(identity(trial_specs(experiment, {})[0].config, ignore=("fold",)))
    wanted = record(search.objective, search.direction, search.space, base)
    try:
        existing = open_study(storage_path, experiment.name,
                              lambda storage: optuna.load_study(study_name=experiment.name, storage=storage))
        check_study(existing, wanted, Path(storage_path), experiment.name)
        seed = len(existing.trials)  # a resumed search seeds its sampler past its trials, or it would draw them again
    except KeyError:
        seed = 0
    sampler = (optuna.samplers.TPESampler(seed=seed) if search.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    # an epoch is a step: no trial is stopped before `prune_after` epochs (Hyperband's first rung)
    pruner = {"hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=search.prune_after,
                                                                  max_resource=max(1, epochs)),
              "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=search.prune_after),
              "none": optuna.pruners.NopPruner}[search.pruner]()
    created = open_study(storage_path, experiment.name, lambda storage: optuna.create_study(
        study_name=experiment.name, storage=storage, direction=search.direction, sampler=sampler, pruner=pruner,
        load_if_exists=True))
    if not seed:
        created.set_user_attr(RECORD, wanted)
    return created


# ---- the search loop: the sweep's loop, making its own work --------------------------------------

class SearchLoop(SweepLoop):
    """Asks Optuna for a trial when there is room, reports each epoch's score to its pruner, tells it
    each trial's result, and trains the best settings with the final seeds at the end."""

    def __init__(self, paths, registry, executor, data_root, on_event, experiment: Experiment, study):
        super().__init__(paths, registry, executor, data_root, on_event)
        self.experiment, self.study, self.search = experiment, study, experiment.search
        self.open: dict[int, dict] = {}  # trial number -> {"trial", "runs": [run ids], "scores", "reported"}
        self.trial_of: dict[str, int] = {}
        self.pruned: dict[str, str] = {}
        self.current: list[str] = []
        self.finals_started = False
        self.trials_to_come: int | None = None  # as last told to on_event("expected")

    # ---- bookkeeping -------------------------------------------------------------------------------

    def counted(self) -> int:
        """Trials that count towards `trials`: finished or pruned (a failed one does not)."""
        import optuna

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        return sum(t.state in states for t in self.study.get_trials(deepcopy=False))

    def failed(self) -> int:
        import optuna

        return sum(t.state == optuna.trial.TrialState.FAIL for t in self.study.get_trials(deepcopy=False))

    def add_runs(self, specs: list[RunSpec], pending: list, number: int | None) -> list[str]:
        """Register the runs in the registry (the sweep's only writer) and queue those the plan's rule
        says to run or resume (a search's failed runs run again: it has no --retry-failed); one recorded
        on other data than there is now stops the search (runner/sweep/stale.py)."""
        ids, data = [], DataNow(self.data_root, self.paths.cache)
        for spec in specs:
            run_id = spec.run_id
            ids.append(run_id)
            self.registry.add(run_id, spec.display_name, spec.config, 1000 + len(self.current))
            if run_id not in self.current:
                self.current.append(run_id)
            if number is not None:
                self.trial_of[run_id] = number
            planned = plan_run(spec, self.registry.get(run_id), self.paths.run_paths(run_id), retry_failed=True,
                               data=data)
            refuse_stale([planned], self.paths, search=True)
            if planned.to_do and all(p.spec.run_id != run_id for p in pending) and run_id not in {
                    p.spec.run_id for p in self.executor.running()}:
                pending.append(planned)
                self.on_event("added", planned=planned)
        self.registry.set_current(self.current, str(self.experiment.path))
        return ids

    def attach(self, trial, specs: list[RunSpec], pending: list) -> None:
        ids = self.add_runs(specs, pending, trial.number)
        self.open[trial.number] = {"trial": trial, "runs": ids, "scores": {r: {} for r in ids}, "reported": 0}
        self.settle(trial.number, pending)

    def resume_trials(self) -> list:
        """After a crash: every trial left running gets its runs back (they resume or are done)."""
        import optuna

        pending: list = []
        for frozen in self.study.get_trials(deepcopy=False):
            complete = len(frozen.params) == len(self.search.space)
            if frozen.state != optuna.trial.TrialState.RUNNING:
                if complete:  # its runs are the file's too: in the summary and the table
                    self.current += [s.run_id for s in trial_specs(self.experiment, frozen.params)
                                     if s.run_id not in self.current]
                continue
            if not complete:  # killed while it was being asked: it never had a run
                self.study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
                continue
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            self.attach(trial, trial_specs(self.experiment, frozen.params), pending)
        return pending

    # ---- the loop's hooks ------------------------------------------------------------------------------

    def top_up(self, pending: list) -> bool:
        if self.finals_started:
            return False
        room = self.executor.capacity() - len(self.executor.running()) - len(pending)
        while room > 0 and self.counted() + len(self.open) < self.search.trials and self.failed() < self.search.trials:
            trial = self.study.ask()
            self.attach(trial, trial_specs(self.experiment, suggest(trial, self.search.space)), pending)
            room = self.executor.capacity() - len(self.executor.running()) - len(pending)
        if self.open or (self.counted() < self.search.trials and self.failed() < self.search.trials):
            left = self.search.trials - self.counted() - len(self.open)
            if left != self.trials_to_come:  # top_up runs every poll: say it only when it changes
                self.trials_to_come = left
                self.on_event("expected", specs=runs_to_come(self.experiment, left))
            return True
        self.finals_started = True
        self.on_event("expected", specs=[])
        self.start_finals(pending)
        return False

    def start_finals(self, pending: list) -> None:
        try:
            best = self.study.best_trial
        except ValueError:
            self.on_event("note", message="no trial of the search finished: there are no settings to train the "
                                          "final seeds with")
            return
        self.on_event("note", message=f"search done: trial {best.number} is best ({self.search.objective} "
                                      f"{best.value:.4f}); training it with seeds {self.search.final_seeds} on all "
                                      "training images, scored on the official validation images")
        self.add_runs(final_specs(self.experiment, best.params, best.number), pending, None)

    def epoch_done(self, planned, record: dict) -> None:
        number = self.trial_of.get(planned.spec.run_id)
        state = self.open.get(number)
        if state is None or planned.spec.run_id in self.pruned:
            return
        value = (record.get("val") or {}).get(self.search.objective)
        if value is None:
            return
        state["scores"][planned.spec.run_id][record["epoch"]] = value
        epoch = state["reported"] + 1
        while all(epoch in s for s in state["scores"].values()):  # every fold has reached this epoch
            mean = sum(s[epoch] for s in state["scores"].values()) / len(state["scores"])
            state["trial"].report(mean, epoch)
            state["reported"] = epoch
            if state["trial"].should_prune():
                why = f"pruned by the search after epoch {epoch} ({self.search.objective} {mean:.4f})"
                for run_id in state["runs"]:
                    self.pruned[run_id] = why
                    self.executor.stop(run_id)
                return
            epoch += 1

    def judges_epochs(self, planned) -> bool:
        return self.search.pruner != "none" and planned.spec.run_id in self.trial_of

    def stopping(self, run_id: str) -> str | None:
        return self.pruned.get(run_id)

    def run_ended(self, planned, status: str) -> None:
        number = self.trial_of.get(planned.spec.run_id)
        if number in self.open:
            self.settle(number, None)

    def settle(self, number: int, pending: list | None) -> None:
        """Tell Optuna how a trial ended once all its runs have."""
        import optuna

        state = self.open[number]
        rows = [self.registry.get(run_id) for run_id in state["runs"]]
        if any(row["status"] in ("queued", "running", "interrupted") for row in rows):
            return
        del self.open[number]
        if any(row["status"] == "pruned" for row in rows):
            self.study.tell(number, state=optuna.trial.TrialState.PRUNED)
        elif any(row["status"] == "failed" for row in rows):
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        else:
            values = [read_result(self.paths.run_paths(r))["final"].get(self.search.objective) for r in state["runs"]]
            if any(v is None for v in values):
                self.study.tell(number, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(number, sum(values) / len(values))
