#!/usr/bin/env python3
"""What the corruptions of `runner robustness` cost here, against what evaluating a network costs, to
decide between making the corrupted images once (the cache) and remaking them for every network.

    python bench/corruptions.py --size 224 --images 8
    python bench/corruptions.py --size 32 --images 40

Per corruption: milliseconds per image over severities 1-5 (one thread, iChallenge-PM validation
images resized to --size); then the whole protocol's seconds per 400 images, its size in the cache,
and one network's inference (paddle's engine, one thread, untrained weights: speed only) per image.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import runner  # noqa: E402,F401  (sets the CPU switches before paddle loads)
import numpy as np  # noqa: E402

from runner.data.corruptions import corrupt_image  # noqa: E402
from runner.options import CORRUPTIONS, SEVERITIES  # noqa: E402


def validation_images(size: int, count: int) -> np.ndarray:
    from runner.data import open_dataset
    from runner.data.images import load_resized

    paths = open_dataset("ichallenge-pm").listed("val")[0]
    images, problems, _ = load_resized(paths[:: max(1, len(paths) // count)][:count], size, None)
    assert not problems, problems
    return images


def inference_ms(model: str, size: int) -> float:
    import paddle

    from runner.cpu import set_math_threads
    from runner.run.inference_eval import build_predictor
    from runner.models import build_network

    set_math_threads(1)
    network = build_network(model, 2, size)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = build_predictor(network, size, 1, Path(tmp))
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    batch = np.random.default_rng(0).uniform(-1, 1, (32, 3, size, size)).astype("float32")
    handle.reshape(list(batch.shape))
    handle.copy_from_cpu(batch)
    predictor.run()
    started = time.perf_counter()
    for _ in range(3):
        predictor.run()
    del paddle
    return (time.perf_counter() - started) / (3 * 32) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--models", default="paddle.vision/resnet18,alexnet,paddle.vision/squeezenet1_1")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    images = validation_images(args.size, args.images)
    total = 0.0
    print(f"{len(images)} images at {args.size} px; ms per image, mean over severities {SEVERITIES}")
    for corruption in CORRUPTIONS:
        started = time.perf_counter()
        for severity in SEVERITIES:
            for image in images:
                corrupt_image(image, corruption, severity, 0, "ichallenge-pm")
        per_image = (time.perf_counter() - started) / (len(images) * len(SEVERITIES))
        total += per_image
        print(f"  {corruption:<18} {1000 * per_image:8.1f}")
    sets = len(CORRUPTIONS) * len(SEVERITIES)
    print(f"all {sets} sets of 400 images: {total * len(SEVERITIES) * 400 / 60:.1f} min to make, "
          f"{sets * 400 * args.size * args.size * 3 / 2 ** 30:.2f} GiB in the cache "
          f"({400 * args.size * args.size * 3 / 2 ** 20:.1f} MiB in memory per set)")
    for model in filter(None, args.models.split(",")):
        ms = inference_ms(model, args.size)
        print(f"{model} at {args.size} px: {ms:.1f} ms per image on the engine, {ms * sets * 400 / 60000:.1f} min "
              f"for the {sets} sets")


if __name__ == "__main__":
    main()
