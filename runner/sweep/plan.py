"""The plan of a sweep: what each run of an experiment file needs (run, resume, skip or hold), whether
its data is usable, and roughly how long it will take. Reads the registry and the run folders,
writes nothing, imports no paddle (the estimate builds networks only when asked for).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from runner.store.checkpoints import Checkpoints
from runner.errors import RunnerError
from runner.config import Experiment, RunSpec, evaluates_on_inference_engine
from runner.store.layout import SweepLayout
from runner.store.registry import RunRegistry
from runner.validation import parse_validation
from runner.store.runfiles import read_result


@dataclass
class PlannedRun:
    spec: RunSpec
    status: str  # in the registry before this sweep: new, queued, running, done, failed, interrupted
    action: str  # run, resume, skip (done), hold (failed, without --retry-failed)
    epochs_done: int = 0  # by a resumed run's newest checkpoint

    @property
    def to_do(self) -> bool:
        return self.action in ("run", "resume")


def plan_sweep(experiment: Experiment, registry: RunRegistry | None, retry_failed: bool = False) -> list[PlannedRun]:
    layout = SweepLayout.for_experiment(experiment.name)
    planned = []
    for spec in experiment.runs:
        run = layout.run(spec.run_id)
        row = registry.get(spec.run_id) if registry else None
        status = row["status"] if row else "new"
        epochs_done = 0
        if status == "done" or read_result(run):
            action = "skip"
        elif status == "failed" and not retry_failed:
            action = "hold"
        else:
            epochs_done = Checkpoints(run.checkpoints).newest_epoch()
            action = "resume" if epochs_done else "run"
        planned.append(PlannedRun(spec, status, action, epochs_done))
    return planned


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
    n_train = max(1, round(n_train * config.get("train_fraction", 1.0)))
    if evaluates_on_inference_engine(config):
        n_val /= INFERENCE_EVAL_GAIN
    flop = 2 * macs * (3 * n_train + n_val) * (config["epochs"] - epochs_done)
    cores = slots_needed(config, on_gpus=False)
    return flop / (GFLOPS_PER_PROCESS * 1e9 * (1 + EXTRA_CORE_GAIN * (cores - 1))) / 60
