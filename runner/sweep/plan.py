"""The plan of a sweep: what each run of an experiment file needs (run, resume, skip or hold), whether
its data is usable, whether what it recorded was computed on the data there is now, and roughly how
long it will take. Reads the registry, the run folders and the data, writes nothing, imports no
paddle (the estimate builds networks only when asked for).

A run that finished, or was interrupted, on other data than there is now (labels corrected, images
added, removed or rewritten, another holdout) is `stale`: the sweep refuses it, naming the run and
what changed, since skipping it would keep a number computed on other data and resuming it would mix
two datasets in one history. With --retrain-stale it is `retrain`: its files are moved aside and it
trains afresh.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from runner.store.checkpoints import Checkpoints
from runner.errors import RunnerError
from runner.config import RUN_FIELDS, Experiment, RunSpec, evaluates_on_inference_engine
from runner.store.fingerprint import RETRAIN_HINT, what_changed
from runner.store.layout import RunLayout, SweepLayout
from runner.store.registry import RunRegistry
from runner.validation import parse_validation
from runner.store.runfiles import read_json, read_result

# The settings that choose a run's images: runs alike in these train and are scored on the same data.
DATA_KEYS = ("dataset", "validation", "fold", "train_limit", "val_limit")


@dataclass
class PlannedRun:
    spec: RunSpec
    status: str  # in the registry before this sweep: new, queued, running, done, failed, interrupted
    action: str  # run, resume, skip (done), hold (failed, without --retry-failed), stale, retrain (see above)
    epochs_done: int = 0  # by a resumed run's newest checkpoint
    stale: tuple[str, str] | None = None  # (what it did, what changed) when its record is of other data

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

            dataset, validation, fold, train_limit, val_limit = key
            try:
                self.known[key] = fingerprint_of(dataset, self.data_root, validation, train_limit, val_limit,
                                                 self.cache_dir, fold)
            except RunnerError:
                self.known[key] = None
        return self.known[key]


def recorded_data(run: RunLayout, status: str) -> tuple[str, dict] | None:
    """(what the run did, the fingerprint of its data) from its result, or from its checkpoints if it
    stopped before finishing; None if it recorded nothing, or no fingerprint (an older runner's)."""
    result = read_result(run)
    if result:
        return ("finished", result["data"]) if result.get("data") else None
    epochs = Checkpoints(run.checkpoints).newest_epoch()
    data = (read_json(run.checkpoints / "run.json") or {}).get("data") if epochs else None
    how = {"pruned": "was pruned", "failed": "failed"}.get(status, "was interrupted")
    return (f"{how} after epoch {epochs}", data) if data else None


def data_change(run: RunLayout, config: dict, status: str, data: DataNow) -> tuple[str, str] | None:
    """The stale check, one for the plan, the search and `runner train`: (what the run did, what
    changed in its data since), or None if its record is of the data there is now (or says nothing)."""
    recorded = recorded_data(run, status)
    now = data.of(config) if recorded else None
    change = what_changed(recorded[1], now) if now else None
    return (recorded[0], change) if change else None


def plan_run(spec: RunSpec, layout: SweepLayout, registry: RunRegistry | None, data: DataNow,
             retry_failed: bool = False, retrain_stale: bool = False) -> PlannedRun:
    """What one run needs: skip (done, or pruned by a search), hold (failed), resume, run, or, if what
    it recorded is of other data than there is now, stale (retrain with `retrain_stale`)."""
    run = layout.run(spec.run_id)
    row = registry.get(spec.run_id) if registry else None
    status = row["status"] if row else "new"
    epochs_done = 0
    if status in ("done", "pruned") or read_result(run):
        action = "skip"
    elif status == "failed" and not retry_failed:
        action = "hold"
    else:
        epochs_done = Checkpoints(run.checkpoints).newest_epoch()
        action = "resume" if epochs_done else "run"
    stale = data_change(run, spec.config, status, data) if action in ("skip", "resume") else None
    if stale:
        action, epochs_done = ("retrain" if retrain_stale else "stale"), 0
    return PlannedRun(spec, status, action, epochs_done, stale)


def plan_sweep(experiment: Experiment, registry: RunRegistry | None, retry_failed: bool = False, data_root=None,
               retrain_stale: bool = False) -> list[PlannedRun]:
    layout = SweepLayout.for_experiment(experiment.name)
    data = DataNow(data_root, layout.cache)
    return [plan_run(spec, layout, registry, data, retry_failed, retrain_stale) for spec in experiment.runs]


def stale_refusal(planned: list[PlannedRun], layout: SweepLayout, search: bool = False) -> str | None:
    """The one line that refuses the stale runs of a plan, naming each, what changed and how to go on."""
    stale = [p for p in planned if p.action == "stale"]
    if not stale:
        return None
    by_change: dict[str, list[str]] = {}
    for p in stale:
        by_change.setdefault(p.stale[1], []).append(f"{p.spec.run_id} {p.stale[0]}")
    runs = "; ".join(", ".join(names) + f" ({change})" for change, names in by_change.items())
    what = (f"{len(stale)} run{'s' if len(stale) > 1 else ''} of {layout.root} {'were' if len(stale) > 1 else 'was'} "
            f"trained or scored on other data than there is now, so two datasets would mix: {runs}")
    if search:
        return (f"{what}. The search's study holds the scores of those runs, so it cannot go on with the data now: "
                f"move {layout.root} aside (or give the search another name) to start a new study on the data now, "
                "or restore the data")
    hint = RETRAIN_HINT.format(them="them" if len(stale) > 1 else "it", stale=layout.stale)
    return f"{what}. {hint[0].upper()}{hint[1:]}"


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


# ---- cost estimate for the plan ------------------------------------------------------------------

KNOWN_SIZES = {"ichallenge-pm": (400, 400), "cifar10": (50000, 10000)}
# Sustained throughput of one training process in GFLOP/s (2 x multiply-accumulates), training plus
# evaluation: the median of experiments/all.toml's runs on the machine of docs/performance.md (34-46
# for AlexNet and ResNet-50, 60-72 for VGG-16). A rough guide: other machines differ.
GFLOPS_PER_PROCESS = 48.0
# What each further core of a run (threads or nproc) adds: 2 cores ran 1.5-1.8x one.
EXTRA_CORE_GAIN = 0.6
# How much faster paddle's inference engine evaluates than the dynamic graph (bench/eval_engine.py:
# 1.6-2.2x on trained course networks).
INFERENCE_EVAL_GAIN = 1.8


@lru_cache(maxsize=None)
def forward_macs(model: str, image_size: int, model_args_json: str = "{}") -> int | None:
    """Multiply-accumulates of one forward pass, computed once per network and size for the plan."""
    from runner.models import build_network, count_flops

    try:
        return count_flops(build_network(model, 2, image_size, **json.loads(model_args_json)), image_size)
    except Exception:  # a model that cannot take this size: the run itself will say why
        return None


def estimate_minutes(config: dict, epochs_done: int = 0) -> float | None:
    """Rough wall minutes of one run: forward+backward (3 x forward) on the training images, one
    forward on the validation images, every epoch still to train."""
    macs = forward_macs(config["model"], config["image_size"], json.dumps(config["model_args"], sort_keys=True))
    if not macs:
        return None
    n_train, n_val = KNOWN_SIZES.get(config["dataset"], (1000, 200))
    n_train = min(n_train, config["train_limit"] or n_train)
    n_val = min(n_val, config["val_limit"] or n_val)
    scheme = parse_validation(config["validation"])
    if not scheme.official:  # the validation images are a share of the training images
        held_out = round(n_train * (scheme.fraction or 1 / max(1, scheme.folds)))
        n_train, n_val = n_train - held_out, held_out
    if evaluates_on_inference_engine(config):
        n_val /= INFERENCE_EVAL_GAIN
    flop = 2 * macs * (3 * n_train + n_val) * (config["epochs"] - epochs_done)
    cores = slots_needed(config, on_gpus=False)
    return flop / (GFLOPS_PER_PROCESS * 1e9 * (1 + EXTRA_CORE_GAIN * (cores - 1))) / 60
