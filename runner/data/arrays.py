"""In-memory uint8 images as a paddle dataset: what a run trains and evaluates on."""
from __future__ import annotations

import cv2
import numpy as np
import paddle

from runner.data.transforms import Augment, augment_image, scale_to_unit_range
from runner.errors import RunnerError


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
