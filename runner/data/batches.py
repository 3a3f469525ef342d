"""Batches made from in-memory images with numpy, one array operation per step over the whole batch.

A 32x32 Cifar10 epoch is 50 000 images; per image in Python (a paddle DataLoader over
ArrayDataset.__getitem__) the input alone costs several seconds an epoch, and more with workers'
start-up. Here a batch is gathered, mirrored, translated, cut out and scaled as arrays of shape
(batch, H, W, 3): bench/input_pipeline.py measures the share of an epoch it takes.

Randomness comes from numpy's global generator, which EpochSeeder seeds from (seed, epoch) at the
start of every epoch, so a resumed run draws what an uninterrupted one draws. The alternating
flip (airbench, Jordan 2024) mirrors a fixed half of the images on even epochs and the other
half on odd epochs: every image is seen both ways every two epochs, which random flips only
promise on average.
"""
from __future__ import annotations

import numpy as np
import paddle

from runner.data.transforms import Augment, ArrayDataset


def scale_batch(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [-1, 1]: transforms.scale_to_unit_range for a whole batch."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) * (2.0 / 255.0) - 1.0


def mirrored(images: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """The images of `mask` flipped along `axis` of the batch (NHWC: 2 mirrors left-right, 1 upside down)."""
    out = images.copy()
    out[mask] = np.flip(images[mask], axis=axis)
    return out


def translated(images: np.ndarray, pad: int, rng) -> np.ndarray:
    """Each image shifted by up to `pad` pixels each way, the border filled by reflection (as
    transforms.augment_image's pad_crop: OpenCV's BORDER_REFLECT_101 is numpy's "reflect").
    Rows first, then columns, one slice copy per offset (airbench's way): 2 * (2 * pad + 1) copies
    of whole groups instead of a gather per pixel."""
    n, h, w = images.shape[:3]
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy, dx = rng.randint(0, 2 * pad + 1, size=(2, n))
    rows = np.empty((n, h, w + 2 * pad, images.shape[3]), images.dtype)
    for offset in range(2 * pad + 1):
        chosen = dy == offset
        rows[chosen] = padded[chosen, offset:offset + h]
    out = np.empty_like(images)
    for offset in range(2 * pad + 1):
        chosen = dx == offset
        out[chosen] = rows[chosen, :, offset:offset + w]
    return out


def cut_out(images: np.ndarray, size: int, rng) -> np.ndarray:
    """One size x size square per image set to mid-grey (0 after scaling), centred anywhere in the
    image and clipped at its border (DeVries & Taylor 2017)."""
    n, h, w = images.shape[:3]
    cy, cx = rng.randint(0, h, size=n), rng.randint(0, w, size=n)
    y0, x0 = cy - size // 2, cx - size // 2
    ys, xs = np.arange(h)[None, :], np.arange(w)[None, :]
    inside = (((ys >= y0[:, None]) & (ys < y0[:, None] + size))[:, :, None]
              & ((xs >= x0[:, None]) & (xs < x0[:, None] + size))[:, None, :])
    out = images.copy()
    out[inside] = 128
    return out


def brightness_contrast(images: np.ndarray, aug: Augment, rng) -> np.ndarray:
    n = len(images)
    f = images.astype(np.float32)
    if aug.brightness:
        f *= (1.0 + rng.uniform(-aug.brightness, aug.brightness, size=n))[:, None, None, None]
    if aug.contrast:
        mean = f.mean(axis=(1, 2, 3), keepdims=True)
        f = (f - mean) * (1.0 + rng.uniform(-aug.contrast, aug.contrast, size=n))[:, None, None, None] + mean
    return np.clip(f, 0, 255).astype(np.uint8)


def augment_batch(images: np.ndarray, indices: np.ndarray, aug: Augment, epoch: int, flip_half: np.ndarray | None,
                  rng=np.random) -> np.ndarray:
    """The augmentation of transforms.Augment for a batch of uint8 NHWC images at dataset `indices`."""
    if aug.pad_crop:
        images = translated(images, aug.pad_crop, rng)
    if aug.hflip:
        images = mirrored(images, rng.rand(len(images)) < 0.5, axis=2)
    if aug.alternate_flip:
        images = mirrored(images, flip_half[indices] ^ bool(epoch % 2), axis=2)
    if aug.vflip:
        images = mirrored(images, rng.rand(len(images)) < 0.5, axis=1)
    if aug.brightness or aug.contrast:
        images = brightness_contrast(images, aug, rng)
    if aug.cutout:
        images = cut_out(images, aug.cutout, rng)
    return images


class BatchLoader:
    """What paddle.Model.fit iterates: [images, labels] tensors for each batch of `sampler`
    (runner.distributed.ShardedBatchSampler, which orders, shards and numbers the epochs)."""

    def __init__(self, dataset: ArrayDataset, sampler, seed: int = 0):
        self.dataset, self.batch_sampler = dataset, sampler
        self.augment = dataset.augment
        # which images the alternating flip mirrors on even epochs: fixed by the run's seed
        self.flip_half = np.random.RandomState(seed % 2 ** 32).rand(len(dataset)) < 0.5

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        for batch in self.batch_sampler:
            indices = np.asarray(batch, np.int64)
            images = self.dataset.images[indices]
            if self.augment is not None:
                images = augment_batch(images, indices, self.augment, self.batch_sampler.epoch, self.flip_half)
            labels = self.dataset.labels[indices].reshape(-1, 1)
            yield [paddle.to_tensor(scale_batch(images)), paddle.to_tensor(labels)]
