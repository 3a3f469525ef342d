"""The plan of a sweep: what each run of an experiment file needs (run, resume, skip or hold), whether
its data is usable, whether what it recorded was computed on the data there is now, and roughly how
long it will take (runner/sweep/estimate.py). Reads the registry, the run folders and the data, writes nothing, imports no
paddle (a network's cost is the zoo's answer, runner/zoo.py; paddle is imported only to refuse GPU
runs on a paddle without GPUs).

A run that finished, or was interrupted, on other data than there is now (labels corrected, images
added, removed or rewritten, another holdout) is `stale`: the sweep refuses it, naming the run and
what changed, since skipping it would keep a number computed on other data and resuming it would mix
two datasets in one history. With --retrain-stale it is `retrain`: its files are moved aside and it
trains afresh. So is, with --retrain-stale, a finished run whose predictions.npz disagrees with its
result.json (`damaged`); without it such a run is kept, and the sweep and the report say what is
left out for it (runner/store/runfiles.py checks the two files).
"""
from __future__ import annotations

from dataclasses import dataclass

from runner.config import RUN_FIELDS, Experiment, RunSpec
from runner.errors import RunnerError
from runner.store.checkpoints import Checkpoints
from runner.store.fingerprint import what_changed
from runner.store.layout import RunPaths, SweepPaths
from runner.store.registry import RunRegistry
from runner.store.runfiles import checked_predictions, read_json, read_result
from runner.sweep.corrupted_sets import missing_sets, protocol_of, protocol_sets, too_small
from runner.zoo import forward_macs_of

# The settings that choose a run's images: runs alike in these train and are scored on the same data.
DATA_KEYS = ("dataset", "validation", "fold", "train_limit", "val_limit", "train_fraction")


@dataclass
class PlannedRun:
    spec: RunSpec
    status: str  # in the registry before this sweep: new, queued, running, done, failed, interrupted, pruned
    action: str  # run, resume, skip (done or pruned), hold (failed, without --retry-failed), stale, retrain
    epochs_done: int = 0  # by a resumed run's newest checkpoint
    stale: tuple[str, str] | None = None  # (what it did, what changed) when its record is of other data
    # why a finished run's predictions.npz cannot stand beside its result.json (the report leaves out
    # what needs them; --retrain-stale trains it afresh), or None
    damaged: str | None = None
    # corrupted sets it is to be scored on once the file's runs have trained (its `robustness`)
    robustness_sets: int = 0

    @property
    def why_retrained(self) -> str:
        """'finished on other data than there is now (labels … changed)', after the run's id."""
        if self.damaged:
            return f"finished, but {self.damaged}"
        return f"{self.stale[0]} on other data than there is now ({self.stale[1]})"

    @property
    def to_do(self) -> bool:
        return self.action in ("run", "resume", "retrain")


class DataNow:
    """The fingerprints of the data runs would train on now, each computed once per choice of images
    (no image is decoded); None where the data cannot be read now (a run on it then says why)."""

    def __init__(self, data_root=None, cache_dir=None):
        self.data_root, self.cache_dir, self.known = data_root, cache_dir, {}

    def of(self, config: dict) -> dict | None:
        key = tuple(config.get(k, RUN_FIELDS[k][1]) for k in DATA_KEYS)
        if key not in self.known:
            from runner.data import fingerprint_of

            dataset, validation, fold, train_limit, val_limit, train_fraction = key
            try:
                self.known[key] = fingerprint_of(dataset, self.data_root, validation, train_limit, val_limit,
                                                 self.cache_dir, fold, train_fraction)
            except RunnerError:
                self.known[key] = None
        return self.known[key]


def recorded_data(paths: RunPaths, status: str) -> tuple[str, dict] | None:
    """(what the run did, the fingerprint of its data) from its result, or from its checkpoints if it
    stopped before finishing; None if it recorded nothing, or no fingerprint (an older runner's)."""
    result = read_result(paths)
    if result:
        return ("finished", result["data"]) if result.get("data") else None
    epochs = Checkpoints(paths.checkpoints).newest_epoch()
    data = (read_json(paths.run_json) or {}).get("data") if epochs else None
    how = {"pruned": "was pruned", "failed": "failed"}.get(status, "was interrupted")
    return (f"{how} after epoch {epochs}", data) if data else None


def data_change(paths: RunPaths, config: dict, status: str, data: DataNow) -> tuple[str, str] | None:
    """The stale check, one for the plan, the search and `runner train`: (what the run did, what
    changed in its data since), or None if its record is of the data there is now (or says nothing)."""
    recorded = recorded_data(paths, status)
    now = data.of(config) if recorded else None
    change = what_changed(recorded[1], now) if now else None
    return (recorded[0], change) if change else None


