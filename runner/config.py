"""Experiment files (TOML) -> validated, fully resolved run specifications.

A run is resolved as: built-in defaults <- the file's [defaults] <- its [[runs]] entry <- one
combination of [grid] <- --set overrides. A table given by a run (say `optimizer`) replaces the
default table whole, because an Adam run must not inherit Momentum's `momentum`; dotted --set and
grid keys (`optimizer.learning_rate`) change one field. Every mistake is reported with the file and
the key before anything trains.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError, OverrideError, UsageError, close_matches
from runner.search_space import parse_search
from runner.validation import MAX_FOLDS, parse_validation
from runner.options import (BATCH_RULES, CORRUPTION_MIN_SIZE, CORRUPTIONS, EVAL_ENGINES, FRACTION_BUDGETS, HEADS,
                            MAX_SEED, MONITORS, OPTIMIZER_KEYS, OPTIMIZERS, SCHEDULER_KEYS, SCHEDULERS, SEVERITIES)

# key -> (accepted types, default). A float key also takes an int; a bool is never an int.
RUN_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "model": ((str,), None),
    "dataset": ((str,), "ichallenge-pm"),
    "image_size": ((int,), 224),
    "epochs": ((int,), 5),
    "batch_size": ((int,), 10),
    "seed": ((int,), 0),
    "optimizer": ((dict,), {"name": "momentum", "learning_rate": 0.001, "momentum": 0.9}),
    "scheduler": ((dict,), {"name": "constant"}),
    "augment": ((bool, dict), False),
    "head": ((str,), "softmax"),
    "label_smoothing": ((float,), 0.0),
    "aux_loss_weight": ((float,), 0.3),
    "early_stopping": ((bool, dict), False),
    "validation": ((str,), "official"),
    "pretrained": ((bool,), False),
    "weights": ((str,), ""),
    "model_args": ((dict,), {}),
    "train_limit": ((int,), 0),
    "val_limit": ((int,), 0),
    "num_workers": ((int,), 0),
    "threads": ((int,), 1),
    "device": ((str,), "cpu"),
    "nproc": ((int,), 1),
    "amp": ((bool,), False),
    "eval_engine": ((str,), "inference"),
    "label": ((str,), ""),
    "fold": ((int,), 0),
    "tta": ((int,), 0),
    "lookahead": ((bool, dict), False),
    "train_fraction": ((float,), 1.0),
    "fraction_budget": ((str,), "same_epochs"),
    "robustness": ((bool, dict), False),
    "accuracy_targets": ((list,), []),
}
TABLE_FIELDS = {
    "optimizer": {"name": (str,), "learning_rate": (float,), "momentum": (float,), "weight_decay": (float,),
                  "beta1": (float,), "beta2": (float,), "nesterov": (bool,), "decoupled": (bool,),
                  "reference_batch": (int,), "batch_rule": (str,), "norm_bias_lr": (float,)},
    "scheduler": {"name": (str,), "warmup_epochs": (int,), "step_size": (int,), "gamma": (float,),
                  "min_lr": (float,), "warmup_share": (float,), "start_factor": (float,), "end_factor": (float,)},
    "augment": {"hflip": (bool,), "vflip": (bool,), "rotate": (float,), "crop_scale": (float,),
                "pad_crop": (int,), "brightness": (float,), "contrast": (float,), "alternate_flip": (bool,),
                "cutout": (int,)},
    "early_stopping": {"patience": (int,), "monitor": (str,), "min_delta": (float,)},
    "lookahead": {"every": (int,), "decay": (float,)},
    "robustness": {"corruptions": (list,), "severities": (list,), "seed": (int,)},
}
# Fields added to a table since runs were first recorded, with the value that means "not used": left
# out of a run's identity at that value, so `augment = true` keeps the id it had before they existed.
ADDED_TABLE_FIELDS = {"augment": {"alternate_flip": False, "cutout": 0}}
TOP_LEVEL = {"name": (str,), "description": (str,), "defaults": (dict,), "runs": (list,), "grid": (dict,),
             "search": (dict,)}
# The keys runs were first recorded with. A key added since is left out of a run's id while it keeps
# its default, so adding a key never changes the id of a run that does not use it.
ORIGINAL_KEYS = frozenset(RUN_FIELDS) - {"device", "nproc", "amp", "eval_engine", "head", "fold", "tta", "lookahead",
                                         "train_fraction", "fraction_budget", "robustness", "accuracy_targets"}
# Keys that do not change what is trained (a label; which device of a kind; what is measured on the
# trained network afterwards; what the report reads off its history), so not a run's identity.
NOT_IDENTITY = ("label", "device", "robustness", "accuracy_targets")

# Numeric bounds, checked before anything trains: key -> (low, high, what it means). A bound given as
# a string is another key of the run (pad_crop must stay below image_size). `(` / `)` mark open ends.
# Integer keys have upper bounds too (a 21-digit `epochs` failed deep inside paddle): their own where
# one means something, and for every whole number of a run (model_args too) MAX_INTEGER, which
# paddle's 32-bit kernels and samplers take.
MAX_EPOCHS, MAX_INTEGER = 100_000, 2 ** 31 - 1
BOUNDS = {
    "image_size": ("[", 1, 4096, "]", "pixels a side"),
    "epochs": ("[", 1, MAX_EPOCHS, "]", ""), "batch_size": ("[", 1, None, "]", ""),
    "threads": ("[", 1, 1024, "]", "cores"), "nproc": ("[", 1, 1024, "]", "processes"),
    "seed": ("[", 0, MAX_SEED, "]", ""), "train_limit": ("[", 0, None, "]", "0 = all"),
    "val_limit": ("[", 0, None, "]", "0 = all"), "num_workers": ("[", 0, 256, "]", "processes"),
    "fold": ("[", 0, MAX_FOLDS, "]", "0 = every fold"),
    "label_smoothing": ("[", 0.0, 1.0, ")", ""), "aux_loss_weight": ("[", 0.0, None, "]", ""),
    "optimizer.learning_rate": ("(", 0.0, None, "]", ""), "optimizer.momentum": ("[", 0.0, 1.0, ")", ""),
    "optimizer.weight_decay": ("[", 0.0, None, "]", ""), "optimizer.beta1": ("[", 0.0, 1.0, ")", ""),
    "optimizer.beta2": ("[", 0.0, 1.0, ")", ""),
    "scheduler.warmup_epochs": ("[", 0, "epochs", ")", "warm-up must leave epochs to train"),
    "scheduler.step_size": ("[", 1, MAX_EPOCHS, "]", "epochs"), "scheduler.gamma": ("(", 0.0, 1.0, "]", ""),
    "scheduler.min_lr": ("[", 0.0, "optimizer.learning_rate", "]", ""),
    "augment.rotate": ("[", 0.0, 180.0, "]", "degrees"), "augment.crop_scale": ("(", 0.0, 1.0, "]", "share of the area"),
    "augment.pad_crop": ("[", 0, "image_size", ")", "pixels"), "augment.brightness": ("[", 0.0, 1.0, ")", ""),
    "augment.contrast": ("[", 0.0, 1.0, ")", ""),
    "early_stopping.patience": ("[", 1, MAX_EPOCHS, "]", "epochs"), "early_stopping.min_delta": ("[", 0.0, None, "]", ""),
    "augment.cutout": ("[", 0, "image_size", "]", "pixels a side"),
    "tta": ("[", 0, 2, "]", "0 none, 1 mirror, 2 mirror and shifts"),
    "lookahead.every": ("[", 1, None, "]", "steps"), "lookahead.decay": ("[", 0.0, 1.0, ")", ""),
    "optimizer.reference_batch": ("[", 1, None, "]", "images"), "optimizer.norm_bias_lr": ("(", 0.0, None, "]", ""),
    "scheduler.warmup_share": ("[", 0.0, 1.0, ")", "share of all steps"),
    "scheduler.start_factor": ("[", 0.0, None, "]", ""), "scheduler.end_factor": ("[", 0.0, None, "]", ""),
    "train_fraction": ("(", 0.0, 1.0, "]", "share of the training images"),
    "robustness.seed": ("[", 0, MAX_SEED, "]", ""),
}


def identity(config: dict, ignore: tuple[str, ...] = ()) -> dict:
    """What makes a run's result what it is: its settings without display-only ones and `ignore`,
    written the same way for runs recorded before the keys added since existed."""
    out = {k: v for k, v in normalised(config).items() if k not in NOT_IDENTITY + ignore}
    out["device"] = config.get("device", "cpu").split(":")[0]  # cpu or gpu, not which gpu
    for key in set(out) - ORIGINAL_KEYS:
        # a table switched off (`lookahead = false`) is resolved to {}: that is its default too
        if key in RUN_FIELDS and out[key] in (RUN_FIELDS[key][1], {} if RUN_FIELDS[key][1] is False else None):
            del out[key]
    for table, unused in ADDED_TABLE_FIELDS.items():
        if isinstance(out.get(table), dict):
            out[table] = {k: v for k, v in out[table].items() if not (k in unused and v == unused[k])}
    return out


def normalised(config: dict) -> dict:
    """Numbers given as integers for keys that take any number written as floats, so that
    `label_smoothing = 0` and `0.0` are one run (the defaults are floats: ids recorded so far stay)."""
    out = dict(config)
    for key, value in config.items():
        types = RUN_FIELDS.get(key, ((),))[0]
        if float in types and is_int(value):
            out[key] = float(value)
        elif key in TABLE_FIELDS and isinstance(value, dict):
            out[key] = {k: float(v) if TABLE_FIELDS[key].get(k) == (float,) and is_int(v) else v
                        for k, v in value.items()}
    return out


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunSpec:
    """One fully resolved run. Its id hashes everything that changes the result."""

    experiment: str
    config: dict = field(hash=False, compare=False)
    # the settings (dotted keys) in which the runs of its experiment differ: shown first where runs
    # are told apart (VisualDL's hyper-parameters). Not part of the run: its id ignores them.
    varies: tuple[str, ...] = field(default=(), hash=False, compare=False)

    @property
    def run_id(self) -> str:
        digest = hashlib.sha1(json.dumps(identity(self.config), sort_keys=True).encode()).hexdigest()[:8]
        return f"{slug(self.config['model'])}-s{self.config['seed']}-{digest}"

    @property
    def display_name(self) -> str:
        """Model plus the settings a reader needs, for dashboards and tables."""
        if self.config["label"]:
            return self.config["label"]
        c, opt = self.config, self.config["optimizer"]
        head = " sigmoid-head" if c.get("head") == "sigmoid" else ""
        args = "".join(f" {k}={v}" for k, v in sorted(c.get("model_args", {}).items()))
        # what tells runs apart first (a list of names cut short by a dashboard still shows it)
        return f"{c['model']} seed={c['seed']}{args}{head} {opt['name']} lr={opt['learning_rate']:g} {c['image_size']}px"


def evaluates_on_inference_engine(config: dict) -> bool:
    """Whether a run's evaluations go through paddle's inference engine (CPU runs only)."""
    return config.get("eval_engine", "inference") == "inference" and config.get("device", "cpu") == "cpu"


def dotted(config: dict, prefix: str = "") -> dict:
    """{"optimizer": {"name": "adam"}} -> {"optimizer.name": "adam"}: the keys --set and [grid] take."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def with_defaults(config: dict) -> dict:
    """A resolved config from an older runner, completed with the defaults of keys added since."""
    return {**{k: copy.deepcopy(default) for k, (_, default) in RUN_FIELDS.items()}, **config}


