"""How a finished run holds up on degraded images: its final network scored on its own validation
images under each corruption and severity of a protocol (runner/data/corruptions.py), through the
engine the run was evaluated with while it trained (paddle's inference engine on CPU, else the
dynamic graph: runner/run/inference_eval.py), with the metrics of runner/metrics.py.

    evaluate_robustness(spec, SweepPaths.for_experiment("zoo_pm").run_paths(run_id), protocol)

A sweep's or `runner robustness`'s worker calls it (runner/run/worker.py). Before any corruption the
network is scored on the clean images and must give the run's own final predictions: a checkpoint
that does not (another epoch's, another network's) is refused rather than measured. Results go to
runs/<id>/robustness.json, rewritten atomically after every set, so a run stopped midway resumes
with the sets it lacks.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F

from runner import metrics
from runner.store.checkpoints import Checkpoints
from runner.config import RunSpec, evaluates_on_inference_engine
from runner.cpu import set_math_threads
from runner.data.corruptions import corrupted_sets, import_corruptions, package_version
from runner.data.transforms import scale_to_unit_range
from runner.errors import RunnerError
from runner.faults import fault_point
from runner.run.inference_eval import PredictorForward, build_predictor
from runner.run.tta import TTANetwork
from runner.store.fingerprint import val_digest, what_changed
from runner.store.layout import RunPaths
from runner.predict import load_trained_network
from runner.store.runfiles import checked_predictions, damaged_message, read_json, read_result, write_json_atomic
from runner.run.train import OnEvent, eval_batch_size, run_splits, use_device

# Images whose predicted class may differ between the clean re-evaluation and the run's own final
# predictions (a probability within rounding of a tie); any more and the checkpoint is not the run's.
CLEAN_DISAGREEMENTS_ALLOWED = 1


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, AUC (two classes) and ECE of one evaluation."""
    auc = metrics.roc_auc(probs[:, 1], labels) if probs.shape[1] == 2 else None
    return {"acc": metrics.accuracy(probs, labels), "auc": auc,
            "ece": metrics.expected_calibration_error(probs, labels), "images": int(len(labels))}


def probabilities(forward, images: np.ndarray, batch: int) -> np.ndarray:
    """Class probabilities of uint8 images (N x H x W x 3), scaled as the run's inputs were."""
    out = []
    with paddle.no_grad():
        for start in range(0, len(images), batch):
            x = np.stack([scale_to_unit_range(image) for image in images[start:start + batch]])
            logits = forward(paddle.to_tensor(x))
            if isinstance(logits, (list, tuple)):
                logits = logits[0]
            out.append(F.softmax(logits, axis=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def engine_forward(network, config: dict, folder: Path, on_event: OnEvent):
    """The network's forward on paddle's inference engine where the run evaluated there, else the network."""
    if not evaluates_on_inference_engine(config):
        return network, "dygraph"
    try:
        predictor = build_predictor(network, config["image_size"], config["threads"], folder)
    except Exception as err:  # noqa: BLE001 - as runner/inference_eval.py: the run evaluated in the graph too
        on_event("note", message=f"robustness evaluated in the dynamic graph: the network could not be exported "
                                 f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]})")
        return network, "dygraph"
    return PredictorForward(predictor), "inference"


def final_network(run: RunPaths, result: dict):
    """The run's network as its last epoch left it and evaluated it: with the test-time augmentation
    that epoch's evaluation used, if any (runner/run/tta.py)."""
    newest = Checkpoints(run.checkpoints).epoch_dirs()[:1]
    if not newest or int(newest[0].name.split("-")[1]) != result["epochs_run"]:
        raise RunnerError(f"{run.run_id}: the checkpoint of its final epoch ({result['epochs_run']}) is not in "
                          f"{run.checkpoints}; robustness is measured on the final network, so it cannot be measured")
    network = load_trained_network(newest[0])[0]
    level = (result["history"][-1].get("tta") or 0) if result.get("history") else 0
    return TTANetwork(network, level) if level else network


