#!/usr/bin/env python3
"""Evaluation in the dynamic graph against paddle's inference engine (runner/run/inference_eval.py), on
trained checkpoints and the full validation set: speed, and whether any prediction changes.

    python bench/eval_engine.py outputs/all/checkpoints/googlenet-s0-0aa0bf41 ... [--threads 1]

For each checkpoint (its best epoch) it prints images/s of both, the seconds the engine needs to
export the network and build its predictor, the largest difference in a class probability, how
many validation images change predicted class, and accuracy and AUC of both. `--bfloat16` lets the
engine compute in bfloat16 (measured and not adopted: see the README's Performance section).
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
import paddle  # noqa: E402

from runner.cpu import set_math_threads  # noqa: E402
from runner.data import load_splits  # noqa: E402
from runner.run.inference_eval import PredictorForward, build_predictor  # noqa: E402
from runner.metrics import accuracy, roc_auc  # noqa: E402
from runner.predict import load_trained_network  # noqa: E402


def probabilities(forward, images: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    """Softmax outputs over all images, and images/s (a first batch warms up, uncounted)."""
    with paddle.no_grad():
        forward(paddle.to_tensor(images[:batch]))
        started, out = time.perf_counter(), []
        for i in range(0, len(images), batch):
            logits = forward(paddle.to_tensor(images[i:i + batch]))
            out.append(paddle.nn.functional.softmax(logits, axis=-1).numpy())
    return np.concatenate(out), len(images) / (time.perf_counter() - started)


def compare(checkpoint: Path, data_root: Path, threads: int, batch: int, bfloat16: bool = False) -> dict:
    network, config, _ = load_trained_network(checkpoint)
    splits = load_splits(config["dataset"], config["image_size"], data_root, validation=config["validation"])
    images = np.stack([splits.val[i][0] for i in range(len(splits.val))])
    labels = np.array([int(np.asarray(splits.val[i][1]).reshape(-1)[0]) for i in range(len(splits.val))])
    dygraph, dygraph_rate = probabilities(network, images, batch)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        engine_forward = PredictorForward(build_predictor(network, config["image_size"], threads, Path(tmp),
                                                          bfloat16))
    build_s = time.perf_counter() - started
    engine, engine_rate = probabilities(engine_forward, images, batch)
    return {"model": config["model"], "checkpoint": str(checkpoint), "images": len(images),
            "dygraph_img_s": dygraph_rate, "engine_img_s": engine_rate, "build_s": build_s,
            "max_prob_diff": float(np.abs(engine - dygraph).max()),
            "changed_predictions": int((engine.argmax(1) != dygraph.argmax(1)).sum()),
            "acc": (accuracy(dygraph, labels), accuracy(engine, labels)),
            "auc": (roc_auc(dygraph[:, 1], labels), roc_auc(engine[:, 1], labels)) if splits.num_classes == 2 else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RUNNER_DATA_ROOT", REPO.parent / "shared" / "data")))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bfloat16", action="store_true", help="let the engine compute in bfloat16 (oneDNN, "
                    "CPUs with avx512_bf16 or AMX): faster, less exact")
    args = ap.parse_args()
    set_math_threads(args.threads)
    print(f"{'model':<24} {'images':>6} {'dygraph img/s':>13} {'engine img/s':>12} {'speed-up':>8} {'build s':>7} "
          f"{'max |dp|':>9} {'changed':>7} {'acc dygraph/engine':>19} {'AUC dygraph/engine':>19}")
    for checkpoint in args.checkpoints:
        r = compare(checkpoint, args.data.resolve(), args.threads, args.batch, args.bfloat16)
        auc = f"{r['auc'][0]:.4f}/{r['auc'][1]:.4f}" if r["auc"] else "-"
        print(f"{r['model']:<24} {r['images']:>6} {r['dygraph_img_s']:>13.1f} {r['engine_img_s']:>12.1f} "
              f"{r['engine_img_s'] / r['dygraph_img_s']:>7.2f}x {r['build_s']:>7.1f} {r['max_prob_diff']:>9.1e} "
              f"{r['changed_predictions']:>7} {r['acc'][0]:>9.2%}/{r['acc'][1]:.2%} {auc:>19}", flush=True)


if __name__ == "__main__":
    main()