@dataclass
class Experiment:
    name: str
    path: Path
    runs: list[RunSpec]
    search: Any = None  # a runner.search_space.SearchSpec: the runs are then the search's trials
    # the command line's assignments (--set, and --devices' or --nproc's) the runs were resolved with
    overrides: tuple[str, ...] = ()
    # the runs the file holds on its own, without those: what the folder calls "the file's runs".
    # None where the file resolves only with them (a model given by --set, say)
    file_run_ids: list[str] | None = None

    def find(self, run: str | None) -> RunSpec:
        if run is None:
            return self.runs[0]
        for spec in self.runs:
            if run in (spec.run_id, spec.config["label"], spec.config["model"]):
                return spec
        raise UsageError(f"--run {run!r}: {self.path} has no run of that id, label or model; runs: "
                          + ", ".join(s.run_id for s in self.runs))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_experiment(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give an experiment file (.toml), e.g. {path / 'exp.toml'}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"experiment file not found: {path}") from None
    except OSError as err:
        raise ConfigError(f"cannot read experiment file {path} ({err.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is fine
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                          "TOML files are UTF-8: save it as UTF-8 and run again") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_experiment(data, path, overrides)


def parse_experiment(data: dict, path: Path, overrides=()) -> Experiment:
    try:
        return build_experiment(data, path, overrides)
    except OverrideError:
        raise
    except ConfigError as err:
        # a file that resolves on its own and not with the --set: the command line is wrong (exit 2)
        if overrides and runs_of_the_file(data, path) is not None:
            raise OverrideError(f"--set {' '.join(overrides)}: {err}") from None
        raise


