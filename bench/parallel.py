#!/usr/bin/env python3
"""One run on one process against the same run on two data-parallel processes (`--nproc 2`,
paddle.distributed.launch with gloo) and against one process with two math threads (`threads = 2`),
on this machine, in one invocation.

    python bench/parallel.py                  # alexnet and paddle.vision/resnet50, 1 epoch of 200 images
    python bench/parallel.py --train-limit 400 --epochs 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import course_experiment  # noqa: E402
OPTIMIZERS = {"alexnet": '{ name = "adam", learning_rate = 0.001 }',
              "paddle.vision/resnet50": '{ name = "momentum", learning_rate = 0.001, momentum = 0.9 }'}


def run(model: str, variant: dict, args, folder: Path) -> dict:
    name = f"par{abs(hash((model, tuple(variant.items())))) % 10 ** 8}"
    path = course_experiment(folder / f"{name}.toml", name, [(model, OPTIMIZERS[model])], args.epochs,
                             args.train_limit, variant.get("threads", 1), val_limit=100)
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(folder / "out"), "RUNNER_DATA_ROOT": str(args.data)}
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "runner", "train", str(path), "--nproc", str(variant.get("nproc", 1))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    result = json.loads(next((folder / "out" / name).rglob("result.json")).read_text())
    return {"wall_s": wall, "train_img_s": result["images_per_second"],
            "eval_img_s": result["val_images"] * result["epochs_run"] / result["eval_seconds"],
            "val_acc": result["final"]["acc"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RUNNER_DATA_ROOT", REPO.parent / "shared" / "data")))
    ap.add_argument("--models", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-limit", type=int, default=200)
    args = ap.parse_args()
    args.data = args.data.resolve()
    variants = {"1 process": {}, "--nproc 2": {"nproc": 2}, "threads = 2": {"threads": 2}}
    print(f"{args.epochs} epoch(s) of {args.train_limit} training images at 224x224, global batch 10; "
          f"evaluation on 100 images; wall time includes process start-up")
    print(f"{'model':<24} {'variant':<12} {'train img/s':>11} {'eval img/s':>10} {'wall s':>7} {'x train':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            base = None
            for label, variant in variants.items():
                r = run(model, variant, args, Path(tmp))
                base = base or r
                print(f"{model:<24} {label:<12} {r['train_img_s']:>11.2f} {r['eval_img_s']:>10.2f} "
                      f"{r['wall_s']:>7.1f} {r['train_img_s'] / base['train_img_s']:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
