"""How long runs and sweeps take on this machine, from what it measured.

A run costs a fixed part and its epochs: `head`, before its first epoch (the worker starting,
paddle's import, loading the data, building the network), an epoch's training and evaluation, and
`tail`, after its last epoch (the cost to run, Grad-CAM, its files). A sweep adds its own start (to
the first run started: the plan, the data's fingerprints) and its closing report. Every finished run
in the output root measured them (this folder's and every other's): the registry holds its wall time,
its seconds of training and evaluation, and from its result.json the seconds before its first epoch
and after its last (`setup_seconds`, `finish_seconds`); the registry's meta holds the sweep's own
(`sweep_timings`). A running sweep learns from its own epochs and runs as they finish.

    epoch seconds = work units x seconds per unit
    work units    = 3 x training images (forward and backward) + validation images (forward;
                    fewer on paddle's inference engine, INFERENCE_EVAL_GAIN)

A network measured here (same model, arguments, size, batch, cores, device and evaluation) takes its
own seconds per unit and fixed part; one not measured yet takes this machine's pace in
multiply-accumulates per second (the networks' MACs: runner/zoo.py) and the median fixed part of
the runs measured here; a machine that measured nothing yet, the defaults below. The pace is that of
the measured networks nearest in MACs an image (on the same dataset, where it has some): a core runs
a small network far below its peak and a large one near it (here LeNet on Cifar10 at about 1 GMAC/s,
a VGG-11 at about 30), so one machine-wide median would misjudge both ends several times over.
Among them, a network with grouped or depthwise convolutions (MobileNets, ShuffleNet) takes the pace
of such networks where some were measured: those convolutions hold few of its MACs but much of its
time, so it runs far below the pace of a dense network of as many MACs (a quarter of it is taken
where none of its kind were measured, GROUPED_PACE_SHARE).

A run whose file asks for its robustness is scored after the file's runs have trained: its worker's
start, then its clean validation images and each corrupted set of them evaluated on the engine it
evaluates with (validation work units at the run's own pace), and, for the first run of each image size, making
the corrupted copies (CORRUPTING_SECONDS_PER_MEGAPIXEL; counted even where the cache holds them
already, so an estimate after an interruption is high by that much).
"""
from __future__ import annotations

import json
import math
import socket
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from runner.config import evaluates_on_inference_engine
from runner.data import published_sizes
from runner.errors import RunnerError
from runner.store.registry import RunRegistry
from runner.sweep.plan import slots_needed
from runner.validation import parse_validation
from runner.zoo import forward_macs, grouped_shares_of

# Sustained throughput of one training process in GFLOP/s (2 x multiply-accumulates), training plus
# evaluation, before this machine has measured any: experiments/all.toml's 25 runs finished on the
# machine of docs/results.md, their operations over their 711 minutes of training and evaluation
# (the median run ran at 48: AlexNet and ResNet-50 at 34-46, the long VGG-16 runs at 60-72).
GFLOPS_PER_PROCESS = 58.0
# What each further core of a run (threads or nproc) adds: 2 cores ran 1.5-1.8x one.
EXTRA_CORE_GAIN = 0.6
# How much faster paddle's inference engine evaluates than the dynamic graph (bench/eval_engine.py:
# 1.6-2.2x on trained course networks).
INFERENCE_EVAL_GAIN = 1.8
# A network with at least this share of its MACs in grouped or depthwise convolutions is paced by
# such networks (MobileNetV2 has about 7 % of its MACs there, ShuffleNetV2 3 %, a dense network none).
GROUPED_SHARE = 0.01
# Such a network's pace against a dense one's, for when only the other kind was measured (or none):
# bench/cifar_networks.py on one core here, cifar_mobilenet_v2 at 17 GFLOP/s against airbench94's 84
# and resnet9's 90 (a fifth); on iChallenge-PM at 224 px, paddle.vision's MobileNetV2 at a third of
# AlexNet's pace.
GROUPED_PACE_SHARE = 0.25
UNKNOWN_SIZES = {"train": 1000, "val": 200}  # a folder of your own, before any file is read
# Fixed seconds before anything is measured here: what quick.toml's runs and sweep spent outside
# their epochs on the machine of docs/performance.md while other work kept both cores busy (10 s
# before a run's first epoch, 11-25 s after its last; 2 s to the first run, 12 s of report for 3
# runs). Idle, it measured 1.5-2.5 s and 1.3-5 s (bench/estimate.py prints what yours measures).
HEAD_SECONDS, TAIL_SECONDS = 10.0, 15.0
START_SECONDS, REPORT_SECONDS_PER_RUN = 3.0, 4.0
# Making ImageNet-C's corrupted copy of images, seconds per megapixel of one core: the 75 sets of
# 400 validation images at 128 px took 6.4 minutes on the machine of docs/performance.md
# (bench/corruptions.py).
CORRUPTING_SECONDS_PER_MEGAPIXEL = 0.78
# The settings that decide how fast a network trains: runs alike in these are "the same network".
SPEED_KEYS = ("model", "model_args", "image_size", "batch_size", "threads", "nproc", "device", "amp", "augment")


