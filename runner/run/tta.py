"""Test-time augmentation: a network's class probabilities averaged over mirrored and shifted views.

    tta = 1   the image and its mirror image, 1/2 each
    tta = 2   those two, plus both shifted one pixel up-left and down-right (border reflected):
              1/4 each unshifted, 1/8 each shifted (airbench94's weights, Jordan 2024)

The output is the log of the weighted mean of the views' softmax probabilities, so that anything
downstream that takes a softmax (the metrics, `runner predict`) gets the mean probabilities back.
Training never sees it, and only the last epoch's evaluation uses it (as airbench does): with
tta = 2 an evaluation costs six times the work, which every epoch would add up to half the
training's time on a CPU. The history marks the epoch it was used on (`"tta"` in its record).
"""
from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

LEVELS = (0, 1, 2)


def views(x, level: int) -> list[tuple[float, paddle.Tensor]]:
    """(weight, view) pairs of a batch NCHW; the weights sum to 1."""
    mirror = lambda t: paddle.flip(t, axis=[3])  # noqa: E731
    if level == 0:
        return [(1.0, x)]
    pairs = [(0.5, x), (0.5, mirror(x))]
    if level == 1:
        return pairs
    h, w = x.shape[2], x.shape[3]
    padded = F.pad(x, [1, 1, 1, 1], mode="reflect")
    shifted = [padded[:, :, 0:h, 0:w], padded[:, :, 2:h + 2, 2:w + 2]]
    return ([(0.25, x), (0.25, mirror(x))]
            + [(0.125, view) for s in shifted for view in (s, mirror(s))])


def averaged(forward, x, level: int):
    """log of the weighted mean over the views of softmax(forward(view))."""
    probs = None
    for weight, view in views(x, level):
        out = forward(view)
        p = weight * F.softmax(out[0] if isinstance(out, (list, tuple)) else out, axis=-1)
        probs = p if probs is None else probs + p
    return paddle.log(paddle.clip(probs, min=1e-12))


class TTANetwork(nn.Layer):
    """`network` evaluated on the views of `level`: what the inference engine exports."""

    def __init__(self, network: nn.Layer, level: int):
        super().__init__()
        self.network, self.level = network, level

    def forward(self, x):
        return averaged(self.network, x, self.level)


class TTAOnLastEpoch(paddle.callbacks.Callback):
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


class DygraphTestTimeAugmentation(paddle.callbacks.Callback):
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
