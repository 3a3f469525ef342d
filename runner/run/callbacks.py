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
from runner.options import epoch_seed


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


class NetworkEpochHook(Callback):
    """Tells a network that has an `epoch_begins(epoch)` method which epoch starts (airbench
    freezes its whitening bias after the first epochs)."""

    def __init__(self, first_epoch: int = 0):
        super().__init__()
        self.first_epoch = first_epoch

    def on_epoch_begin(self, epoch, logs=None):
        hook = getattr(self.model.network, "epoch_begins", None)
        if hook:
            hook(self.first_epoch + epoch)


class DecoupledWeightDecay(Callback):
    """Weight decay apart from the gradient (SGDW, Loshchilov & Hutter 2019): after every step each
    trained weight w becomes w * (1 - lr * coefficient), with the schedule's learning rate (not a
    per-parameter multiple of it), so neither momentum nor a bias's larger rate scales the decay.
    It must come before paddle's LRScheduler callback, which moves the rate at the same hook."""

    def __init__(self, coefficient: float):
        super().__init__()
        self.coefficient = coefficient

    def on_train_batch_end(self, step, logs=None):
        factor = 1.0 - float(self.model._optimizer.get_lr()) * self.coefficient
        with paddle.no_grad():
            for param in self.model.network.parameters():
                if not param.stop_gradient:
                    param.set_value(param * factor)


class Lookahead(Callback):
    """airbench's Lookahead (Zhang et al. 2019 with an exponential average, Jordan 2024): every
    `every` steps the average a of the network's float state moves to it, a <- alpha*a + (1-alpha)*w,
    and the network takes the average, w <- a; alpha = decay**every * (t/T)**3 grows from 0 to
    decay**every over the T steps, and at the last step the network takes the average as it is.

    The average is a state of its own (it differs from the weights between syncs): `arrays()` is
    saved with every checkpoint and given back as `restored`, so a resumed run continues bit for bit."""

    PREFIX = "lookahead/"

    def __init__(self, every: int, decay: float, total_steps: int, first_step: int = 0,
                 restored: dict | None = None):
        super().__init__()
        self.every, self.decay, self.total = every, decay, total_steps
        self.step, self.restored = first_step, restored or {}
        self.average: dict = {}

    def on_train_begin(self, logs=None):
        state = self.model.network.state_dict()
        saved = {k[len(self.PREFIX):]: v for k, v in self.restored.items() if k.startswith(self.PREFIX)}
        self.average = {name: paddle.to_tensor(saved[name]) if name in saved else tensor.clone()
                        for name, tensor in state.items() if tensor.dtype in (paddle.float32, paddle.float64)}

    def alpha(self, step: int) -> float:
        return self.decay ** self.every * (step / self.total) ** 3

    def on_train_batch_end(self, step, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self.sync(self.alpha(self.step))
        if self.step == self.total:
            self.sync(1.0)

    def sync(self, alpha: float) -> None:
        with paddle.no_grad():
            for name, tensor in self.model.network.state_dict().items():
                if name in self.average:
                    self.average[name] = alpha * self.average[name] + (1.0 - alpha) * tensor
                    tensor.set_value(self.average[name])

    def arrays(self) -> dict:
        return {self.PREFIX + name: value.numpy() for name, value in self.average.items()}