def build_experiment(data: dict, path: Path, overrides=()) -> Experiment:
    where = str(path)
    check_keys(data, TOP_LEVEL, where, "")
    name = data.get("name") or path.stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"{where}: name = {name!r}: use letters, digits, '.', '_' or '-', starting with a "
                          "letter or digit (it names a folder inside the output root)")
    defaults = data.get("defaults", {})
    check_run(defaults, where, "defaults.")
    runs = data.get("runs", [])
    if not runs:
        raise ConfigError(f"{where}: no [[runs]]; add at least one, e.g.\n[[runs]]\nmodel = \"lenet\"")
    grid = data.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list of values")
    parsed_overrides = parse_overrides(overrides)
    check_assignments([(k, v[0]) for k, v in grid.items()], f"{where}: grid")
    if "search" in data:
        if len(runs) != 1 or grid or not isinstance(runs[0], dict):
            raise ConfigError(f"{where}: a [search] searches around one run: give exactly one [[runs]] and no [grid]")
        check_run(runs[0], where, "runs[0].")
        base = {**defaults, **runs[0]}
        if base.get("robustness") or any(k.split(".")[0] == "robustness" for k, _ in parsed_overrides):
            raise ConfigError(f"{where}: robustness is not measured during a [search]; drop it and run "
                              f"`runner robustness outputs/{name}` once the search has finished")

        def check_setting(key, value):
            check_assignments([(key, value)], f"{where}: search.space")
            resolve(base, [(key, value)], parsed_overrides, where, f"search.space.{key} = {value!r}")

        search = parse_search(data["search"], base, parsed_overrides, where, check_setting,
                              lambda: resolve(base, [], parsed_overrides, where, "search"))
        return Experiment(name, path, [], search)

    ask_zoo_about(runs, defaults, grid, parsed_overrides, where)
    specs, seen = [], set()
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise ConfigError(f"{where}: runs[{i}] must be a table ([[runs]])")
        check_run(run, where, f"runs[{i}].")
        for combo in itertools.product(*grid.values()):
            config = resolve({**defaults, **run}, zip(grid.keys(), combo), parsed_overrides, where, f"runs[{i}]")
            for one in each_fold(config):
                spec = RunSpec(name, one)
                if spec.run_id not in seen:  # identical runs collapse into one
                    seen.add(spec.run_id)
                    specs.append(spec)
    varies = varying_keys([spec.config for spec in specs])
    specs = [RunSpec(name, spec.config, varies) for spec in specs]
    experiment = Experiment(name, path, specs, overrides=tuple(overrides))
    experiment.file_run_ids = [s.run_id for s in specs] if not overrides else runs_of_the_file(data, path)
    return experiment