def image_counts(config: dict) -> tuple[int, int]:
    """(training images, validation images) a run's settings choose, from the dataset's published
    sizes (UNKNOWN_SIZES for a folder of your own): a holdout's share, a `train_fraction`."""
    sizes = published_sizes(config["dataset"]) or UNKNOWN_SIZES
    n_train, n_val = sizes["train"], sizes["val"]
    scheme = parse_validation(config["validation"])
    if not scheme.official:  # the validation images are a share of the training images
        held_out = round(n_train * (scheme.fraction or 1 / max(1, scheme.folds)))
        n_train, n_val = n_train - held_out, held_out
    # as runner/data/__init__.py's select_images: the split first, then the limits, then the share
    n_train = min(n_train, config.get("train_limit") or n_train)
    n_val = min(n_val, config.get("val_limit") or n_val)
    return max(1, round(n_train * config.get("train_fraction", 1.0))), n_val


def work_units(config: dict) -> float:
    """One epoch's work in forward passes of one image: 3 per training image, 1 per validation image."""
    n_train, n_val = image_counts(config)
    if evaluates_on_inference_engine(config):
        n_val /= INFERENCE_EVAL_GAIN
    return 3 * n_train + n_val


def cores_gain(config: dict) -> float:
    return 1 + EXTRA_CORE_GAIN * (slots_needed(config, on_gpus=False) - 1)


def speed_key(config: dict) -> str:
    return json.dumps([config.get(k) for k in SPEED_KEYS] + [evaluates_on_inference_engine(config)],
                      sort_keys=True, default=str)


def network_of(config: dict) -> tuple[str, int, str]:
    return config["model"], config["image_size"], json.dumps(config.get("model_args") or {}, sort_keys=True)


def epoch_seconds(times: dict, config: dict) -> float:
    """How long the training and evaluation that `times` records (a run's, or an epoch's:
    train_seconds, train_cpu_seconds, eval_seconds) would have taken on a core of its own: the
    training at its CPU time where that is less than its wall time and measures it (one process of
    one thread on the CPU), since a run trained while other work shared the cores would otherwise
    make every later estimate of its network too long. Processes of a data-parallel run wait for
    each other without CPU time, so theirs is their wall time."""
    wall, cpu = times.get("train_seconds") or 0.0, times.get("train_cpu_seconds")
    one_core = config.get("threads", 1) == 1 and config.get("nproc", 1) == 1 and config.get("device", "cpu") == "cpu"
    training = min(wall, cpu) if cpu is not None and one_core else wall
    return training + (times.get("eval_seconds") or 0.0)


@dataclass(frozen=True)
class RunCost:
    """Seconds of one run: `head` before its first epoch, `epoch` each of its `epochs` still to train,
    `tail` after the last. `source`: "measured" (this network, here), "paced" (this machine's pace
    and MACs) or "default" (nothing measured here yet)."""
    head: float
    epoch: float
    epochs: int
    tail: float
    source: str

    @property
    def seconds(self) -> float:
        return self.head + self.epoch * self.epochs + self.tail


@dataclass(frozen=True)
class Pace:
    """Multiply-accumulates per second of one core that a run (or an epoch) of a network achieved."""
    macs_per_second: float
    macs: int  # the network's forward MACs for one image
    dataset: str
    network: tuple[str, int, str]  # model, image size, model_args as JSON: what is_grouped asks about


@dataclass
class Measured:
    """What runs of one network measured: seconds per work unit of each epoch (or run), and fixed parts."""
    per_unit: list[float] = field(default_factory=list)
    head: list[float] = field(default_factory=list)
    tail: list[float] = field(default_factory=list)


