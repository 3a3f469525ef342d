"""The plan of a sweep: what each run of an experiment file needs (run, resume, skip or hold), whether
its data is usable, and roughly how long it will take. Reads the registry and the run folders,
writes nothing, imports no paddle (a network's cost is the zoo's answer, runner/zoo.py; paddle is
imported only to refuse GPU runs on a paddle without GPUs).
"""
from __future__ import annotations

from dataclasses import dataclass

from runner.config import Experiment, RunSpec, evaluates_on_inference_engine
from runner.data import published_sizes
from runner.errors import RunnerError
from runner.store.checkpoints import Checkpoints
from runner.store.layout import RunPaths, SweepPaths
from runner.store.registry import RunRegistry
from runner.store.runfiles import read_result
from runner.validation import parse_validation
from runner.zoo import forward_macs, forward_macs_of


@dataclass
class PlannedRun:
    spec: RunSpec
    status: str  # in the registry before this sweep: new, queued, running, done, failed, interrupted, pruned
    action: str  # run, resume, skip (done or pruned), hold (failed, without --retry-failed)
    epochs_done: int = 0  # by a resumed run's newest checkpoint

    @property
    def to_do(self) -> bool:
        return self.action in ("run", "resume")


def plan_run(spec: RunSpec, row: dict | None, paths: RunPaths, retry_failed: bool = False) -> PlannedRun:
    """What one run needs, for a sweep and a search alike: a run with a result, or done or pruned in
    the registry, is skipped (a pruned run was stopped on purpose: training it again would undo its
    search's decision); a failed one is held unless `retry_failed`; any other runs, or resumes from
    its newest checkpoint."""
    status = row["status"] if row else "new"
    if status in ("done", "pruned") or read_result(paths):
        return PlannedRun(spec, status, "skip")
    if status == "failed" and not retry_failed:
        return PlannedRun(spec, status, "hold")
    epochs_done = Checkpoints(paths.checkpoints).newest_epoch()
    return PlannedRun(spec, status, "resume" if epochs_done else "run", epochs_done)


def plan_sweep(experiment: Experiment, registry: RunRegistry | None, retry_failed: bool = False) -> list[PlannedRun]:
    """plan_run for every run of the file; the networks of those to do are counted for the estimate
    in one go."""
    sweep = SweepPaths.for_experiment(experiment.name)
    planned = [plan_run(spec, registry.get(spec.run_id) if registry else None, sweep.run_paths(spec.run_id),
                        retry_failed) for spec in experiment.runs]
    forward_macs_of([(c["model"], c["image_size"], c["model_args"]) for c in (p.spec.config for p in planned if p.to_do)])
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

# Sustained throughput of one training process in GFLOP/s (2 x multiply-accumulates), training plus
# evaluation: the median of experiments/all.toml's runs on the machine of docs/performance.md (34-46
# for AlexNet and ResNet-50, 60-72 for VGG-16). A rough guide: other machines differ.
GFLOPS_PER_PROCESS = 48.0
# What each further core of a run (threads or nproc) adds: 2 cores ran 1.5-1.8x one.
EXTRA_CORE_GAIN = 0.6
# How much faster paddle's inference engine evaluates than the dynamic graph (bench/eval_engine.py:
# 1.6-2.2x on trained course networks).
INFERENCE_EVAL_GAIN = 1.8
UNKNOWN_SIZES = {"train": 1000, "val": 200}  # a folder of your own, before any file is read


def estimate_minutes(config: dict, epochs_done: int = 0) -> float | None:
    """Rough wall minutes of one run: forward+backward (3 x forward) on the training images, one
    forward on the validation images, every epoch still to train. The network's multiply-accumulates
    are the zoo's (runner/zoo.py: counted once per network and size, in a child process)."""
    macs = forward_macs(config["model"], config["image_size"], config["model_args"])
    if not macs:
        return None
    sizes = published_sizes(config["dataset"]) or UNKNOWN_SIZES
    n_train = min(sizes["train"], config["train_limit"] or sizes["train"])
    n_val = min(sizes["val"], config["val_limit"] or sizes["val"])
    scheme = parse_validation(config["validation"])
    if not scheme.official:  # the validation images are a share of the training images
        held_out = round(n_train * (scheme.fraction or 1 / max(1, scheme.folds)))
        n_train, n_val = n_train - held_out, held_out
    if evaluates_on_inference_engine(config):
        n_val /= INFERENCE_EVAL_GAIN
    flop = 2 * macs * (3 * n_train + n_val) * (config["epochs"] - epochs_done)
    cores = slots_needed(config, on_gpus=False)
    return flop / (GFLOPS_PER_PROCESS * 1e9 * (1 + EXTRA_CORE_GAIN * (cores - 1))) / 60