def varying_keys(configs: list[dict]) -> tuple[str, ...]:
    """The dotted keys whose values differ between `configs`, in the order the configs hold them."""
    flat = [dotted(c) for c in configs]
    keys = dict.fromkeys(k for f in flat for k in f)
    return tuple(k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1)


def runs_of_the_file(data: dict, path: Path) -> list[str] | None:
    """The run ids of the file without any --set, or None where it does not resolve without them."""
    try:
        return parse_experiment(data, path).file_run_ids
    except ConfigError:
        return None


def ask_zoo_about(runs: list, defaults: dict, grid: dict, overrides, where: str) -> None:
    """Ask the model zoo about every run's model at once, before the runs are checked one by one:
    one child process for the file rather than one per run (runner/zoo.py). A run that does not
    resolve is left to the checks, which say why."""
    from runner.zoo import ask_about

    configs = []
    for run in runs:
        for combo in itertools.product(*grid.values()):
            try:
                configs.append(resolve({**defaults, **run}, zip(grid.keys(), combo), overrides, where, "", check=False))
            except ConfigError:
                pass
    ask_about(configs)


def each_fold(config: dict) -> list[dict]:
    """A run scored by k-fold cross-validation is K runs, one per fold (each trains on the other
    folds); a run that names its fold, or any other run, is itself."""
    folds = parse_validation(config["validation"]).folds
    if not folds or config["fold"]:
        return [config]
    return [{**config, "fold": fold} for fold in range(1, folds + 1)]


