"""paddle.callbacks for one run, all of them: seeding, divergence, history, the network's epoch hook,
decoupled weight decay, Lookahead, early stopping, test-time augmentation, and evaluation on paddle's
inference engine. Checkpoints and the VisualDL log are the recorder's (runner/run/recording.py).

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
from runner.run.tta import TTANetwork, averaged


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
    """Stop at the first non-finite training loss, or the first evaluation whose outputs are not
    finite, instead of training on garbage for the remaining epochs. Evaluation is checked on its
    own: in eval mode batch norm uses its running statistics, which can hold inf or NaN while every
    training loss, computed with the batch's own, stays finite; the argmax of NaN is class 0, so
    such a run would report the share of class 0 as its accuracy."""

    def __init__(self, first_epoch: int = 0, metric=None):
        super().__init__()
        self.first_epoch, self.epoch, self.metric = first_epoch, 0, metric

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = self.first_epoch + epoch

    def on_train_batch_end(self, step, logs=None):
        loss = (logs or {}).get("loss")
        value = float(np.asarray(loss).reshape(-1)[0]) if loss is not None else 0.0
        if not math.isfinite(value):
            raise DivergedError(f"loss is {value} at epoch {self.epoch + 1}, step {step + 1}; "
                                "lower the learning rate or add warm-up")

    def on_eval_end(self, logs=None):
        probs = getattr(self.metric, "last_probs", None)
        bad = int((~np.isfinite(probs)).any(axis=1).sum()) if probs is not None and probs.size else 0
        loss = float(np.asarray((logs or {}).get("loss", 0.0), dtype=float).reshape(-1)[0])
        if bad or not math.isfinite(loss):
            what = (f"the network's outputs for {bad} of the {len(probs)} validation images are not finite (NaN or inf)"
                    if bad else f"the validation loss is {loss}")
            raise DivergedError(f"{what} at epoch {self.epoch + 1}; the run diverged in evaluation mode (batch "
                                "norm's running statistics, say): lower the learning rate or add warm-up")


class AveragedStatistics(Callback):
    """For a run of several processes: at each epoch's end, the network's state that no gradient updates
    (batch norm's running mean and variance: paddle keeps them as parameters that do not train, not
    as buffers) averaged over the processes, as timm's distribute_bn does.
    Each process gathers running statistics from its own share of the images, so without this the
    processes would evaluate different networks, rank 0's checkpoint and export would be one of them,
    and a resumed run would start every process from rank 0's statistics.
    `lookahead`: its average holds a copy of these statistics that each process moves towards its
    own, so that copy is averaged too (else a resumed run's processes would all start from rank 0's)."""

    def __init__(self, lookahead: "Lookahead | None" = None):
        super().__init__()
        self.lookahead = lookahead

    def on_epoch_end(self, epoch, logs=None):
        network = self.model.network
        untrained = {name: p for name, p in network.named_parameters() if not p.trainable}
        untrained.update(network.named_buffers())
        for name, tensor in untrained.items():
            if paddle.is_floating_point(tensor):
                average_over_processes(tensor)
                if self.lookahead and name in self.lookahead.average:
                    average_over_processes(self.lookahead.average[name])


def average_over_processes(tensor) -> None:
    """`tensor`, in place, the mean of its values in every process of the run."""
    paddle.distributed.all_reduce(tensor)
    paddle.assign(tensor / paddle.distributed.get_world_size(), output=tensor)


class History(Callback):
    """Per-epoch record of train/val metrics and timings; calls `on_epoch_done(record, model)`
    once the epoch's evaluation has finished, and `on_step(epoch, step, steps, loss)` per batch.
    `counts_cpu`: whether this process does all the training's work, so that its CPU time is the
    training's (data-loader worker processes do part of it elsewhere: then none is recorded)."""

    def __init__(self, records: list[dict], metric, steps: int, first_epoch: int = 0, on_epoch_done=None,
                 on_step=None, counts_cpu: bool = True):
        super().__init__()
        self.records, self.metric, self.steps, self.first_epoch = records, metric, steps, first_epoch
        self.on_epoch_done, self.on_step, self.counts_cpu = on_epoch_done, on_step, counts_cpu
        self.current: dict = {}

    def on_epoch_begin(self, epoch, logs=None):
        # the rate this epoch trains with (paddle's LRScheduler callback steps it at the epoch's end)
        self.current = {"epoch": self.first_epoch + epoch + 1, "_t0": time.perf_counter(),
                        "_cpu0": time.process_time(), "lr": float(self.model._optimizer.get_lr())}
        self.loss_sums = {"train": [0.0, 0.0], "eval": [0.0, 0.0]}

    def add_loss(self, mode: str, logs) -> float:
        loss = float(np.asarray(logs["loss"]).reshape(-1)[0])
        weight = float(logs.get("batch_size", 1))
        self.loss_sums[mode][0] += loss * weight
        self.loss_sums[mode][1] += weight
        return loss

    def train_totals(self) -> tuple[float | None, float]:
        """This epoch's CPU time of training and its mean training loss, in one exchange between the
        processes when there are several.
        The CPU time is that of this process's threads, summed over every process; None where
        data-loader worker processes did part of the work. It grows far less than wall time when
        other work shares the cores, so runs trained under different loads can be compared by it."""
        seconds = time.process_time() - self.current.pop("_cpu0")
        seconds, total, count = summed_over_processes([seconds, *self.loss_sums["train"]])
        return (seconds if self.counts_cpu else None), mean_of(total, count)

    def mean_loss(self, mode: str) -> float:
        """The epoch's mean loss over all its batches (paddle's logs hold only the last batch's),
        averaged over every process when there are several."""
        return mean_of(*summed_over_processes(self.loss_sums[mode]))

    def on_train_batch_end(self, step, logs=None):
        fault_point("train-step")
        loss = self.add_loss("train", logs)
        if self.on_step:
            self.on_step(self.current["epoch"], step + 1, self.steps, loss)

    def on_epoch_end(self, epoch, logs=None):
        self.current["train_seconds"] = time.perf_counter() - self.current.pop("_t0")
        self.current["train_cpu_seconds"], loss = self.train_totals()
        self.current["train"] = {**clean_logs(logs), "loss": loss}
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


