"""From cached uint8 images to network input: the course's scaling, plus optional augmentation.

The course scales pixels to [-1, 1] (x / 255 * 2 - 1); every dataset here does the same so a
network sees one input range whatever it trains on. Augmentation works on the uint8 image before
scaling and draws from numpy's global generator, which the trainer seeds per epoch: a resumed run
sees the same augmented images as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import paddle

from runner.errors import RunnerError


@dataclass(frozen=True)
class Augment:
    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0        # degrees, uniform in [-rotate, rotate]
    crop_scale: float = 1.0    # random crop of this fraction of the area or more, resized back
    pad_crop: int = 0          # pad by this many pixels and crop back at random (CIFAR style)
    brightness: float = 0.0    # multiply by 1 + uniform(-b, b)
    contrast: float = 0.0      # stretch around the mean by 1 + uniform(-c, c)
    alternate_flip: bool = False  # mirror half the images (fixed by the seed) on even epochs, the other half on odd
    cutout: int = 0            # grey out one random square of this many pixels a side (DeVries & Taylor 2017)

    @property
    def active(self) -> bool:
        return self != Augment()

    @property
    def per_batch(self) -> bool:
        """Whether every step is vectorised over a batch (runner/data/batches.py); rotations and
        scaled crops are drawn and resampled per image with OpenCV."""
        return not self.rotate and self.crop_scale >= 1.0


def scale_to_unit_range(image: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW in [-1, 1], as the course does."""
    return (image.transpose(2, 0, 1).astype(np.float32) * (2.0 / 255.0)) - 1.0


def augment_image(image: np.ndarray, aug: Augment, rng=np.random) -> np.ndarray:
    h, w = image.shape[:2]
    if aug.pad_crop:
        p = aug.pad_crop
        padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_REFLECT_101)
        y, x = rng.randint(0, 2 * p + 1, size=2)
        image = padded[y:y + h, x:x + w]
    if aug.crop_scale < 1.0:
        area = rng.uniform(aug.crop_scale, 1.0)
        ch, cw = max(1, int(round(h * np.sqrt(area)))), max(1, int(round(w * np.sqrt(area))))
        y, x = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
        image = cv2.resize(image[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    if aug.rotate:
        angle = rng.uniform(-aug.rotate, aug.rotate)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        image = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    if aug.hflip and rng.rand() < 0.5:
        image = image[:, ::-1]
    if aug.vflip and rng.rand() < 0.5:
        image = image[::-1]
    if aug.brightness or aug.contrast:
        f = image.astype(np.float32)
        if aug.brightness:
            f *= 1.0 + rng.uniform(-aug.brightness, aug.brightness)
        if aug.contrast:
            mean = f.mean()
            f = (f - mean) * (1.0 + rng.uniform(-aug.contrast, aug.contrast)) + mean
        image = np.clip(f, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


class ArrayDataset(paddle.io.Dataset):
    """A paddle-style dataset over in-memory uint8 images: (CHW float32 in [-1, 1], int64 label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, image_size: int, augment: Augment | None = None):
        super().__init__()
        self.images, self.labels = images, labels.astype(np.int64)
        self.image_size = image_size
        self.augment = augment if augment is not None and augment.active else None
        if self.augment and (self.augment.alternate_flip or self.augment.cutout) and not self.per_batch:
            raise RunnerError("augment.alternate_flip and augment.cutout work on whole batches of images at their "
                              f"stored size ({self.images.shape[1]} px), and this run resizes to {image_size} px or "
                              "rotates or crops per image; drop them, or rotate and crop_scale")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def per_batch(self) -> bool:
        """Whether runner/data/batches.py can make its batches: images already at the input size,
        augmentation that works on whole batches."""
        return self.images.shape[1] == self.image_size and (self.augment is None or self.augment.per_batch)

    def __getitem__(self, i):
        image = self.images[i]
        if image.shape[0] != self.image_size:
            image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_LINEAR)
        if self.augment is not None:
            image = augment_image(image, self.augment)
        return scale_to_unit_range(image), self.labels[i:i + 1]