def resolve(run: dict, grid_items, overrides, where: str, context: str, check: bool = True) -> dict:
    config = {k: copy.deepcopy(default) for k, (_, default) in RUN_FIELDS.items()}
    config.update(copy.deepcopy(run))
    for key, value in list(grid_items) + overrides:
        head, dotted_key, _ = key.partition(".")
        if dotted_key and config.get(head) is True:  # `augment = true` and a field of it: the defaults, then the field
            config[head] = switched_on(head, config)
        set_dotted(config, key, value)
    check_run(config, where, f"{context}.")
    config = normalised(config)
    if config["model"] is None:
        raise ConfigError(f"{where}: {context}: no model; set `model = \"...\"` (`runner models` lists them)")
    for head in ("augment", "early_stopping", "lookahead"):
        if isinstance(config[head], bool):
            config[head] = switched_on(head, config) if config[head] else {}
    # a table, even an empty one, asks for robustness: its missing fields take the defaults
    config["robustness"] = {} if config["robustness"] is False else \
        {**switched_on("robustness", config), **(config["robustness"] if isinstance(config["robustness"], dict) else {})}
    if not check:  # asked only which model it is (ask_zoo_about): its numbers are not checked, so not scaled
        return config
    check_values(config, where, context)
    return scaled_to_fraction(config)


def scaled_to_fraction(config: dict) -> dict:
    """A run on a share of its training images: with fraction_budget = "same_steps" it trains
    epochs / train_fraction epochs (rounded), so that it sees as many images, and so takes about as
    many steps, as a run on all of them; on all of them the budget is moot (one run, one id)."""
    if config["train_fraction"] >= 1.0:
        return {**config, "fraction_budget": RUN_FIELDS["fraction_budget"][1]}
    if config["fraction_budget"] == "same_steps":
        return {**config, "epochs": max(1, round(config["epochs"] / config["train_fraction"]))}
    return config


