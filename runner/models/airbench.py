"""airbench94: Keller Jordan's network for 94 % on Cifar10 in a few seconds of an A100.

Source: K. Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU" (arXiv:2404.00498, 2024) and
its code, github.com/KellerJordan/cifar10-airbench (legacy/airbench94.py): 0.36 PFLOP for 9.9
epochs, 94.01 % mean over 1000 runs with test-time augmentation.

    2x2 whitening conv (3 -> 24, frozen, fitted to the training images), GELU
    3 conv groups (64, 256, 256): conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU
    maxpool3, linear 256 -> classes without bias, logits x 1/9

The whitening filters are the eigenvectors of the 2x2 patch covariance of the training images,
scaled by 1/sqrt(eigenvalue), and their negatives: the layer's output patches have (nearly) the
identity as covariance, so the first trained layer sees decorrelated input. `fit_to_data` computes
them; the trainer calls it with the run's own training images before the first epoch (a resumed
run reads them back from its checkpoint). Batch norms train their bias only (the paper's weight
is frozen at 1) with eps 1e-12; their running statistics keep 0.6 of the old value per batch (the
paper's `momentum=0.6`, given to PyTorch as 1 - 0.6). Convolutions and the classifier start as
PyTorch's do (uniform in +-1/sqrt(fan_in), 2.45x narrower than paddle's default): before a batch
norm, a weight's scale sets its effective learning rate, and the recipe was tuned with PyTorch's.
"""
from __future__ import annotations

import numpy as np
from paddle import nn

from runner.models.layers import torch_uniform
from runner.models.registry import RUNNER, register_model

WHITEN_EPS = 5e-4  # added to the eigenvalues before the 1/sqrt: the paper's value


class FrozenWeightBatchNorm(nn.BatchNorm2D):
    def __init__(self, channels: int):
        super().__init__(channels, momentum=0.6, epsilon=1e-12)  # paddle keeps `momentum` of the old value
        self.weight.stop_gradient = True


def dirac_init(conv: nn.Conv2D) -> None:
    """The paper's initialisation: the default, with an identity kernel on the first in-channels."""
    w = conv.weight.numpy()
    out_c, in_c, kh, kw = w.shape
    for i in range(min(out_c, in_c)):
        w[i] = 0.0
        w[i, i, kh // 2, kw // 2] = 1.0
    conv.weight.set_value(w)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2D:
    conv = nn.Conv2D(in_channels, out_channels, 3, padding="SAME", weight_attr=torch_uniform(), bias_attr=False)
    dirac_init(conv)
    return conv


class ConvGroup(nn.Layer):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels)
        self.pool = nn.MaxPool2D(2)
        self.norm1 = FrozenWeightBatchNorm(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.norm2 = FrozenWeightBatchNorm(out_channels)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Airbench(nn.Layer):
    def __init__(self, num_classes: int = 10, widths=(64, 256, 256), scale: float = 1 / 9,
                 whiten_bias_epochs: int = 3):
        super().__init__()
        self.whiten = nn.Conv2D(3, 24, 2, padding=0)
        self.whiten.weight.stop_gradient = True
        self.whiten_bias_epochs = whiten_bias_epochs
        self.act = nn.GELU()
        groups, in_channels = [], 24
        for width in widths:
            groups.append(ConvGroup(in_channels, width))
            in_channels = width
        self.groups = nn.Sequential(*groups)
        self.pool = nn.MaxPool2D(3)
        self.head = nn.Linear(in_channels, num_classes, weight_attr=torch_uniform(), bias_attr=False)
        self.scale = scale

    def forward(self, x):
        x = self.pool(self.groups(self.act(self.whiten(x))))
        return self.head(x.flatten(1)) * self.scale

    def fit_to_data(self, images: np.ndarray) -> None:
        """Set the whitening filters from `images` (float32 N x 3 x H x W, as the network sees them)."""
        self.whiten.weight.set_value(whitening_filters(images, self.whiten.weight.shape[2]))

    def epoch_begins(self, epoch: int) -> None:
        """The paper trains the whitening bias for the first epochs only, then freezes it."""
        self.whiten.bias.stop_gradient = epoch >= self.whiten_bias_epochs


def patches(images: np.ndarray, size: int) -> np.ndarray:
    """Every size x size patch of every image, flattened channel-major: (N*(H-size+1)*(W-size+1), C*size*size)."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(2, 3))  # N C H' W' s s
    n, c, h, w = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * size * size)


def whitening_filters(images: np.ndarray, size: int = 2, eps: float = WHITEN_EPS) -> np.ndarray:
    """2 * C*size*size filters (C*size*size, and their negatives) that whiten size x size patches."""
    flat = patches(images.astype(np.float64), size)
    covariance = flat.T @ flat / len(flat)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]  # largest first, as the paper
    c = images.shape[1]
    filters = (eigenvectors.T / np.sqrt(eigenvalues + eps)[:, None]).reshape(-1, c, size, size)
    return np.concatenate([filters, -filters]).astype(np.float32)


@register_model("airbench94", origin=RUNNER, default_image_size=32)
def airbench94(num_classes: int = 10, image_size: int = 32, **kwargs):
    """airbench94 (Jordan 2024): whitening + 3 conv groups, 94.01 % on Cifar10 in 9.9 epochs; 1.97 M parameters."""
    return Airbench(num_classes, **kwargs)
