"""paddle.callbacks for one run: seeding, divergence, history, early stopping, and evaluation on
paddle's inference engine. Checkpoints and the VisualDL log are the recorder's (runner/run/recording.py).

paddle.Model.fit counts epochs from 0 on every call; a resumed run calls it for the remaining
epochs, so each callback adds `first_epoch` to paddle's count.
"""
from __future__ import annotations

import math
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle
from paddle.callbacks import Callback, EarlyStopping

from runner.cpu import set_math_threads
from runner.errors import DivergedError, first_line
from runner.faults import fault_point
from runner.options import epoch_seed
from runner.run.inference_eval import PredictorForward, build_predictor


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    paddle.seed(seed)


class EpochSeeder(Callback):
    """Reseed every generator at the start of each epoch from (seed, epoch): data order,
    augmentation and dropout then depend on the epoch alone, so a run resumed at epoch k
    draws exactly what an uninterrupted run draws."""

    def __init__(self, seed: int, first_epoch: int = 0, samplers=()):
        super().__init__()
        self.seed, self.first_epoch, self.samplers = seed, first_epoch, samplers

    def on_epoch_begin(self, epoch, logs=None):
        seed_everything(epoch_seed(self.seed, self.first_epoch + epoch))
        for sampler in self.samplers:
            sampler.set_epoch(self.first_epoch + epoch)


class DivergenceGuard(Callback):
    """Stop at the first non-finite loss instead of training on garbage for the remaining epochs."""

    def __init__(self, first_epoch: int = 0):
        super().__init__()
        self.first_epoch, self.epoch = first_epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = self.first_epoch + epoch

    def on_train_batch_end(self, step, logs=None):
        loss = (logs or {}).get("loss")
        value = float(np.asarray(loss).reshape(-1)[0]) if loss is not None else 0.0
        if not math.isfinite(value):
            raise DivergedError(f"loss is {value} at epoch {self.epoch + 1}, step {step + 1}; "
                                "lower the learning rate or add warm-up")


class History(Callback):
    """Per-epoch record of train/val metrics and timings; calls `on_epoch_done(record, model)`
    once the epoch's evaluation has finished, and `on_step(epoch, step, steps, loss)` per batch."""

    def __init__(self, records: list[dict], metric, steps: int, first_epoch: int = 0, on_epoch_done=None,
                 on_step=None):
        super().__init__()
        self.records, self.metric, self.steps, self.first_epoch = records, metric, steps, first_epoch
        self.on_epoch_done, self.on_step = on_epoch_done, on_step
        self.current: dict = {}

    def on_epoch_begin(self, epoch, logs=None):
        # the rate this epoch trains with (paddle's LRScheduler callback steps it at the epoch's end)
        self.current = {"epoch": self.first_epoch + epoch + 1, "_t0": time.perf_counter(),
                        "lr": float(self.model._optimizer.get_lr())}
        self.loss_sums = {"train": [0.0, 0.0], "eval": [0.0, 0.0]}

    def add_loss(self, mode: str, logs) -> float:
        loss = float(np.asarray(logs["loss"]).reshape(-1)[0])
        weight = float(logs.get("batch_size", 1))
        self.loss_sums[mode][0] += loss * weight
        self.loss_sums[mode][1] += weight
        return loss

    def mean_loss(self, mode: str) -> float:
        """The epoch's mean loss over all its batches (paddle's logs hold only the last batch's),
        averaged over every process when there are several."""
        total, count = self.loss_sums[mode]
        if paddle.distributed.get_world_size() > 1:
            sums = paddle.to_tensor([total, count], dtype="float64")
            paddle.distributed.all_reduce(sums)
            total, count = sums.numpy().tolist()
        return total / count if count else float("nan")

    def on_train_batch_end(self, step, logs=None):
        fault_point("train-step")
        loss = self.add_loss("train", logs)
        if self.on_step:
            self.on_step(self.current["epoch"], step + 1, self.steps, loss)

    def on_epoch_end(self, epoch, logs=None):
        self.current["train_seconds"] = time.perf_counter() - self.current.pop("_t0")
        self.current["train"] = {**clean_logs(logs), "loss": self.mean_loss("train")}
        self.current["peak_rss_mb"] = peak_rss_mb()

    def on_eval_begin(self, logs=None):
        fault_point("eval")
        self._eval_t0 = time.perf_counter()

    def on_eval_batch_end(self, step, logs=None):
        if self.current:
            self.add_loss("eval", logs)

    def on_eval_end(self, logs=None):
        if not self.current or "train" not in self.current:
            return  # an evaluate() outside fit
        self.current["eval_seconds"] = time.perf_counter() - self._eval_t0
        self.current["val"] = {**clean_logs(logs), "loss": self.mean_loss("eval")}
        self.records.append(self.current)
        if self.on_epoch_done:
            self.on_epoch_done(self.current, self.metric.last_probs, self.metric.last_labels)
        self.current = {}


def peak_rss_mb() -> float:
    """The most resident memory this process has held so far (Linux reports it in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def clean_logs(logs) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        if key in ("step", "batch_size", "steps"):
            continue
        value = np.asarray(value, dtype=float).reshape(-1)
        out[key] = float(value[0]) if value.size else float("nan")
    return out


class ResumableEarlyStopping(EarlyStopping):
    """paddle's EarlyStopping, primed with the epochs a resumed run already has behind it."""

    def __init__(self, history: list[dict], monitor: str, patience: int, min_delta: float):
        super().__init__(monitor=monitor, mode="min" if monitor == "loss" else "max", patience=patience,
                         min_delta=min_delta, verbose=0, save_best_model=False)
        self.history = history

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for record in self.history:
            self.on_eval_end(record["val"])
        self.model.stop_training = False


class InferenceEvaluation(Callback):
    """Runs each of fit's evaluations on the inference engine. If the network cannot be exported
    (a layer the static graph does not support), it says so once and evaluates in the dynamic graph."""

    def __init__(self, image_size: int, threads: int, on_fallback=None):
        super().__init__()
        self.image_size, self.threads = image_size, threads
        self.on_fallback = on_fallback or (lambda message: None)
        self.failed = False

    def on_eval_begin(self, logs=None):
        if self.failed:
            return
        network = self.model.network
        try:
            with tempfile.TemporaryDirectory(prefix="runner-eval-") as tmp:
                predictor = build_predictor(network, self.image_size, self.threads, Path(tmp))
        except Exception as err:  # noqa: BLE001 - any export failure has the same remedy
            self.failed = True
            self.on_fallback(f"evaluating in the dynamic graph: the network could not be exported to paddle's "
                             f"inference engine ({type(err).__name__}: {first_line(err)}); "
                             "set eval_engine = \"dygraph\" to skip the attempt")
            return
        # an instance attribute shadows the class's forward; Layer.__call__ looks it up per call
        object.__setattr__(network, "forward", PredictorForward(predictor))

    def on_eval_end(self, logs=None):
        self.model.network.__dict__.pop("forward", None)
        # The predictor re-configures the math library's threads for itself; left so, training with
        # threads = 2 ran 1.5x slower afterwards and summed in another order (other losses).
        set_math_threads(self.threads)
