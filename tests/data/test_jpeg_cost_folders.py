"""bench/jpeg_cost.py's datasets: the same lossless Cifar10 images twice, as they are and through
JPEG 75, split per class, readable as folder datasets."""
import sys

import numpy as np
from PIL import Image

from conftest import REPO
from runner.data import open_dataset
from runner.data.cifar10_archive import read_split


def test_the_two_arms_hold_the_same_images_split_alike_and_only_the_jpeg_one_is_changed(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import jpeg_cost
    finally:
        sys.path.remove(str(REPO / "bench"))
    n = 200
    images, labels = read_split(open_dataset("cifar10").archive, "train", "")
    images, labels = images[:n], labels[:n]
    arms = jpeg_cost.write_folders(images, labels, tmp_path)
    listed = {}
    for arm, folder in arms.items():
        data = open_dataset(f"folder:{folder}")
        for split in ("train", "val"):
            paths, classes, problems = data.listed(split)
            assert not problems
            listed[arm, split] = sorted((int(p.stem), data.class_names[c]) for p, c in zip(paths, classes))
    # the same images under the same labels in both arms, three quarters of each class to train
    for split in ("train", "val"):
        assert listed["png", split] == listed["jpeg75", split]
    assert len(listed["png", "train"]) + len(listed["png", "val"]) == n
    names = jpeg_cost.Cifar10.class_names
    assert all(names[labels[i]] == name for i, name in listed["png", "train"] + listed["png", "val"])
    for c in range(10):
        assert sum(1 for i, _ in listed["png", "train"] if labels[i] == c) == int((labels == c).sum()) * 3 // 4
    # the PNG arm is the archive's pixels exactly; the JPEG arm moves them by a few levels
    first = listed["png", "train"][0][0]
    png = np.asarray(Image.open(next((arms["png"] / "train").rglob(f"{first:04d}.png"))))
    jpg = np.asarray(Image.open(next((arms["jpeg75"] / "train").rglob(f"{first:04d}.jpg"))))
    assert np.array_equal(png, images[first])
    assert 1 < np.sqrt(np.mean((jpg.astype(float) - images[first]) ** 2)) < 20
