"""In-memory uint8 images as a paddle dataset: what a run trains and evaluates on."""
from __future__ import annotations

import cv2
import numpy as np
import paddle

from runner.data.transforms import Augment, augment_image, scale_to_unit_range


class ArrayDataset(paddle.io.Dataset):
    """A paddle-style dataset over in-memory uint8 images: (CHW float32 in [-1, 1], int64 label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, image_size: int, augment: Augment | None = None):
        super().__init__()
        self.images, self.labels = images, labels.astype(np.int64)
        self.image_size = image_size
        self.augment = augment if augment is not None and augment.active else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i]
        if image.shape[0] != self.image_size:
            image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_LINEAR)
        if self.augment is not None:
            image = augment_image(image, self.augment)
        return scale_to_unit_range(image), self.labels[i:i + 1]