class MachineTimings:
    """What this machine measured, and the estimates it gives."""

    def __init__(self):
        self.networks: dict[str, Measured] = {}
        self.pace: list[Pace] = []  # an entry per run or epoch
        self.starts: list[float] = []  # a sweep's seconds to its first run
        self.reports: list[float] = []  # a sweep's closing report, seconds per run in it

    # ---- measuring --------------------------------------------------------------------------------

    @classmethod
    def measured_in(cls, root: Path, host: str | None = None) -> "MachineTimings":
        """From every sweep folder under `root`: its finished runs trained on `host` (this machine)."""
        timings, host = cls(), host or socket.gethostname()
        for path in sorted(Path(root).glob("*/runs.sqlite")):
            try:
                registry = RunRegistry(path, create=False)
            except RunnerError:
                continue  # a newer runner's or a foreign file: the report says so, not the estimate
            try:
                for row in registry.rows("done"):
                    if (row["metrics"] or {}).get("host", host) == host:
                        timings.add_finished(row)
                for sweep in registry.sweep_timings():
                    timings.add_sweep(**sweep)
            finally:
                registry.close()
        return timings

    def add_finished(self, row: dict) -> None:
        """A registry row of a finished run: its epochs, and its fixed part if it recorded it."""
        m, config = row["metrics"] or {}, row["config"]
        seconds = (m.get("train_seconds") or 0) + (m.get("eval_seconds") or 0)
        if not m.get("epochs_run") or not seconds:
            return
        self.add_epochs(config, epoch_seconds(m, config) / m["epochs_run"], m.get("flops"))
        head, finish = m.get("setup_seconds"), m.get("finish_seconds")
        if head is None or finish is None:
            return  # an older runner's run: its epochs only
        tail = finish
        if row.get("attempts") == 1 and row.get("started_at") and row.get("finished_at"):
            # trained in one go by a sweep: its wall time also holds the worker's exit
            tail = max(tail, row["finished_at"] - row["started_at"] - seconds - head)
        self.add_fixed(config, head, tail)

    def add_epochs(self, config: dict, seconds: float, macs: int | None = None) -> None:
        """An epoch of `config`'s network (or a run's mean epoch) took `seconds`."""
        units = work_units(config)
        if seconds <= 0 or not units:
            return
        self.network(config).per_unit.append(seconds / units)
        macs = macs or forward_macs(config["model"], config["image_size"], config.get("model_args"))
        if macs:  # one core's share: a run on more cores is faster by cores_gain
            self.pace.append(Pace(macs * units / seconds / cores_gain(config), macs, config["dataset"],
                                  network_of(config)))

    def add_fixed(self, config: dict, head: float, tail: float) -> None:
        """A run of `config`'s network spent `head` seconds before its first epoch, `tail` after its last."""
        measured = self.network(config)
        measured.head.append(max(0.0, head))
        measured.tail.append(max(0.0, tail))

    def add_sweep(self, start_seconds: float, report_seconds: float, runs: int) -> None:
        self.starts.append(max(0.0, start_seconds))
        if runs:
            self.reports.append(max(0.0, report_seconds) / runs)

    def network(self, config: dict) -> Measured:
        return self.networks.setdefault(speed_key(config), Measured())

    # ---- estimating -------------------------------------------------------------------------------

    def cost(self, config: dict, epochs_done: int = 0) -> RunCost | None:
        """What a run of `config` costs from `epochs_done` on (None if its network cannot be counted)."""
        per_unit = self.seconds_per_unit(config)
        if per_unit is None:
            return None
        own = self.networks.get(speed_key(config), Measured())
        return RunCost(self.fixed("head", own, HEAD_SECONDS), per_unit[0] * work_units(config),
                       max(0, config["epochs"] - epochs_done), self.fixed("tail", own, TAIL_SECONDS), per_unit[1])

    def seconds_per_unit(self, config: dict) -> tuple[float, str] | None:
        """(seconds per work unit of `config`'s network, and where that comes from: measured, paced
        or default), or None if its network cannot be counted."""
        own = self.networks.get(speed_key(config), Measured())
        if own.per_unit:
            return statistics.median(own.per_unit), "measured"
        macs = forward_macs(config["model"], config["image_size"], config.get("model_args"))
        if not macs:
            return None
        network = network_of(config)
        pace, source = self.pace_for(macs, config["dataset"], network), "paced"
        if not pace:
            kind_gain = GROUPED_PACE_SHARE if self.is_grouped([network])[network] else 1.0
            pace, source = GFLOPS_PER_PROCESS * 1e9 / 2 * kind_gain, "default"
        return macs / (pace * cores_gain(config)), source

    def pace_for(self, macs: int, dataset: str, network: tuple[str, int, str] | None = None) -> float | None:
        """This machine's pace for a network of `macs` an image: the median over the measured networks
        nearest to it in MACs (within a factor 2 of the nearest), of its kind (grouped convolutions
        or not: `network`), of its dataset if any were measured. Where none of its kind were
        measured, the other kind's pace converted by GROUPED_PACE_SHARE."""
        pool, kind_gain = self.pace, 1.0
        if network and pool:
            grouped = self.is_grouped([network, *{p.network for p in pool}])
            own_kind = [p for p in pool if grouped[p.network] == grouped[network]]
            if not own_kind:
                kind_gain = GROUPED_PACE_SHARE if grouped[network] else 1 / GROUPED_PACE_SHARE
            pool = own_kind or pool
        pool = [p for p in pool if p.dataset == dataset] or pool
        if not pool:
            return None
        def distance(p: Pace) -> float:
            return abs(math.log(p.macs / macs))

        nearest = min(map(distance, pool))
        return kind_gain * statistics.median(p.macs_per_second for p in pool if distance(p) <= nearest + math.log(2))

    @staticmethod
    def is_grouped(networks: list[tuple[str, int, str]]) -> dict[tuple[str, int, str], bool]:
        """Whether each network has GROUPED_SHARE of its MACs in grouped or depthwise convolutions,
        asked of the zoo at once (a network it cannot count is taken as dense). The first time, that
        builds every network measured here in a child process (seconds each); the zoo's cache on
        disk keeps the answers until the zoo changes."""
        networks = list(dict.fromkeys(networks))
        shares = grouped_shares_of([(model, size, json.loads(args)) for model, size, args in networks])
        return {n: (share or 0.0) >= GROUPED_SHARE for n, share in zip(networks, shares)}

    def scoring_seconds(self, config: dict, sets: int, making: bool) -> float | None:
        """Scoring a trained run on `sets` corrupted copies of its validation images: its worker's
        start, the evaluations on the inference engine, and first making the copies if `making`."""
        per_unit = self.seconds_per_unit(config)
        if per_unit is None:
            return None
        # the clean images once more, then every set, through the engine the run evaluates with
        n_val = image_counts(config)[1] / (INFERENCE_EVAL_GAIN if evaluates_on_inference_engine(config) else 1)
        seconds = (sets + 1) * n_val * per_unit[0]
        if making:
            seconds += sets * n_val * config["image_size"] ** 2 / 1e6 * CORRUPTING_SECONDS_PER_MEGAPIXEL
        return self.fixed("head", self.networks.get(speed_key(config), Measured()), HEAD_SECONDS) + seconds

    def fixed(self, part: str, own: Measured, default: float) -> float:
        """A fixed part of a run: its network's median if measured, else the median of this machine's runs."""
        values = getattr(own, part) or [x for m in self.networks.values() for x in getattr(m, part)]
        return statistics.median(values) if values else default

    def start_seconds(self) -> float:
        return statistics.median(self.starts) if self.starts else START_SECONDS

    def report_seconds(self, runs: int) -> float:
        return runs * (statistics.median(self.reports) if self.reports else REPORT_SECONDS_PER_RUN)


def makespan(running: list[tuple[float, int]], queued: list[tuple[float, int]], slots: int) -> float:
    """Seconds until the last run ends: `running` (seconds left, cores) go on, `queued` (seconds,
    cores) start in order as their cores free up, the first that fits first, one wider than all the
    slots alone, as the sweep's loop starts them (runner/sweep/executors/local.py)."""
    ends = [(left, cores) for left, cores in running]
    now, pending = 0.0, list(queued)
    while pending:
        busy = [(end, cores) for end, cores in ends if end > now]
        free = slots - sum(cores for _, cores in busy)
        index = next((i for i, (_, cores) in enumerate(pending) if cores <= free or not busy), None)
        if index is None:
            now = min(end for end, _ in busy)
            continue
        seconds, cores = pending.pop(index)
        ends.append((now + seconds, cores))
    return max((end for end, _ in ends), default=0.0)