def full_budget(config: dict) -> dict:
    """The settings a run on a share of its training images was scaled from (scaled_to_fraction
    undone): for "same_steps", the epochs as written, round(epochs x train_fraction)."""
    if config.get("fraction_budget") == "same_steps" and config.get("train_fraction", 1.0) < 1.0:
        return {**config, "epochs": round(config["epochs"] * config["train_fraction"])}
    return config


def switched_on(head: str, config: dict) -> dict:
    """What `augment = true`, `early_stopping = true`, `lookahead = true` or `robustness = true` stands for."""
    if head == "lookahead":
        return {"every": 5, "decay": 0.95}  # airbench94's
    if head == "robustness":
        return {"corruptions": list(CORRUPTIONS), "severities": list(SEVERITIES), "seed": 0}
    return _default_augment(config["dataset"]) if head == "augment" else {"patience": 3}


def _default_augment(dataset: str) -> dict:
    from dataclasses import asdict

    from runner.data import default_augment

    return asdict(default_augment(dataset))


def check_assignments(assignments, where: str) -> None:
    """Validate `key=value` pairs (--set, grid) on their own, so errors name them and not a run."""
    for key, value in assignments:
        head, _, rest = key.partition(".")
        if head not in RUN_FIELDS:
            raise ConfigError(unknown_key_message(head, RUN_FIELDS, where, ""))
        if rest and head not in TABLE_FIELDS and RUN_FIELDS[head][0] != (dict,):
            raise ConfigError(f"{where}: {head} is not a table, so {key} cannot be set")
        probe = {}
        set_dotted(probe, key, value)
        check_run(probe, where, "")


def set_dotted(config: dict, key: str, value) -> None:
    """Set `key` (dotted for a field of a table). Naming another optimizer or scheduler keeps only
    the fields the new one takes: `--set optimizer.name=adam` on a Momentum file drops `momentum`."""
    head, _, rest = key.partition(".")
    if not rest:
        config[head] = value
        return
    table = config.get(head) if isinstance(config.get(head), dict) else {}
    applies = {"optimizer": OPTIMIZER_KEYS, "scheduler": SCHEDULER_KEYS}.get(head, {})
    if rest == "name" and value in applies and table.get("name") != value:
        table = {k: v for k, v in table.items() if k in applies[value]}
    config[head] = {**table, rest: value}