def plan_run(spec: RunSpec, row: dict | None, paths: RunPaths, retry_failed: bool = False,
             data: DataNow | None = None, retrain_stale: bool = False) -> PlannedRun:
    """What one run needs, for a sweep and a search alike: a run with a result, or done or pruned in
    the registry, is skipped (a pruned run was stopped on purpose: training it again would undo its
    search's decision); a failed one is held unless `retry_failed`; any other runs, or resumes from
    its newest checkpoint. A run to skip or resume whose record is of other data than `data` holds
    now is stale instead (retrain with `retrain_stale`)."""
    status = row["status"] if row else "new"
    result = read_result(paths)
    if status in ("done", "pruned") or result:
        planned = PlannedRun(spec, status, "skip")
    elif status == "failed" and not retry_failed:
        return PlannedRun(spec, status, "hold")
    else:
        epochs_done = Checkpoints(paths.checkpoints).newest_epoch()
        planned = PlannedRun(spec, status, "resume" if epochs_done else "run", epochs_done)
    stale = data_change(paths, spec.config, status, data) if data and planned.action != "run" else None
    if stale:
        return PlannedRun(spec, status, "retrain" if retrain_stale else "stale", 0, stale)
    checked = checked_predictions(paths, result) if result and planned.action == "skip" and status != "pruned" else None
    # outputs that are not finite are an older runner's diverged run: the report names it, not shown
    planned.damaged = checked.problem if checked and not checked.not_finite else None
    if planned.damaged and retrain_stale:
        planned.action = "retrain"
    return planned


def plan_sweep(experiment: Experiment, registry: RunRegistry | None, retry_failed: bool = False, data_root=None,
               retrain_stale: bool = False) -> list[PlannedRun]:
    """plan_run for every run of the file, its data checked against what each recorded; the
    networks of those to do are counted for the estimate in one go."""
    sweep = SweepPaths.for_experiment(experiment.name)
    data = DataNow(data_root, sweep.cache)
    planned = [plan_run(spec, registry.get(spec.run_id) if registry else None, sweep.run_paths(spec.run_id),
                        retry_failed, data, retrain_stale) for spec in experiment.runs]
    for p in planned:
        p.robustness_sets = sets_to_score(p, sweep.run_paths(p.spec.run_id))
    forward_macs_of([(c["model"], c["image_size"], c["model_args"]) for c in (p.spec.config for p in planned if p.to_do)])
    return planned


def sets_to_score(planned: PlannedRun, paths: RunPaths) -> int:
    """How many corrupted sets a run of a file asking for its robustness is still to be scored on
    after training (runner/sweep/robustness.py scores them): none for a run held, refused or whose
    predictions cannot be checked, or whose images are too small for the corruptions."""
    config = planned.spec.config
    if not config.get("robustness") or too_small(config) or planned.action in ("hold", "stale"):
        return 0
    protocol = protocol_of(config)
    if planned.action == "retrain":  # its robustness.json is set aside with its other files
        return protocol_sets(protocol)
    return 0 if planned.damaged else len(missing_sets(paths, protocol))


def slots_needed(config: dict, on_gpus: bool) -> int:
    """Cores a run keeps busy: its math threads in each of its processes; a GPU run counts one."""
    return 1 if on_gpus else max(1, config.get("threads", 1)) * max(1, config.get("nproc", 1))


def preflight_data(specs: list[RunSpec], data_root) -> None:
    """Refuse before anything trains if a dataset's files or labels are missing or inconsistent."""
    from runner.data import open_dataset
    from runner.data.source import DataSource

    for dataset in dict.fromkeys(s.config["dataset"] for s in specs):
        source = open_dataset(dataset, data_root)
        if type(source).files is DataSource.files:
            continue  # not a dataset of image files (Cifar10 reads one archive)
        problems = [p for split in source.split_names for p in source.listed(split)[2]]
        source.refuse_if(problems)


def preflight_devices(specs: list[RunSpec]) -> None:
    """Refuse GPU runs on a paddle without GPU support before any worker starts."""
    if not any(s.config["device"].startswith("gpu") for s in specs):
        return
    import paddle

    if not paddle.device.is_compiled_with_cuda():
        raise RunnerError("the runs ask for GPUs (device = \"gpu\" or --devices), but this paddlepaddle has no GPU "
                          "support; install paddlepaddle-gpu, or run on CPU without --devices")