def evaluate_robustness(spec: RunSpec, run: RunPaths, protocol: dict, data_root=None, cache_dir=None,
                        on_event: OnEvent | None = None) -> dict:
    """Score the finished run `spec` under every (corruption, severity) of `protocol` that
    robustness.json lacks; return the whole file."""
    on_event = on_event or (lambda event, **details: None)
    import_corruptions()  # without the package: one line, before the network and data load
    c = spec.config
    result = read_result(run)
    if result is None:
        raise RunnerError(f"{run.run_id}: no finished result in {run.result}; train the run first")
    use_device(c["device"])
    set_math_threads(c["threads"])
    network = final_network(run, result)
    splits = run_splits(c, data_root, cache_dir)
    check_same_images(run, result, splits.fingerprint)
    val = splits.val
    images, labels = val.images, val.labels
    with tempfile.TemporaryDirectory(prefix="runner-robustness-") as tmp:
        forward, engine = engine_forward(network, c, Path(tmp), on_event)
        batch = eval_batch_size({**c, "nproc": 1})
        clean_probs = probabilities(forward, images, batch)
        check_clean(run, result, clean_probs, labels)
        stored = read_json(run.robustness) or {}
        header = {"run_id": run.run_id, "dataset": c["dataset"], "image_size": c["image_size"],
                  "seed": protocol["seed"], "package": package_version(), "engine": engine,
                  "images": int(len(labels)), "pixels": hashlib.sha1(images.tobytes()).hexdigest()[:16]}
        # sets scored before on another engine are kept (check_clean has just shown this one predicts
        # what the run did); each set names the engine it was scored on, and "engines" lists them all
        sets = stored.get("sets", {}) if all(stored.get(k) == v for k, v in header.items() if k != "engine") else {}
        for entries in sets.values():
            for entry in entries.values():
                entry.setdefault("engine", stored.get("engine"))
        out = {**header, "clean": scores(clean_probs, labels), "sets": sets}
        todo = [(name, severity) for name in protocol["corruptions"] for severity in protocol["severities"]
                if str(severity) not in sets.get(name, {})]
        on_event("note", message=f"robustness: {len(todo)} set(s) of {len(labels)} images to score "
                                 f"({len(protocol['corruptions']) * len(protocol['severities']) - len(todo)} already scored)")
        started = time.perf_counter()
        for name, severity, corrupted in corrupted_sets(images, c["dataset"], todo, protocol["seed"], cache_dir):
            made = time.perf_counter()
            entry = scores(probabilities(forward, corrupted, batch), labels)
            entry.update(corrupt_seconds=round(made - started, 3), evaluate_seconds=round(time.perf_counter() - made, 3),
                         finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), engine=engine)
            out["sets"].setdefault(name, {})[str(severity)] = entry
            write_json_atomic(run.robustness, with_engines(out))
            on_event("note", message=f"robustness {name} severity {severity}: acc {entry['acc']:.4f}")
            fault_point("robustness-set")
            started = time.perf_counter()
    out = with_engines(out)
    write_json_atomic(run.robustness, out)
    return out


def with_engines(out: dict) -> dict:
    """`out` with "engines": every engine its sets were scored on (one, unless the engine changed
    between two invocations)."""
    engines = {entry.get("engine") for entries in out["sets"].values() for entry in entries.values()}
    return {**out, "engines": sorted(e for e in engines | {out["engine"]} if e)}


def check_same_images(run: RunPaths, result: dict, now: dict) -> None:
    """The validation images must be those the run was scored on (its data fingerprint, where it
    recorded one): robustness on other images would not be comparable with its accuracy."""
    recorded = result.get("data")
    if recorded and val_digest(recorded) != val_digest(now):
        change = what_changed(*({"digest": val_digest(f), "val": f["val"]} for f in (recorded, now)))
        raise RunnerError(f"{run.run_id}: its validation images are not the ones it was scored on when it trained "
                          f"({change}); restore the data, or train it afresh with `runner sweep --retrain-stale`")


def check_clean(run: RunPaths, result: dict, probs: np.ndarray, labels: np.ndarray) -> None:
    """The network must predict what the run's final epoch predicted on the same clean images: its
    predictions.npz, as long as that agrees with its result.json."""
    stored, problem, _ = checked_predictions(run, result)
    if problem:
        raise RunnerError(damaged_message(run, problem, consequence="its final checkpoint cannot be checked against "
                                                                    "them and its robustness is not measured"))
    if len(stored["labels"]) != len(labels) or not np.array_equal(stored["labels"], labels):
        raise RunnerError(f"{run.run_id}: its validation images are not the ones it was scored on when it trained "
                          f"(the labels differ); check the dataset at the data root")
    disagree = int(np.sum(stored["final"].argmax(1) != probs.argmax(1)))
    if disagree > CLEAN_DISAGREEMENTS_ALLOWED:
        raise RunnerError(f"{run.run_id}: its final checkpoint predicts {disagree} of {len(labels)} clean validation "
                          "images otherwise than the run did; it is not the network the run scored, so its robustness "
                          "is not measured")
