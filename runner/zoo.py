"""What the sweep process asks of the model zoo without importing it: which models there are, whether
a model takes a run's `model_args`, and the multiply-accumulates of its forward pass (for the plan's
time estimate).

The zoo is paddle code, and part of it is paddle's own list of constructors, so only the zoo can
answer: a child process imports it and answers every question a sweep has at once, and the answers
are kept on disk (~/.cache/runner/zoo-<version>.json), keyed by a hash of the zoo's source and
paddle's version, so a sweep builds a network to count its operations once per machine, not once
per plan. A process that has imported the zoo already (a worker, `runner train`, a test) answers
itself.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from runner.errors import RunnerError, first_line, unknown_model_message
from runner.store.layout import zoo_cache
from runner.store.runfiles import atomic_write, read_json

MODELS = Path(__file__).parent / "models"
_answers: dict[str, object] = {}  # this process's answers, by question
COUNTS = ("macs", "grouped_macs")  # the questions that build a network and count its operations


def known_models() -> dict:
    """{"names": every registered model, "course": the course's}."""
    return ask([["models"]])[0]


def model_problem(name: str) -> str | None:
    """Why `name` is not a model of the zoo (with close matches), or None."""
    models = known_models()
    return None if name in models["names"] else unknown_model_message(name, models["names"], models["course"])


def model_args_problem(name: str, model_args: dict) -> str | None:
    """Why the model's builder does not take `model_args`, or None."""
    return ask([["model_args", name, json.dumps(model_args, sort_keys=True)]])[0] if model_args else None


def forward_macs(model: str, image_size: int, model_args: dict | None = None) -> int | None:
    """Multiply-accumulates of one forward pass of the network at `image_size` (None if it cannot take it)."""
    return forward_macs_of([(model, image_size, model_args or {})])[0]


def forward_macs_of(networks: list[tuple[str, int, dict]]) -> list[int | None]:
    """forward_macs of several networks, asked of the zoo at once."""
    return ask([["macs", model, size, json.dumps(args, sort_keys=True)] for model, size, args in networks])


def grouped_shares_of(networks: list[tuple[str, int, dict]]) -> list[float | None]:
    """The share of each network's forward MACs in grouped and depthwise convolutions (None if it
    cannot be counted), asked of the zoo at once."""
    questions = [[kind, model, size, json.dumps(args, sort_keys=True)]
                 for model, size, args in networks for kind in COUNTS]
    answers = ask(questions)
    return [grouped / total if total and grouped is not None else None
            for total, grouped in zip(answers[::2], answers[1::2])]


def ask_about(configs: list[dict]) -> None:
    """Ask at once what checking these runs' models will ask (their answers are then at hand)."""
    ask([["models"]] + [["model_args", c["model"], json.dumps(c["model_args"], sort_keys=True)]
                        for c in configs if c.get("model") and c.get("model_args")])


def ask(questions: list[list]) -> list:
    """The zoo's answers to `questions`: from this process, the cache on disk, or a child that imports it."""
    keys = [json.dumps(q) for q in questions]
    if "runner.models" in sys.modules:
        # This process holds the zoo, with whatever was registered since it was last asked (a test's
        # own network): which models there are and what they take is asked of it afresh; only the
        # costly answer, a network's operations, is kept.
        _answers.update(answer([k for k in dict.fromkeys(keys) if json.loads(k)[0] not in COUNTS]))
    missing = [k for k in dict.fromkeys(keys) if k not in _answers]
    if missing:
        cache = zoo_cache(zoo_version())
        stored = read_json(cache) or {}
        _answers.update({k: stored[k] for k in missing if k in stored})
        unknown = [k for k in missing if k not in _answers]
        if unknown:
            found = answer(unknown) if "runner.models" in sys.modules else answer_in_child(unknown)
            _answers.update(found)
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(cache, json.dumps({**(read_json(cache) or {}), **found}), durable=False)
            except OSError:
                pass  # a read-only cache only costs the child process next time
    return [_answers[k] for k in keys]


@lru_cache(maxsize=1)
def zoo_version() -> str:
    """A hash of the zoo's source files and of paddle's version: a cached answer is about this zoo."""
    digest = hashlib.sha1()
    for path in sorted(MODELS.rglob("*.py")):
        digest.update(path.relative_to(MODELS).as_posix().encode() + path.read_bytes())
    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()[:16]


def answer_in_child(keys: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "runner.zoo"], input=json.dumps(keys), capture_output=True, text=True)
    if proc.returncode != 0:
        last = first_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}")
        raise RunnerError(f"could not load the model zoo to check the runs' models ({last}); "
                          "`runner models` shows the same error in full")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # the last line: nothing paddle prints


def answer(keys: list[str]) -> dict:
    """Answers from the zoo itself, imported into this process."""
    from runner import models
    from runner.models.build import model_args_problem as builder_problem

    counted: dict[tuple, dict] = {}  # both COUNTS of a network, from one build of it

    def counts(name, size, args_json) -> dict:
        if (name, size, args_json) not in counted:
            try:
                network = models.build_network(name, 2, size, **json.loads(args_json))
                found = {kind: models.count_flops(network, size, only_grouped=kind == "grouped_macs") for kind in COUNTS}
            except Exception:  # noqa: BLE001 - a network that cannot take this size: the run itself will say why
                found = dict.fromkeys(COUNTS)
            counted[name, size, args_json] = found
        return counted[name, size, args_json]

    def one(question):
        kind, *args = question
        if kind == "models":
            return {"names": models.list_models(), "course": models.list_models(models.COURSE)}
        if kind == "model_args":
            return builder_problem(*args)
        return counts(*args)[kind]

    return {key: one(json.loads(key)) for key in keys}


if __name__ == "__main__":  # the child: questions on stdin, answers on stdout
    print(json.dumps(answer(json.loads(sys.stdin.read()))))
