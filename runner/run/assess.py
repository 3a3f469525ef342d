"""What a trained run is measured for once its last epoch is done: its cost to run (CPU latency at
batch 1, throughput at batch 32, size of the exported model), as timm's benchmark.py measures
architectures, and where it looks (Grad-CAM on a fixed set of validation images).

Cost goes through the same exported model and inference engine the runner evaluates with
(runner/run/inference_eval.py), so it is what a deployment of this network would see on this CPU.
`runner models --benchmark` measures untrained networks the same way.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from runner.errors import first_line

LATENCY_CALLS, WARMUP_CALLS = 20, 3
THROUGHPUT_BATCH, THROUGHPUT_BATCHES = 32, 3
# Other runs train beside this one in a sweep, so one timing may catch them at a busy moment (the
# same network measured 321 and 989 img/s in two identical sweeps): the cost is timed in rounds and
# the fastest round, the least disturbed, is the figure; the slowest says how much the load moved it.
COST_ROUNDS = 3


def inference_cost(network, image_size: int, threads: int = 1, in_channels: int = 3) -> dict:
    """latency_ms (the fastest round's median of LATENCY_CALLS single images, after a warm-up),
    throughput_ips (the fastest round's THROUGHPUT_BATCHES batches of THROUGHPUT_BATCH), their
    slowest rounds, model_mb (the exported files) and the load they were measured under."""
    from runner.cpu import set_math_threads
    from runner.processes import machine_load
    from runner.run.inference_eval import build_predictor

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="runner-cost-") as tmp:
        predictor = build_predictor(network, image_size, threads, Path(tmp), in_channels=in_channels)
        model_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2 ** 20
    handle = predictor.get_input_handle(predictor.get_input_names()[0])

    def seconds(batch: np.ndarray, calls: int = 1) -> float:
        handle.reshape(list(batch.shape))
        handle.copy_from_cpu(batch)
        started = time.perf_counter()
        for _ in range(calls):
            predictor.run()
        return time.perf_counter() - started

    one = rng.uniform(-1, 1, (1, in_channels, image_size, image_size)).astype("float32")
    many = rng.uniform(-1, 1, (THROUGHPUT_BATCH, in_channels, image_size, image_size)).astype("float32")
    seconds(one, WARMUP_CALLS)
    seconds(many)
    before = machine_load()
    latency, throughput = [], []
    for _ in range(COST_ROUNDS):
        latency.append(1000 * float(np.median([seconds(one) for _ in range(LATENCY_CALLS)])))
        throughput.append(THROUGHPUT_BATCH * THROUGHPUT_BATCHES / seconds(many, THROUGHPUT_BATCHES))
    after = machine_load()
    set_math_threads(threads)  # the predictor set the math library's threads for itself
    return {"latency_ms": round(min(latency), 3), "latency_ms_slowest": round(max(latency), 3),
            "throughput_ips": round(max(throughput), 2), "throughput_ips_slowest": round(min(throughput), 2),
            "model_mb": round(model_mb, 2), "cost_threads": threads, "cost_rounds": COST_ROUNDS,
            # the busier of the moments before and after the rounds
            **{k: max((v for v in (before[k], after[k]) if v is not None), default=None) for k in before}}


def where_it_looks(network, dataset, num_classes: int, image_size: int, names: list[str] = ()) -> dict:
    """Grad-CAM of the positive class (two classes) or of each image's own class, on the fixed
    images of runner.run.gradcam.fixed_images: their indices, file names (from `names`, the val
    split's), the images (uint8) and the heat maps."""
    from runner.run.gradcam import fixed_images, grad_cam, last_spatial_layer

    indices = fixed_images(dataset.labels, num_classes)
    batch = np.stack([dataset[int(i)][0] for i in indices]).astype("float32")
    classes = np.ones(len(indices), int) if num_classes == 2 else dataset.labels[indices]
    layer = last_spatial_layer(network, image_size)
    heat = grad_cam(network, batch, classes, layer)
    images = ((np.transpose(batch, (0, 2, 3, 1)) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    return {"indices": indices, "names": np.array([names[int(i)] if len(names) else f"image {int(i)}" for i in indices]),
            "images": images, "heat": heat.astype(np.float16),
            "labels": dataset.labels[indices], "classes": classes, "layer": np.array(layer)}


def benchmark_models(names: list[str] | None = None, image_size: int | None = None, on_model=None) -> list[dict]:
    """Every model's (or `names`') inference cost untrained, measured as a trained run is: a network
    that cannot take the size or be exported gets an "error" instead (`runner models --benchmark`)."""
    from runner.models import build_network, check_input_size, count_flops, count_parameters, list_models, model_entry

    rows = []
    for name in names or list_models():
        entry = model_entry(name)
        size = image_size or entry.default_image_size
        channels = 1 if name.endswith("/lenet") else 3
        if on_model:
            on_model(name)
        row = {"name": name, "origin": entry.origin, "image_size": size}
        try:
            network = build_network(name, 2, size)
            check_input_size(network, name, size, channels)
            row.update(parameters=count_parameters(network), flops=count_flops(network, size, channels))
            row.update(inference_cost(network, size, threads=1, in_channels=channels))
        except Exception as err:  # noqa: BLE001 - reported per model, the others go on
            row["error"] = first_line(err, 160) or type(err).__name__
        rows.append(row)
    return rows
