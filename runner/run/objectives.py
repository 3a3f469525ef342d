"""What paddle.Model optimises and measures: the loss, the metric adapter, the optimizer and its schedule."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from runner import metrics
from runner.options import metric_names


class ClassificationLoss(nn.Layer):
    """Cross entropy on the main logits, plus `aux_weight` x each auxiliary head's loss when the
    network returns several outputs (GoogLeNet in training: 1 x main + 0.3 x aux1 + 0.3 x aux2)."""

    def __init__(self, aux_weight: float = 0.3, label_smoothing: float = 0.0):
        super().__init__()
        self.aux_weight, self.label_smoothing = aux_weight, label_smoothing

    def forward(self, *outputs_and_label):
        *outputs, label = outputs_and_label
        losses = [self.cross_entropy(o, label) for o in outputs]
        return losses[0] + self.aux_weight * sum(losses[1:]) if len(losses) > 1 else losses[0]

    def cross_entropy(self, logits, label):
        if not self.label_smoothing:
            return F.cross_entropy(logits, label)
        # Written out because paddle 3.3's own label_smoothing has no kernel for integer labels.
        # Target: 1 - eps on the true class plus eps spread evenly over all classes (as in PyTorch).
        log_probs = F.log_softmax(logits, axis=-1)
        true_class = -paddle.take_along_axis(log_probs, label.reshape([-1, 1]).astype("int64"), axis=-1)
        uniform = -log_probs.mean(axis=-1, keepdim=True)
        eps = self.label_smoothing
        return ((1 - eps) * true_class + eps * uniform).mean()


class ClassificationMetrics(paddle.metric.Metric):
    """paddle.metric adapter over runner.metrics: accuracy, and AUC/sensitivity/specificity/F1 for
    binary tasks or top-5 for many classes. Only the first output counts (GoogLeNet's main head).

    paddle.Model resets metrics at the end of every pass, before callbacks see the results, so the
    last pass's predictions are kept in `last_probs` / `last_labels` for the callbacks.
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.last_probs = self.last_labels = None
        self.reset()

    def compute(self, *outputs_and_label):
        return F.softmax(outputs_and_label[0], axis=-1), outputs_and_label[-1]

    def update(self, probs, labels):
        self._probs.append(np.asarray(probs, np.float32))
        self._labels.append(np.asarray(labels).reshape(-1).astype(np.int64))
        self._cache = None

    def reset(self):
        if getattr(self, "_probs", None):
            self.last_probs, self.last_labels = self.arrays()
        self._probs, self._labels, self._cache = [], [], None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._probs:
            return np.zeros((0, self.num_classes), np.float32), np.zeros(0, np.int64)
        return np.concatenate(self._probs), np.concatenate(self._labels)

    def accumulate(self):
        # paddle asks after every batch; the answer only changes when a batch arrives
        if self._cache is None:
            values = metrics.summarize(*self.arrays())
            self._cache = [values[n] for n in self.name()]
        return self._cache

    def name(self):
        return metric_names(self.num_classes)


def build_optimizer(opt: dict, epochs: int, scheduler: dict, parameters, steps_per_epoch: int = 1,
                    batch_size: int | None = None):
    """paddle optimizer with its LR schedule (stepped by the LRScheduler callback: per epoch, or per
    step for `linear`). A `decoupled` weight decay is left to the DecoupledWeightDecay callback."""
    base_lr = scaled_learning_rate(opt, batch_size)
    lr = build_schedule(base_lr, epochs, scheduler, steps_per_epoch)
    decay = None if opt.get("decoupled") else opt.get("weight_decay")
    kinds = {
        "sgd": lambda: paddle.optimizer.SGD(lr, parameters=parameters, weight_decay=l2(decay)),
        "momentum": lambda: paddle.optimizer.Momentum(lr, momentum=opt.get("momentum", 0.9), parameters=parameters,
                                                      use_nesterov=opt.get("nesterov", False), weight_decay=l2(decay)),
        "adam": lambda: paddle.optimizer.Adam(lr, beta1=opt.get("beta1", 0.9), beta2=opt.get("beta2", 0.999),
                                              parameters=parameters, weight_decay=l2(decay)),
        # AdamW's decay is decoupled from the gradient, so it takes a plain coefficient.
        "adamw": lambda: paddle.optimizer.AdamW(lr, beta1=opt.get("beta1", 0.9), beta2=opt.get("beta2", 0.999),
                                                parameters=parameters, weight_decay=opt.get("weight_decay") or 0.01),
    }
    return kinds[opt["name"]]()


def scaled_learning_rate(opt: dict, batch_size: int | None) -> float:
    """`learning_rate` is for `reference_batch` images when that is set: scaled to the run's batch
    linearly (Goyal et al. 2017) or by the square root (Krizhevsky 2014), as `batch_rule` says."""
    reference = opt.get("reference_batch")
    if not reference or not batch_size:
        return opt["learning_rate"]
    ratio = batch_size / reference
    return opt["learning_rate"] * (ratio ** 0.5 if opt.get("batch_rule", "linear") == "sqrt" else ratio)


def steps_by_batch(scheduler: dict) -> bool:
    """Whether the schedule moves after every batch (`linear`) rather than after every epoch."""
    return scheduler.get("name", "constant") == "linear"


def scale_norm_bias_lr(network: nn.Layer, factor: float, l2_coefficient: float | None = None) -> int:
    """Multiply the learning rate of every batch norm's bias by `factor` (airbench's 64: a bias of
    normalised activations moves little per step at the network's rate), but not its weight decay:
    an L2 term is divided by the same factor, so the decay per step stays the other weights'.
    Returns how many biases it changed."""
    changed = 0
    for layer in network.sublayers():
        if isinstance(layer, nn.layer.norm._BatchNormBase) and layer.bias is not None:
            layer.bias.optimize_attr["learning_rate"] = factor
            if l2_coefficient:
                layer.bias.regularizer = paddle.regularizer.L2Decay(l2_coefficient / factor)
            changed += 1
    return changed


def l2(coefficient):
    return paddle.regularizer.L2Decay(coefficient) if coefficient else None


def build_schedule(base_lr: float, epochs: int, scheduler: dict, steps_per_epoch: int = 1):
    """A paddle LRScheduler: constant, step or cosine counted in epochs after optional linear warm-up,
    or `linear` counted in steps: from start_factor up to 1 over the first warmup_share of the steps,
    then down to end_factor at the last step (airbench's triangle)."""
    name = scheduler.get("name", "constant")
    warmup = scheduler.get("warmup_epochs", 0)
    if name == "linear":
        return paddle.optimizer.lr.LambdaDecay(base_lr, Triangle(epochs * steps_per_epoch, scheduler))
    if name == "step":
        lr = paddle.optimizer.lr.StepDecay(base_lr, step_size=scheduler.get("step_size", max(1, epochs // 3)),
                                           gamma=scheduler.get("gamma", 0.1))
    elif name == "cosine":
        lr = paddle.optimizer.lr.CosineAnnealingDecay(base_lr, T_max=max(1, epochs - warmup),
                                                      eta_min=scheduler.get("min_lr", 0.0))
    else:
        lr = base_lr
    if warmup:
        lr = paddle.optimizer.lr.LinearWarmup(lr, warmup_steps=warmup, start_lr=base_lr / 10, end_lr=base_lr)
    if not isinstance(lr, paddle.optimizer.lr.LRScheduler):
        lr = paddle.optimizer.lr.LambdaDecay(base_lr, lambda epoch: 1.0)  # constant, but steppable and saved
    return lr


class Triangle:
    """The factor on the learning rate at step t of `total` for the `linear` schedule. Only the
    step count is saved with the optimizer (LRScheduler's last_epoch): a resumed run rebuilds this
    from its settings."""

    def __init__(self, total: int, scheduler: dict):
        self.total = max(1, total)
        self.warmup = int(self.total * scheduler.get("warmup_share", 0.0))
        self.start, self.end = scheduler.get("start_factor", 0.0), scheduler.get("end_factor", 0.0)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            frac = step / self.warmup
            return self.start + (1.0 - self.start) * frac
        frac = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return 1.0 + (self.end - 1.0) * frac