def summed_over_processes(values: list[float]) -> list[float]:
    """`values` summed element by element over every process of the run (as they are, alone)."""
    if paddle.distributed.get_world_size() == 1:
        return list(values)
    total = paddle.to_tensor(values, dtype="float64")
    paddle.distributed.all_reduce(total)
    return total.numpy().tolist()


def mean_of(total: float, count: float) -> float:
    return total / count if count else float("nan")


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


class TTAOnLastEpoch(Callback):
    """Which level of test-time augmentation the evaluation now starting uses: `level` on the
    run's last epoch, none before it."""

    def __init__(self, level: int, epochs: int, first_epoch: int = 0):
        super().__init__()
        self.level, self.epochs, self.first_epoch = level, epochs, first_epoch
        self.epoch = first_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = self.first_epoch + epoch + 1  # counted from 1, as the history

    def level_now(self) -> int:
        return self.level if self.epoch == self.epochs else 0


class DygraphTestTimeAugmentation(Callback):
    """For runs evaluated in the dynamic graph: the network's forward averages the views while fit
    evaluates (the inference engine's runs export TTANetwork instead)."""

    def __init__(self, schedule: TTAOnLastEpoch):
        super().__init__()
        self.schedule = schedule

    def on_eval_begin(self, logs=None):
        level = self.schedule.level_now()
        if not level:
            return
        network = self.model.network
        own = type(network).forward.__get__(network)  # the class's forward: the instance's is replaced
        object.__setattr__(network, "forward", lambda x: averaged(own, x, level))

    def on_eval_end(self, logs=None):
        self.model.network.__dict__.pop("forward", None)


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

    def __init__(self, image_size: int, threads: int, on_fallback=None, tta: TTAOnLastEpoch | None = None):
        super().__init__()
        self.image_size, self.threads, self.tta = image_size, threads, tta
        self.on_fallback = on_fallback or (lambda message: None)
        self.failed = False

    def on_eval_begin(self, logs=None):
        if self.failed:
            return
        network = self.model.network
        try:
            with tempfile.TemporaryDirectory(prefix="runner-eval-") as tmp:
                level = self.tta.level_now() if self.tta else 0
                exported = TTANetwork(network, level) if level else network
                predictor = build_predictor(exported, self.image_size, self.threads, Path(tmp))
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
