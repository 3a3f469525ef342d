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
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError, close_matches

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
}
TABLE_FIELDS = {
    "optimizer": {"name": (str,), "learning_rate": (float,), "momentum": (float,), "weight_decay": (float,),
                  "beta1": (float,), "beta2": (float,), "nesterov": (bool,)},
    "scheduler": {"name": (str,), "warmup_epochs": (int,), "step_size": (int,), "gamma": (float,),
                  "min_lr": (float,)},
    "augment": {"hflip": (bool,), "vflip": (bool,), "rotate": (float,), "crop_scale": (float,),
                "pad_crop": (int,), "brightness": (float,), "contrast": (float,)},
    "early_stopping": {"patience": (int,), "monitor": (str,), "min_delta": (float,)},
}
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULERS = ("constant", "step", "cosine")
MONITORS = ("acc", "loss", "auc")
EVAL_ENGINES = ("inference", "dygraph")  # see runner/inference_eval.py
HEADS = ("softmax", "sigmoid")  # one logit per class, or the course's one logit (runner/models/layers.py)
TOP_LEVEL = {"name": (str,), "description": (str,), "defaults": (dict,), "runs": (list,), "grid": (dict,)}
# Keys added after runs were first recorded: left out of a run's id while they keep their default.
ADDED_LATER = {"device": "cpu", "nproc": 1, "amp": False, "eval_engine": "inference", "head": "softmax"}
# Keys that do not change what is trained (a label; which device of a kind), so not a run's identity.
NOT_IDENTITY = ("label", "device")


def identity(config: dict, ignore: tuple[str, ...] = ()) -> dict:
    """What makes a run's result what it is: its settings without display-only ones and `ignore`,
    written the same way for runs recorded before keys of ADDED_LATER existed."""
    out = {k: v for k, v in config.items() if k not in NOT_IDENTITY + ignore}
    out["device"] = config.get("device", "cpu").split(":")[0]  # cpu or gpu, not which gpu
    for key, default in ADDED_LATER.items():  # so that ids from before they existed still match
        if out.get(key) == default:
            out.pop(key, None)
    return out


@dataclass(frozen=True)
class RunSpec:
    """One fully resolved run. Its id hashes everything that changes the result."""

    experiment: str
    config: dict = field(hash=False, compare=False)

    def __getattr__(self, key):
        try:
            return self.__dict__["config"][key]
        except KeyError:
            raise AttributeError(key) from None

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
        return f"{c['model']}{args}{head} {opt['name']} lr={opt['learning_rate']:g} {c['image_size']}px seed={c['seed']}"


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

    def find(self, run: str | None) -> RunSpec:
        if run is None:
            return self.runs[0]
        for spec in self.runs:
            if run in (spec.run_id, spec.config["label"], spec.config["model"]):
                return spec
        raise ConfigError(f"{self.path}: no run named {run!r}; runs: "
                          + ", ".join(s.run_id for s in self.runs))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_experiment(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"experiment file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_experiment(data, path, overrides)


def parse_experiment(data: dict, path: Path, overrides=()) -> Experiment:
    where = str(path)
    check_keys(data, TOP_LEVEL, where, "")
    name = data.get("name") or path.stem
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"{where}: name = {name!r}: use letters, digits, '.', '_' or '-' (it names a folder)")
    defaults = data.get("defaults", {})
    check_run(defaults, where, "defaults.")
    runs = data.get("runs", [])
    if not runs:
        raise ConfigError(f"{where}: no [[runs]]; add at least one, e.g.\n[[runs]]\nmodel = \"lenet\"")
    grid = data.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list of values")
    parsed_overrides = [parse_override(o) for o in overrides]
    check_assignments(parsed_overrides, "--set")
    check_assignments([(k, v[0]) for k, v in grid.items()], f"{where}: grid")

    specs, seen = [], set()
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise ConfigError(f"{where}: runs[{i}] must be a table ([[runs]])")
        check_run(run, where, f"runs[{i}].")
        for combo in itertools.product(*grid.values()):
            config = resolve({**defaults, **run}, zip(grid.keys(), combo), parsed_overrides, where, f"runs[{i}]")
            spec = RunSpec(name, config)
            if spec.run_id not in seen:  # identical runs collapse into one
                seen.add(spec.run_id)
                specs.append(spec)
    return Experiment(name, path, specs)


def resolve(run: dict, grid_items, overrides, where: str, context: str) -> dict:
    config = {k: copy.deepcopy(default) for k, (_, default) in RUN_FIELDS.items()}
    config.update(copy.deepcopy(run))
    for key, value in list(grid_items) + overrides:
        set_dotted(config, key, value)
    check_run(config, where, f"{context}.")
    if config["model"] is None:
        raise ConfigError(f"{where}: {context}: no model; set `model = \"...\"` (`runner models` lists them)")
    if isinstance(config["augment"], bool):
        config["augment"] = _default_augment(config["dataset"]) if config["augment"] else {}
    if isinstance(config["early_stopping"], bool):
        config["early_stopping"] = {"patience": 3} if config["early_stopping"] else {}
    check_values(config, where, context)
    return config


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
        if rest and head not in TABLE_FIELDS:
            raise ConfigError(f"{where}: {head} is not a table, so {key} cannot be set")
        probe = {}
        set_dotted(probe, key, value)
        check_run(probe, where, "")


def set_dotted(config: dict, key: str, value) -> None:
    head, _, rest = key.partition(".")
    if not rest:
        config[head] = value
        return
    table = config.get(head) if isinstance(config.get(head), dict) else {}
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
    from runner.models import get_model

    def fail(message):
        raise ConfigError(f"{where}: {context}: {message}")

    try:
        get_model(config["model"])
    except Exception as err:
        fail(f"model: {err}")
    if not is_known_dataset(config["dataset"]):
        fail(f"dataset: {unknown_dataset_message(config['dataset'])}")
    for key in ("image_size", "epochs", "batch_size", "threads", "nproc"):
        if config[key] < 1:
            fail(f"{key} = {config[key]} must be at least 1")
    for key in ("train_limit", "val_limit", "num_workers", "seed"):
        if config[key] < 0:
            fail(f"{key} = {config[key]} must not be negative")
    if not re.fullmatch(r"cpu|gpu(:\d+)?", config["device"]):
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
    if not opt.get("learning_rate", 0) > 0:
        fail("optimizer.learning_rate must be set and positive")
    if "momentum" in opt and opt["name"] not in ("momentum",):
        fail(f"optimizer.momentum does not apply to {opt['name']}; use name = \"momentum\" or drop it")
    if opt["name"] not in ("adam", "adamw") and ({"beta1", "beta2"} & set(opt)):
        fail(f"optimizer.beta1/beta2 apply to adam and adamw, not {opt['name']}")
    sched = config["scheduler"]
    if sched.get("name", "constant") not in SCHEDULERS:
        fail(f"scheduler.name = {sched.get('name')!r}; allowed: {', '.join(SCHEDULERS)}")
    if sched.get("name") == "step" and sched.get("step_size", 1) < 1:
        fail("scheduler.step_size must be at least 1")
    if config["early_stopping"].get("monitor", "acc") not in MONITORS:
        fail(f"early_stopping.monitor = {config['early_stopping']['monitor']!r}; allowed: {', '.join(MONITORS)}")
    if not 0.0 <= config["label_smoothing"] < 1.0:
        fail("label_smoothing must be in [0, 1)")
    if config["validation"] != "official":
        from runner.data import parse_holdout

        try:
            parse_holdout(config["validation"])
        except ConfigError as err:
            fail(str(err))


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
