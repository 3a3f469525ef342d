"""paddle.callbacks for one run: seeding, divergence, history, checkpoints and VisualDL logs.

paddle.Model.fit counts epochs from 0 on every call; a resumed run calls it for the remaining
epochs, so each callback adds `first_epoch` to paddle's count.
"""
from __future__ import annotations

import math
import random
import time

import numpy as np
import paddle
from paddle.callbacks import Callback

from runner.errors import DivergedError
from runner.faults import fault_point


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    paddle.seed(seed)


class EpochSeeder(Callback):
    """Reseed every generator at the start of each epoch from (seed, epoch): data order,
    augmentation and dropout then depend on the epoch alone, so a run resumed at epoch k
    draws exactly what an uninterrupted run draws."""

    def __init__(self, seed: int, first_epoch: int = 0):
        super().__init__()
        self.seed, self.first_epoch = seed, first_epoch

    def on_epoch_begin(self, epoch, logs=None):
        seed_everything(self.seed * 100003 + self.first_epoch + epoch)


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
        self.current = {"epoch": self.first_epoch + epoch + 1, "_t0": time.perf_counter()}

    def on_train_batch_end(self, step, logs=None):
        fault_point("train-step")
        if self.on_step:
            self.on_step(self.current["epoch"], step + 1, self.steps, float(np.asarray(logs["loss"]).reshape(-1)[0]))

    def on_epoch_end(self, epoch, logs=None):
        self.current["train_seconds"] = time.perf_counter() - self.current.pop("_t0")
        self.current["lr"] = float(self.model._optimizer.get_lr())
        self.current["train"] = clean_logs(logs)

    def on_eval_begin(self, logs=None):
        fault_point("eval")
        self._eval_t0 = time.perf_counter()

    def on_eval_end(self, logs=None):
        if not self.current or "train" not in self.current:
            return  # an evaluate() outside fit
        self.current["eval_seconds"] = time.perf_counter() - self._eval_t0
        self.current["val"] = clean_logs(logs)
        self.records.append(self.current)
        if self.on_epoch_done:
            self.on_epoch_done(self.current, self.metric.last_probs, self.metric.last_labels)
        self.current = {}


def clean_logs(logs) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        if key in ("step", "batch_size", "steps"):
            continue
        value = np.asarray(value, dtype=float).reshape(-1)
        out[key] = float(value[0]) if value.size else float("nan")
    return out
