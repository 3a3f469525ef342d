#!/usr/bin/env python3
"""What JPEG costs a Cifar10 network: the accuracy gap between the same images lossless and through
JPEG at quality 75 (4:2:0), the compression 46 000 training and all 10 000 test images of the shared
copy went through.

    RUNNER_DATA_ROOT=../shared/data python bench/jpeg_cost.py [--seeds 2] [--jobs 1]

Only the archive's first 4 000 training images are lossless, so the comparison is made on them:
per class, the first three quarters train and the last quarter is scored. The script writes them
twice as folder datasets under `<output root>/cifar10_jpeg_data/` (`png/`: the pixels as they are;
`jpeg75/`: each image saved and read back as a JPEG of quality 75, as Pillow writes it), writes
`<output root>/cifar10_jpeg.toml` (airbench94 under experiments/cifar10_fast.toml's recipe, at batch
256 with the learning rate scaled to it, so the decay per image stays, and 16 epochs, since 3 000
images give a batch of 1024 only 3 steps an epoch), runs `runner sweep` on it, and prints each arm's accuracy over seeds and the gap.
It trains; it is not part of the tests. The gap at 3 000 training images is evidence about, not a
measurement of, the gap at 50 000.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from runner.data.cifar10 import ARCHIVE, Cifar10  # noqa: E402
from runner.data.cifar10_archive import read_split  # noqa: E402
from runner.store.layout import output_root, resolve_data_root  # noqa: E402

LOSSLESS = 4000  # the shared copy's first 4 000 training images never went through JPEG
QUALITY = 75
NAME = "cifar10_jpeg"

RECIPE = """# Written by bench/jpeg_cost.py: airbench94 on the lossless Cifar10 images and on the same through JPEG.
name = "{name}"

[defaults]
image_size = 32
model = "airbench94"
epochs = 16
batch_size = 256
label_smoothing = 0.2
tta = 2
lookahead = {{ every = 5, decay = 0.95 }}
augment = {{ alternate_flip = true, pad_crop = 2 }}
optimizer = {{ name = "momentum", learning_rate = 0.375, momentum = 0.85, nesterov = true, weight_decay = 0.0102, decoupled = true, norm_bias_lr = 64.0 }}
scheduler = {{ name = "linear", warmup_share = 0.23, start_factor = 0.2, end_factor = 0.07 }}

[grid]
seed = {seeds}
dataset = {datasets}

[[runs]]
label = "airbench94"
"""


def split_by_class(labels: np.ndarray) -> tuple[list[int], list[int]]:
    """Per class, the first three quarters of its images to train, the rest to score."""
    train, val = [], []
    for c in range(10):
        members = np.flatnonzero(labels == c).tolist()
        cut = len(members) * 3 // 4
        train += members[:cut]
        val += members[cut:]
    return train, val


def write_folders(images: np.ndarray, labels: np.ndarray, root: Path) -> dict[str, Path]:
    """`png/` and `jpeg75/`, each with train/ and val/ and a folder per class; kept if already there."""
    train, val = split_by_class(labels)
    arms = {"png": root / "png", "jpeg75": root / f"jpeg{QUALITY}"}
    done = root / "complete.json"
    if done.exists():
        return arms
    for split, indices in (("train", train), ("val", val)):
        for i in indices:
            name = Cifar10.class_names[labels[i]]
            picture = Image.fromarray(images[i])
            for arm, folder in arms.items():
                target = folder / split / name
                target.mkdir(parents=True, exist_ok=True)
                if arm == "png":
                    picture.save(target / f"{i:04d}.png")
                else:
                    picture.save(target / f"{i:04d}.jpg", quality=QUALITY, subsampling="4:2:0")
    done.write_text(json.dumps({"train": len(train), "val": len(val), "quality": QUALITY}))
    return arms


def relative(folder: Path) -> Path:
    try:
        return folder.relative_to(Path.cwd())
    except ValueError:
        return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    root = output_root().resolve()
    images, labels = read_split(resolve_data_root(None) / "cifar10" / ARCHIVE, "train",
                                "put the shared Cifar10 archive at <data root>/cifar10/")
    arms = write_folders(images[:LOSSLESS], labels[:LOSSLESS], root / "cifar10_jpeg_data")
    pixels = {arm: np.stack([np.asarray(Image.open(p)) for p in sorted((folder / "val").rglob("*.*"))])
              for arm, folder in arms.items()}
    rmse = float(np.sqrt(np.mean((pixels["png"].astype(float) - pixels["jpeg75"]) ** 2)))
    print(f"{len(pixels['png'])} scored images; JPEG {QUALITY} moves their pixels by {rmse:.1f}/255 (RMSE)")

    # relative to the current folder (the project root, run as the docstring says) when under it, so
    # that the runs' ids do not depend on where the project lives
    names = {arm: f"folder:{relative(folder)}" for arm, folder in arms.items()}
    datasets = list(names.values())
    experiment = root / f"{NAME}.toml"
    experiment.write_text(RECIPE.format(name=NAME, seeds=list(range(args.seeds)), datasets=json.dumps(datasets)))
    subprocess.run([sys.executable, "-m", "runner", "sweep", str(experiment), "--jobs", str(args.jobs)], check=True)

    accuracy: dict[str, list[float]] = {arm: [] for arm in arms}
    for result in sorted((root / NAME / "runs").glob("*/result.json")):
        record = json.loads(result.read_text())
        if record["config"]["seed"] >= args.seeds:
            continue  # a seed of an earlier invocation with more of them
        arm = next(a for a, name in names.items() if record["config"]["dataset"] == name)
        accuracy[arm].append(record["final"]["acc"])
    for arm, values in accuracy.items():
        print(f"{arm:7s} {np.mean(values):.2%} over {len(values)} seeds ({', '.join(f'{v:.2%}' for v in values)})")
    gap = np.mean(accuracy["png"]) - np.mean(accuracy["jpeg75"])
    print(f"JPEG {QUALITY} costs {100 * gap:.2f} points (lossless minus JPEG, same images, same seeds)")


if __name__ == "__main__":
    main()
