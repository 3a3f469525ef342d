#!/usr/bin/env python3
"""What a data fingerprint costs (runner/store/fingerprint.py), next to decoding the same images.

    python bench/fingerprint.py [--data ../shared/data] [--originals 40]

For iChallenge-PM: the fingerprint of all 800 images as a sweep computes it before anything trains
(list the files, read the labels, SHA-256 of every file), a cached load as a run does it (read and
hash every file, then the decoded copy from the cache), and decoding every image. For Cifar10: the
SHA-256 of the archive's members (one pass over the .tar.gz), a cached load, and decoding both
splits through paddle. `--originals N` also times hashing and decoding N training images blown up to
the originals' 2124x2056 pixels (users have those; the shared copy is 224x224).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def seconds(work, repeat: int = 3) -> float:
    """The best of `repeat` wall times of work() (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def ichallenge(data: Path) -> None:
    from runner.data import fingerprint_of, load_splits, open_dataset
    from runner.data.images import decode, resize

    source = open_dataset("ichallenge-pm", data)
    paths = source.files("train")[0] + source.files("val")[0]
    megabytes = sum(p.stat().st_size for p in paths) / 2 ** 20
    with tempfile.TemporaryDirectory() as cache:
        load_splits("ichallenge-pm", 224, data, cache_dir=Path(cache))  # fill the cache
        fingerprint = seconds(lambda: fingerprint_of("ichallenge-pm", data))
        cached = seconds(lambda: load_splits("ichallenge-pm", 224, data, cache_dir=Path(cache)))
    decoding = seconds(lambda: [resize(decode(p)[0], 224) for p in paths], repeat=1)
    print(f"iChallenge-PM, {len(paths)} images, {megabytes:.1f} MB: fingerprint {fingerprint:.3f} s, "
          f"cached load (hashing included) {cached:.3f} s, decoding every image {decoding:.2f} s")


def originals(data: Path, count: int) -> None:
    from runner.data import open_dataset
    from runner.data.images import content_digest, decode, resize

    paths = open_dataset("ichallenge-pm", data).files("train")[0][:count]
    with tempfile.TemporaryDirectory() as folder:
        big = []
        for path in paths:
            target = Path(folder) / path.name
            image = cv2.resize(cv2.imread(str(path)), (2124, 2056), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            big.append(target)
        megabytes = sum(p.stat().st_size for p in big) / 2 ** 20
        hashing = seconds(lambda: [content_digest(p.read_bytes()) for p in big])
        decoding = seconds(lambda: [resize(decode(p)[0], 224) for p in big], repeat=1)
    print(f"  at 2124x2056, {count} images, {megabytes:.1f} MB: hashing {1000 * hashing / count:.1f} ms an image, "
          f"decoding {1000 * decoding / count:.0f} ms an image ({decoding / hashing:.0f}x)")


def cifar10(data: Path) -> None:
    from runner.data import fingerprint_of, open_dataset

    archive = open_dataset("cifar10", data).archive
    members = seconds(lambda: open_dataset("cifar10", data).member_digests())
    with tempfile.TemporaryDirectory() as cache:
        source = open_dataset("cifar10", data)
        decoding = seconds(lambda: [source.read_archive(archive, split) for split in ("train", "val")], repeat=1)
        open_dataset("cifar10", data).load("train", 32, Path(cache))  # fill the cache
        open_dataset("cifar10", data).load("val", 32, Path(cache))
        cached = seconds(lambda: [open_dataset("cifar10", data).load(split, 32, Path(cache)) for split in ("train", "val")])
        fingerprint = seconds(lambda: fingerprint_of("cifar10", data, cache_dir=Path(cache)))
    print(f"Cifar10, {archive.stat().st_size / 2 ** 20:.0f} MB archive: SHA-256 of its members {members:.2f} s, "
          f"fingerprint (labels from the cache) {fingerprint:.2f} s, cached load of both splits (hashing included) "
          f"{cached:.2f} s, decoding both splits {decoding:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--originals", type=int, default=0, help="also time N images at the originals' size")
    args = parser.parse_args()
    ichallenge(args.data)
    if args.originals:
        originals(args.data, args.originals)
    cifar10(args.data)


if __name__ == "__main__":
    main()
