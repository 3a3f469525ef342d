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


def build_optimizer(opt: dict, epochs: int, scheduler: dict, parameters):
    """paddle optimizer with an LR schedule that the LRScheduler callback steps once per epoch."""
    lr = build_schedule(opt["learning_rate"], epochs, scheduler)
    decay = opt.get("weight_decay")
    kinds = {
        "sgd": lambda: paddle.optimizer.SGD(lr, parameters=parameters, weight_decay=l2(decay)),
        "momentum": lambda: paddle.optimizer.Momentum(lr, momentum=opt.get("momentum", 0.9), parameters=parameters,
                                                      use_nesterov=opt.get("nesterov", False), weight_decay=l2(decay)),
        "adam": lambda: paddle.optimizer.Adam(lr, beta1=opt.get("beta1", 0.9), beta2=opt.get("beta2", 0.999),
                                              parameters=parameters, weight_decay=l2(decay)),
        # AdamW's decay is decoupled from the gradient, so it takes a plain coefficient.
        "adamw": lambda: paddle.optimizer.AdamW(lr, beta1=opt.get("beta1", 0.9), beta2=opt.get("beta2", 0.999),
                                                parameters=parameters, weight_decay=decay or 0.01),
    }
    return kinds[opt["name"]]()


def l2(coefficient):
    return paddle.regularizer.L2Decay(coefficient) if coefficient else None


def build_schedule(base_lr: float, epochs: int, scheduler: dict):
    """A paddle LRScheduler counted in epochs: constant, step or cosine, after optional linear warm-up."""
    name = scheduler.get("name", "constant")
    warmup = scheduler.get("warmup_epochs", 0)
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
