"""What a trained run is measured for once its last epoch is done: its cost to run (CPU latency at
batch 1, throughput at batch 32, size of the exported model), as timm's benchmark.py measures
architectures, and where it looks (Grad-CAM on a fixed set of validation images).

Cost goes through the same exported model and inference engine the runner evaluates with
(runner/run/inference_eval.py), so it is what a deployment of this network would see on this CPU.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

LATENCY_CALLS, WARMUP_CALLS = 20, 3
THROUGHPUT_BATCH, THROUGHPUT_BATCHES = 32, 3


def inference_cost(network, image_size: int, threads: int = 1, in_channels: int = 3) -> dict:
    """latency_ms (median of LATENCY_CALLS single images after a warm-up), throughput_ips
    (THROUGHPUT_BATCHES batches of THROUGHPUT_BATCH) and model_mb (the exported files)."""
    from runner.cpu import set_math_threads
    from runner.run.inference_eval import build_predictor

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="runner-cost-") as tmp:
        predictor = build_predictor(network, image_size, threads, Path(tmp), in_channels=in_channels)
        model_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2 ** 20
    handle = predictor.get_input_handle(predictor.get_input_names()[0])

    def run(batch: np.ndarray) -> None:
        handle.reshape(list(batch.shape))
        handle.copy_from_cpu(batch)
        predictor.run()

    one = rng.uniform(-1, 1, (1, in_channels, image_size, image_size)).astype("float32")
    for _ in range(WARMUP_CALLS):
        run(one)
    times = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - started)
    many = rng.uniform(-1, 1, (THROUGHPUT_BATCH, in_channels, image_size, image_size)).astype("float32")
    run(many)
    started = time.perf_counter()
    for _ in range(THROUGHPUT_BATCHES):
        run(many)
    elapsed = time.perf_counter() - started
    set_math_threads(threads)  # the predictor set the math library's threads for itself
    return {"latency_ms": round(float(np.median(times)) * 1000, 3),
            "throughput_ips": round(THROUGHPUT_BATCH * THROUGHPUT_BATCHES / elapsed, 2),
            "model_mb": round(model_mb, 2), "cost_threads": threads}


def where_it_looks(network, dataset, num_classes: int, image_size: int) -> dict:
    """Grad-CAM of the positive class (two classes) or of each image's own class, on the fixed
    images of runner.run.gradcam.fixed_images: their indices, the images (uint8) and the heat maps."""
    from runner.run.gradcam import fixed_images, grad_cam, last_spatial_layer

    indices = fixed_images(dataset.labels, num_classes)
    batch = np.stack([dataset[int(i)][0] for i in indices]).astype("float32")
    classes = np.ones(len(indices), int) if num_classes == 2 else dataset.labels[indices]
    layer = last_spatial_layer(network, image_size)
    heat = grad_cam(network, batch, classes, layer)
    images = ((np.transpose(batch, (0, 2, 3, 1)) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    return {"indices": indices, "images": images, "heat": heat.astype(np.float16),
            "labels": dataset.labels[indices], "classes": classes, "layer": np.array(layer)}