def check_keys(table: dict, allowed: dict, where: str, prefix: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(unknown_key_message(key, allowed, where, prefix))
        types = allowed[key][0] if isinstance(allowed[key][0], tuple) else allowed[key]
        if not type_ok(value, types):
            raise ConfigError(f"{where}: {prefix}{key} = {value!r} is a {type_name(type(value))}; "
                              f"expected {' or '.join(type_name(t) for t in types)}")


def check_run(run: dict, where: str, prefix: str) -> None:
    check_keys(run, RUN_FIELDS, where, prefix)
    for key, fields in TABLE_FIELDS.items():
        if isinstance(run.get(key), dict):
            check_keys(run[key], {k: (t,) for k, t in fields.items()}, where, f"{prefix}{key}.")


def check_values(config: dict, where: str, context: str) -> None:
    from runner.data import is_known_dataset, unknown_dataset_message
    from runner.zoo import model_args_problem, model_problem

    def fail(message):
        raise ConfigError(f"{where}: {context}: {message}")

    problem = model_problem(config["model"])
    if problem:
        fail(f"model: {problem}")
    if not is_known_dataset(config["dataset"]):
        fail(f"dataset: {unknown_dataset_message(config['dataset'])}")
    problem = out_of_bounds(config)
    if problem:
        fail(problem)
    if not re.fullmatch(r"cpu|gpu(:[0-9]+)?", config["device"]):  # \d would take any script's digits
        fail(f"device = {config['device']!r}; use \"cpu\", \"gpu\" or \"gpu:N\"")
    if config["batch_size"] % config["nproc"]:
        fail(f"batch_size = {config['batch_size']} is the global batch and must divide evenly over nproc = "
             f"{config['nproc']} processes")
    if config["eval_engine"] not in EVAL_ENGINES:
        fail(f"eval_engine = {config['eval_engine']!r}; allowed: {', '.join(EVAL_ENGINES)}")
    if config["head"] not in HEADS:
        fail(f"head = {config['head']!r}; allowed: {', '.join(HEADS)}")
    if config["amp"] and not config["device"].startswith("gpu"):
        fail("amp = true needs device = \"gpu\" (paddle enables mixed precision on GPUs only)")
    opt = config["optimizer"]
    if opt.get("name") not in OPTIMIZERS:
        fail(f"optimizer.name = {opt.get('name')!r}; allowed: {', '.join(OPTIMIZERS)}")
    if "learning_rate" not in opt:
        fail("optimizer.learning_rate must be set")
    sched = config["scheduler"]
    if sched.get("name", "constant") not in SCHEDULERS:
        fail(f"scheduler.name = {sched.get('name')!r}; allowed: {', '.join(SCHEDULERS)}")
    for table, vocabulary in (("optimizer", OPTIMIZER_KEYS), ("scheduler", SCHEDULER_KEYS)):
        kind = config[table].get("name", "constant")
        extra = sorted(set(config[table]) - set(vocabulary[kind]) - {"name"})
        if extra:
            fail(f"{table}.{extra[0]} does not apply to {kind} (it takes {', '.join(vocabulary[kind])}); "
                 f"drop it or change {table}.name")
    if opt.get("batch_rule", "linear") not in BATCH_RULES:
        fail(f"optimizer.batch_rule = {opt['batch_rule']!r}; allowed: {', '.join(BATCH_RULES)}")
    if "batch_rule" in opt and "reference_batch" not in opt:
        fail("optimizer.batch_rule needs optimizer.reference_batch: the batch size learning_rate is given for")
    if opt.get("decoupled") and not opt.get("weight_decay"):
        fail("optimizer.decoupled = true needs optimizer.weight_decay, the coefficient it decouples")
    aug = config["augment"]
    if (aug.get("alternate_flip") or aug.get("cutout")) and (aug.get("rotate") or aug.get("crop_scale", 1.0) < 1.0):
        fail("augment.alternate_flip and augment.cutout work on whole batches and cannot be combined with "
             "augment.rotate or augment.crop_scale, which work per image")
    if config["fraction_budget"] not in FRACTION_BUDGETS:
        fail(f"fraction_budget = {config['fraction_budget']!r}; allowed: {', '.join(FRACTION_BUDGETS)}")
    problem = robustness_problem(config) or targets_problem(config["accuracy_targets"])
    if problem:
        fail(problem)
    if config["early_stopping"].get("monitor", "acc") not in MONITORS:
        fail(f"early_stopping.monitor = {config['early_stopping']['monitor']!r}; allowed: {', '.join(MONITORS)}")
    problem = memory_problem(config)
    if problem:
        fail(problem)
    problem = model_args_problem(config["model"], config["model_args"])
    if problem:
        fail(f"model_args: {problem}")
    try:
        scheme = parse_validation(config["validation"])
    except ConfigError as err:
        fail(str(err))
    if config["fold"] and not 1 <= config["fold"] <= scheme.folds:
        fail(f"fold = {config['fold']} needs validation = \"kfold:K\" with K >= {config['fold']}"
             if not scheme.folds else f"fold = {config['fold']} is out of range: it must be in [1, {scheme.folds}]")


def robustness_problem(config: dict) -> str | None:
    """What is wrong with a run's resolved `robustness` table, if anything."""
    table = config["robustness"]
    if not table:
        return None
    for name in table["corruptions"]:
        if name not in CORRUPTIONS:
            return f"robustness.corruptions: {unknown_corruption(name)}"
    if not table["corruptions"] or not table["severities"]:
        return "robustness: corruptions and severities must not be empty lists (leave a field out for all of them)"
    for severity in table["severities"]:
        if not is_int(severity) or not 0 <= severity <= max(SEVERITIES):
            return (f"robustness.severities: {severity!r} is not a severity; use whole numbers from 0 (the image "
                    f"unchanged) to {max(SEVERITIES)}")
    if config["image_size"] < CORRUPTION_MIN_SIZE:
        return (f"robustness needs image_size >= {CORRUPTION_MIN_SIZE} (the smallest image imagecorruptions takes); "
                f"image_size is {config['image_size']}")
    return None


def parse_targets(text: str) -> list[float]:
    """'0.9,0.95' (`runner report --targets`) -> [0.9, 0.95], checked as accuracy_targets is."""
    try:
        targets = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        targets = [text]
    problem = targets_problem(targets) if targets else "give at least one accuracy"
    if problem:
        raise UsageError(f"--targets {text!r}: {problem.removeprefix('accuracy_targets: ')}")
    return targets


def unknown_corruption(name) -> str:
    hint = close_matches(str(name), CORRUPTIONS)
    return (f"unknown corruption {name!r}" + (f"; did you mean {hint}?" if hint else "")
            + f" Allowed: {', '.join(CORRUPTIONS)}")


def targets_problem(targets) -> str | None:
    """accuracy_targets must be validation accuracies, as fractions."""
    for target in targets:
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
            return (f"accuracy_targets: {target!r} is not an accuracy; give fractions in (0, 1], "
                    "e.g. accuracy_targets = [0.9, 0.95]")
    return None


def out_of_bounds(config: dict) -> str | None:
    """The first numeric setting outside its range (BOUNDS), or a number that is not finite."""
    flat = dotted(config)
    for key, (lo_mark, lo, hi, hi_mark, unit) in BOUNDS.items():
        value = flat.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return f"{key} = {value} is not a finite number"
        low = flat.get(lo, 0) if isinstance(lo, str) else lo
        high = flat.get(hi) if isinstance(hi, str) else hi
        below = value < low or (lo_mark == "(" and value == low)
        above = high is not None and (value > high or (hi_mark == ")" and value == high))
        if below or above:
            span = f"{lo_mark}{lo}, {'∞' if hi is None else hi}{hi_mark if hi is not None else ')'}"
            why = f" ({unit})" if unit else ""
            return f"{key} = {value} is out of range: it must be in {span}{why}"
    for key, value in flat.items():
        if is_int(value) and abs(value) > MAX_INTEGER:
            return f"{key} = {value} is out of range: a whole number setting must lie within ±{MAX_INTEGER}"
    return None


def memory_problem(config: dict) -> str | None:
    """Every image of a run is held decoded in memory at image_size (uint8): refuse a size whose
    images cannot fit rather than fail deep inside numpy (folders are checked as they load)."""
    from runner.data import published_sizes
    from runner.data.images import decoded_images_problem

    count = sum(published_sizes(config["dataset"]).values())
    return decoded_images_problem(count, config["image_size"]) if count else None


def unknown_key_message(key: str, allowed, where: str, prefix: str) -> str:
    hint = close_matches(key, allowed)
    return (f"{where}: unknown key {prefix}{key}" + (f"; did you mean {hint}?" if hint else "")
            + f" Allowed: {', '.join(allowed)}")


def type_ok(value, types) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def type_name(t: type) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", dict: "table", list: "list"}.get(t, t.__name__)


def parse_overrides(overrides) -> list[tuple[str, Any]]:
    """--set pairs, read and checked on their own: a mistake there is the command line's (exit 2)."""
    try:
        parsed = [parse_override(o) for o in overrides]
        check_assignments(parsed, "--set")
    except ConfigError as err:
        raise OverrideError(str(err)) from None
    return parsed


def parse_override(text: str) -> tuple[str, Any]:
    """'optimizer.learning_rate=0.01' -> ('optimizer.learning_rate', 0.01); values are TOML,
    and a bare word is taken as a string (--set model=alexnet)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set epochs=1")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value
