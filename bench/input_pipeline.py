#!/usr/bin/env python3
"""Images/s of the training input pipeline on iChallenge-PM at 224x224: the runner's cached arrays
(decoded once, then augmented and scaled per epoch) against the course's decode-every-epoch reader
(cv2.imread + resize + scale for every image, every epoch, as in seed_recipe.py).

    python bench/input_pipeline.py [--epochs 3] [--augment]
    python bench/input_pipeline.py --cifar10 [--steps 4]

With --cifar10: one 50 000-image epoch of Cifar10 at batch 1024 through the runner's input (batches
augmented as arrays: experiments/cifar10_fast.toml's alternating flips and translation, plus
cutout), against the same through the per-image path (paddle's DataLoader over
ArrayDataset.__getitem__), and the input's share of an airbench94 training epoch, whose time is
measured from `--steps` training steps in the same process. The target: at most 10 %.

The shared copy of the data was resized to 224x224 already; users have the originals (2124x2056
and 1444x1444 JPEGs). By default the benchmark therefore also writes a temporary copy of the
training images at 2124x2056 and times both pipelines on it (`--no-originals` skips that).
The target: after the first epoch, the cached pipeline delivers the 400 training images in under
one second.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def course_epoch(paths: list[Path], size: int) -> None:
    for path in paths:
        image = cv2.resize(cv2.imread(str(path)), (size, size))
        np.transpose(image, (2, 0, 1)).astype("float32") / 255.0 * 2.0 - 1.0


def runner_epoch(dataset, batch_size: int) -> None:
    from runner.run.train import data_loader

    for _ in data_loader(dataset, batch_size, True, 0):
        pass


def original_size_copy(paths: list[Path], folder: Path) -> Path:
    """iChallenge-PM with its training images blown up to the originals' 2124x2056 pixels."""
    root = folder / "ichallenge-pm"
    train = root / "PALM-Training400"
    train.mkdir(parents=True)
    for path in paths:
        big = cv2.resize(cv2.imread(str(path)), (2124, 2056), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(train / path.name), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def time_pipelines(data_root: Path, args, title: str) -> None:
    from runner.data import ArrayDataset, default_augment, open_dataset

    paths = open_dataset("ichallenge-pm", data_root).files("train")[0]
    print(f"\n{title}: {len(paths)} training images -> {args.size}x{args.size}, batch 10")
    for epoch in range(1, args.epochs + 1):
        t = time.perf_counter()
        course_epoch(paths, args.size)
        dt = time.perf_counter() - t
        print(f"  course loop    epoch {epoch}: {dt:6.2f} s {len(paths) / dt:8.0f} images/s")
    with tempfile.TemporaryDirectory() as cache:
        for augment in ([None, default_augment("ichallenge-pm")] if args.augment else [None]):
            label = "runner+augment" if augment else "runner cached"
            t = time.perf_counter()
            images, labels = open_dataset("ichallenge-pm", data_root).load("train", args.size, Path(cache))
            train = ArrayDataset(images, labels, args.size, augment)
            print(f"  {label:<14} load   : {time.perf_counter() - t:6.2f} s (decode once, cache to disk)")
            for epoch in range(1, args.epochs + 1):
                t = time.perf_counter()
                runner_epoch(train, 10)
                dt = time.perf_counter() - t
                print(f"  {label:<14} epoch {epoch}: {dt:6.2f} s {len(train) / dt:8.0f} images/s")


def cifar10_share(args) -> None:
    import paddle

    from runner.cpu import set_math_threads
    from runner.data import ArrayDataset, Augment, open_dataset
    from runner.data.batches import BatchLoader
    from runner.models import build_model, build_network
    from runner.run.distributed import ShardedBatchSampler
    from runner.run.objectives import ClassificationLoss

    set_math_threads(1)
    source = open_dataset("cifar10", args.data)
    images, labels = source.load("train", 32, None)
    recipe = Augment(alternate_flip=True, pad_crop=2, cutout=8)
    n, batch = len(labels), 1024
    print(f"Cifar10: {n} training images, batch {batch}, one thread")
    loader = BatchLoader(ArrayDataset(images, labels, 32, recipe), ShardedBatchSampler(n, batch, True))
    t = time.perf_counter()
    for _ in loader:
        pass
    batched = time.perf_counter() - t
    print(f"  batches as arrays (flip, translate, cutout): {batched:6.2f} s an epoch, {n / batched:8.0f} images/s")
    per_image = ArrayDataset(images, labels, 32, Augment(hflip=True, pad_crop=2))
    t = time.perf_counter()
    for _ in paddle.io.DataLoader(per_image, batch_sampler=ShardedBatchSampler(n, batch, True)):
        pass
    single = time.perf_counter() - t
    print(f"  per image (flip, translate) in a DataLoader: {single:6.2f} s an epoch, {n / single:8.0f} images/s")
    network = build_network("airbench94", 10, 32)
    model = build_model(network, 32)
    model.prepare(paddle.optimizer.Momentum(0.1, parameters=network.parameters()), ClassificationLoss(0.0, 0.2))
    batches = iter(loader)
    x, y = next(batches)
    model.train_batch([x], [y])  # the first step builds paddle's kernels: not timed
    t = time.perf_counter()
    for _ in range(args.steps):
        x, y = next(batches)
        model.train_batch([x], [y])
    step = (time.perf_counter() - t) / args.steps
    epoch = step * -(-n // batch)
    print(f"  airbench94 training: {step:6.2f} s a step, {epoch:6.0f} s an epoch")
    print(f"  input / training epoch: {batched / epoch:.1%} (per image it would be {single / epoch:.1%}); target <= 10 %")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RUNNER_DATA_ROOT", REPO.parent / "shared" / "data")))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--augment", action="store_true", help="also time the default iChallenge-PM augmentation")
    ap.add_argument("--no-originals", action="store_true", help="only the shared 224x224 copy")
    ap.add_argument("--cifar10", action="store_true", help="Cifar10's input against an airbench94 training epoch")
    ap.add_argument("--steps", type=int, default=4, help="with --cifar10: training steps timed")
    args = ap.parse_args()
    from runner.data import open_dataset

    if args.cifar10:
        cifar10_share(args)
        return
    time_pipelines(args.data, args, "shared 224x224 copy")
    if not args.no_originals:
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            paths = open_dataset("ichallenge-pm", args.data).files("train")[0]
            root = original_size_copy(paths, Path(folder))
            print(f"\n(wrote a 2124x2056 copy of the training images in {time.perf_counter() - t:.0f} s)")
            time_pipelines(root, args, "originals' size, 2124x2056")


if __name__ == "__main__":
    main()
