#!/usr/bin/env python3
"""Speed levers that change what is computed, measured one at a time on one process and one thread.

    python bench/levers.py            # a few minutes

- batch size: training images/s of AlexNet and ResNet-50 at the course's batch 10 against 32
  (a larger batch is another experiment: fewer, larger steps at the same learning rate);
- channels layout: AlexNet's convolutions in NCHW (paddle's default) against NHWC, forward and
  backward, same weights.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import runner  # noqa: E402,F401  (sets the CPU switches before paddle loads)
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

from runner.cpu import set_math_threads  # noqa: E402
from runner.models import build_network  # noqa: E402


def train_images_per_second(model: str, batch: int, steps: int = 6) -> float:
    paddle.seed(0)
    net = build_network(model, 2, 224)
    opt = paddle.optimizer.Momentum(0.001, 0.9, parameters=net.parameters())
    x = paddle.to_tensor(np.random.default_rng(0).uniform(-1, 1, (batch, 3, 224, 224)).astype("float32"))
    y = paddle.to_tensor(np.zeros((batch, 1), "int64"))
    net.train()

    def step():
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()
        return float(loss)

    step()  # first-call allocations
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - started)


def alexnet_convolutions(data_format: str) -> paddle.nn.Sequential:
    """The course AlexNet's five convolutions (shapes read from runner's own network) in `data_format`."""
    paddle.seed(0)
    course = build_network("alexnet", 2, 224)
    layers = []
    for conv in (course.conv1, course.conv2, course.conv3, course.conv4, course.conv5):
        layers += [paddle.nn.Conv2D(conv._in_channels, conv._out_channels, conv._kernel_size, conv._stride,
                                    conv._padding, data_format=data_format), paddle.nn.ReLU()]
        if conv in (course.conv1, course.conv2, course.conv5):  # where AlexNet.features pools
            layers.append(paddle.nn.MaxPool2D(2, 2, data_format=data_format))
    return paddle.nn.Sequential(*layers)


def convolution_images_per_second(data_format: str, batch: int = 10, steps: int = 6) -> float:
    net = alexnet_convolutions(data_format)
    shape = (batch, 3, 224, 224) if data_format == "NCHW" else (batch, 224, 224, 3)
    x = paddle.to_tensor(np.random.default_rng(0).uniform(-1, 1, shape).astype("float32"))

    def step():
        out = net(x)
        out.mean().backward()
        net.clear_gradients()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - started)


def main():
    set_math_threads(1)
    print("training images/s, one thread, momentum SGD, 224x224")
    for model in ("alexnet", "paddle.vision/resnet50"):
        rates = {batch: train_images_per_second(model, batch) for batch in (10, 32)}
        print(f"  {model:<24} batch 10: {rates[10]:6.2f}   batch 32: {rates[32]:6.2f}   ({rates[32] / rates[10]:.2f}x)",
              flush=True)
    print("AlexNet's five convolutions, forward + backward, batch 10, images/s")
    rates = {fmt: convolution_images_per_second(fmt) for fmt in ("NCHW", "NHWC")}
    print(f"  NCHW: {rates['NCHW']:6.2f}   NHWC: {rates['NHWC']:6.2f}   ({rates['NHWC'] / rates['NCHW']:.2f}x)")


if __name__ == "__main__":
    main()
