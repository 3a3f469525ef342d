"""One run, through paddle.Model's own prepare / fit / evaluate.

    result = train_run(spec, SweepPaths.for_experiment("all").run_paths(spec.run_id))

The run resumes from its newest readable checkpoint, so calling it again after a kill continues
where it stopped; a finished run's result is written last, atomically, to runs/<id>/result.json.
"""
from __future__ import annotations

import platform
import time
from typing import Callable

import paddle

import runner
from runner.run.callbacks import (AveragedStatistics, DecoupledWeightDecay, DivergenceGuard, EpochSeeder, History, InferenceEvaluation,
                                  Lookahead, NetworkEpochHook, ResumableEarlyStopping, TTAOnLastEpoch,
                                  DygraphTestTimeAugmentation, seed_everything)
from runner.store.checkpoints import Checkpoints
from runner.config import RunSpec, evaluates_on_inference_engine
from runner.run.conv_bias import use_matmul_bias
from runner.cpu import keep_freed_memory, set_math_threads
from runner.run.distributed import ShardedBatchSampler, gathered_order, rank_and_world, where_it_runs
from runner.errors import RunnerError, first_line
from runner.data import Augment, load_splits
from runner.data.batches import BatchLoader, scale_batch
from runner.store.layout import RunPaths
from runner.metrics import confusion_matrix
from runner.models import build_model, build_network, check_input_size, count_flops, count_parameters
from runner.store.fingerprint import RETRAIN_HINT, digest_predictions, what_changed
from runner.store.runfiles import read_json, save_arrays, write_json_atomic
from runner.run.objectives import (ClassificationLoss, ClassificationMetrics, build_optimizer, scale_norm_bias_lr,
                                   steps_by_batch)
from runner.run.recording import RunRecorder
from runner.run.vdl import input_grid

OnEvent = Callable[..., None]  # on_event(kind, **details): "start", "note", "step", "epoch", "done"


def data_loader(dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int = 0, rank: int = 0,
                world: int = 1):
    """Our own loader rather than fit's default: fit shuffles with a RandomState seeded by the epoch
    number alone, so every seed would see the same data order. `batch_size` is the global batch."""
    sampler = ShardedBatchSampler(len(dataset), batch_size, shuffle, seed, rank, world)
    if dataset.per_batch:
        return BatchLoader(dataset, sampler, seed)
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)


def prepare_run(spec: RunSpec, data_root=None, cache_dir=None):
    """Data, network and a prepared paddle.Model for `spec` (everything but the training)."""
    c = spec.config
    seed_everything(c["seed"])
    splits = run_splits(c, data_root, cache_dir, Augment(**c["augment"]) if c["augment"] else None)
    network = build_network(c["model"], splits.num_classes, c["image_size"], c["pretrained"],
                            c["weights"] or None, c["head"], **c["model_args"])
    check_input_size(network, c["model"], c["image_size"])
    fit_to_data(network, splits.train)
    if c["device"] == "cpu":  # the slow bias kernels are the CPU's (runner/run/conv_bias.py)
        use_matmul_bias(network)
    model = build_model(network, c["image_size"])
    opt = c["optimizer"]
    if opt.get("norm_bias_lr", 1.0) != 1.0:
        scale_norm_bias_lr(network, opt["norm_bias_lr"], None if opt.get("decoupled") else opt.get("weight_decay"))
    optimizer = build_optimizer(opt, c["epochs"], c["scheduler"], network.parameters(),
                                steps_per_epoch(len(splits.train), c["batch_size"]), c["batch_size"])
    metric = ClassificationMetrics(splits.num_classes)
    model.prepare(optimizer, ClassificationLoss(c["aux_loss_weight"], c["label_smoothing"]), metric,
                  amp_configs="O1" if c["amp"] else None)
    return splits, network, model, metric


def run_splits(c: dict, data_root=None, cache_dir=None, augment: Augment | None = None):
    """The training and validation images of a run's configuration `c`."""
    return load_splits(c["dataset"], c["image_size"], data_root, augment, c["validation"], c["train_limit"],
                       c["val_limit"], cache_dir, c.get("fold", 0), c["train_fraction"])


def fit_to_data(network, train, count: int = 5000) -> None:
    """A network with a layer fitted to the data (airbench's whitening) fits it to the first `count`
    training images, as the network sees them; a resumed run then loads the saved layer over it."""
    fit = getattr(network, "fit_to_data", None)
    if fit:
        fit(scale_batch(train.images[:count]))


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    return -(-train_images // batch_size)


def train_run(spec: RunSpec, paths: RunPaths, data_root=None, cache_dir=None, on_event: OnEvent | None = None,
              started: float | None = None) -> dict:
    """`started`: time.perf_counter() when the process this run has to itself began (a worker's, or
    `runner train`'s: runner.processes.process_started), so that its setup_seconds count the
    interpreter's start and paddle's import; without it, from this call."""
    # Fresh names for parameters and optimizer state (conv2d_0.w_0_moment1_0, ...) however many
    # networks this process built before: a checkpoint's optimizer state is keyed by them.
    with paddle.utils.unique_name.guard():
        try:
            return _train_run(spec, paths, data_root, cache_dir, on_event or (lambda kind, **details: None),
                              time.perf_counter() if started is None else started)
        except OSError as err:
            if interrupted_inside_paddle(err):
                raise KeyboardInterrupt from None
            raise


def interrupted_inside_paddle(err: OSError) -> bool:
    """Ctrl-C (or a sweep's SIGTERM) that lands in Python code paddle calls from C++, such as the
    backward of conv_bias.ChannelBiasAdd, comes back as an OSError "(External) ... KeyboardInterrupt"
    instead of the KeyboardInterrupt itself; the run was interrupted, it did not fail."""
    return "KeyboardInterrupt" in str(err)


def use_device(device: str) -> None:
    if device.startswith("gpu") and not paddle.device.is_compiled_with_cuda():
        raise RunnerError(f"device = {device!r}, but this paddlepaddle has no GPU support; install "
                          "paddlepaddle-gpu or set device = \"cpu\"")
    paddle.set_device(device)


def _train_run(spec: RunSpec, paths: RunPaths, data_root, cache_dir, on_event: OnEvent, started: float) -> dict:
    c = spec.config
    rank, world = rank_and_world()
    if world != c["nproc"]:
        raise RunnerError(f"nproc = {c['nproc']} but {world} process(es) are running: start the run with "
                          f"`runner train FILE --nproc {c['nproc']}` or `runner sweep`, which launch them")
    main = rank == 0  # with several processes only the first writes logs, checkpoints and results
    if not main:
        on_event = lambda kind, **details: None  # noqa: E731
    use_device(c["device"])
    set_math_threads(c["threads"])
    keep_freed_memory()
    splits, network, model, metric = prepare_run(spec, data_root, cache_dir)
    params, flops = count_parameters(network), count_flops(network, c["image_size"])

    paths.folder.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(paths.checkpoints)
    for entry in splits.unused:  # a file of the dataset's folder left out is said, never silent
        on_event("note", message=entry)
    state, notes = checkpoints.restore(model)
    for note in notes:
        on_event("note", message=note + (" — restarting the run from scratch" if state is None else ""))
    refuse_other_data(paths, state, splits.fingerprint)
    if main:
        paths.checkpoints.mkdir(parents=True, exist_ok=True)
        write_json_atomic(paths.run_json, {"run_id": spec.run_id, "config": c, "class_names": splits.class_names,
                                           "data": splits.fingerprint})
    recorder = RunRecorder(spec, paths, model, checkpoints, state, splits.class_names, on_event, main,
                           gathered_order(len(splits.val), eval_batch_size(c), world) if world > 1 else None,
                           splits.fingerprint["digest"])
    history = recorder.history
    on_event("start", run_id=spec.run_id, name=spec.display_name, parameters=params, flops=flops,
           train_images=len(splits.train), val_images=len(splits.val), resumed_at=len(history))
    steps = steps_per_epoch(len(splits.train), c["batch_size"])
    recorder.open_log(steps, input_grid(splits.train))

    first_epoch = len(history)
    # what the run's fixed part costs here, for the plan's estimate (runner/sweep/estimate.py): the
    # process's start (the interpreter, paddle's import), the data and the network, before any epoch
    setup_seconds = time.perf_counter() - started
    if first_epoch < c["epochs"] and not recorder.stopped_early:
        train_loader = data_loader(splits.train, c["batch_size"], True, c["num_workers"], c["seed"], rank, world)
        val_loader = data_loader(splits.val, eval_batch_size(c), False, c["num_workers"], 0, rank, world)
        callbacks = [EpochSeeder(c["seed"], first_epoch, [train_loader.batch_sampler]),
                     DivergenceGuard(first_epoch, metric), NetworkEpochHook(first_epoch)]
        if c["optimizer"].get("decoupled"):  # before LRScheduler: it decays with the rate of the step just taken
            callbacks.append(DecoupledWeightDecay(c["optimizer"]["weight_decay"]))
        by_step = steps_by_batch(c["scheduler"])
        callbacks.append(paddle.callbacks.LRScheduler(by_step=by_step, by_epoch=not by_step))
        if c["lookahead"]:
            lookahead = Lookahead(c["lookahead"]["every"], c["lookahead"]["decay"], c["epochs"] * steps,
                                  first_epoch * steps, state.get("arrays") if state else None)
            recorder.stateful.append(lookahead)
            callbacks.append(lookahead)
        if world > 1:  # before History and the recorder: they evaluate, save and export the averaged network
            callbacks.append(AveragedStatistics(lookahead if c["lookahead"] else None))
        if c["early_stopping"]:
            es = c["early_stopping"]
            callbacks.append(ResumableEarlyStopping(history, es.get("monitor", "acc"), es.get("patience", 3),
                                                    es.get("min_delta", 0.0)))
        callbacks.append(History(history, metric, steps, first_epoch, recorder.epoch_done,
                                 recorder.step_done, counts_cpu=c["num_workers"] == 0))
        tta = TTAOnLastEpoch(c["tta"], c["epochs"], first_epoch) if c["tta"] else None
        if tta:
            callbacks.append(tta)
        if evaluates_on_inference_engine(c):
            # after History, so that the export and predictor build count in eval_seconds
            callbacks.append(InferenceEvaluation(c["image_size"], c["threads"],
                                                 lambda message: on_event("note", message=message), tta))
        elif tta:
            callbacks.append(DygraphTestTimeAugmentation(tta))
        try:
            model.fit(train_loader, val_loader, epochs=c["epochs"] - first_epoch, eval_freq=1, verbose=0,
                      callbacks=callbacks)
        finally:
            recorder.close_log()
    recorder.close_log()
    finish_started = time.perf_counter()
    cost, cam = assess(network, c, splits, on_event) if main else ({}, {})
    if cam:
        save_arrays(paths.gradcam, cam)
    recorder.finish(cam)

    result = build_result(spec, history, recorder.best, params, flops, splits, recorder.predictions)
    result.update(cost)
    result["parallel"] = {"processes": world, "device": c["device"], "global_batch_size": c["batch_size"],
                          "batch_per_process": c["batch_size"] // world,
                          "learning_rate": c["optimizer"]["learning_rate"]}
    record_rank_share(paths, rank, world, len(splits.train), c)
    # and after its last epoch: the cost to run, Grad-CAM, the run's files
    result.update(setup_seconds=round(setup_seconds, 3), finish_seconds=round(time.perf_counter() - finish_started, 3))
    if main:
        write_json_atomic(paths.result, result)
        checkpoints.keep_last_only()
    on_event("done", result=result)
    return result


def refuse_other_data(paths: RunPaths, state: dict | None, fingerprint: dict) -> None:
    """A checkpoint is resumed only onto the data it was trained on: a run's epochs never mix two
    datasets. (The sweep's plan refuses this first; this guards a change since the plan, and
    `runner train`.) A checkpoint of an older runner records no data and is resumed as before."""
    recorded = (state or {}).get("data_digest")
    if recorded is None or recorded == fingerprint["digest"]:
        return
    then = (read_json(paths.run_json) or {}).get("data")
    change = (what_changed(then, fingerprint) if then else None) or "its data fingerprint differs"
    raise RunnerError(f"{paths.run_id}: its checkpoint of epoch {len(state['history'])} was trained on other data "
                      f"than there is now ({change}), and is not resumed onto it: "
                      + RETRAIN_HINT.format(them="it", stale=paths.sweep.stale))


def assess(network, config: dict, splits, on_event: OnEvent) -> tuple[dict, dict]:
    """Cost to run and Grad-CAM of the trained network (runner/run/assess.py); what cannot be measured
    (a network the inference engine cannot take, say) is a note, not a failed run."""
    from runner.run.assess import inference_cost, where_it_looks

    def note(what, err):
        on_event("note", message=f"{what} not measured ({type(err).__name__}: {first_line(err)})")

    cost, cam = {}, {}
    try:
        cost = inference_cost(network, config["image_size"], config["threads"])
    except Exception as err:  # noqa: BLE001 - any failure of the export has the same remedy: none needed
        note("cost to run", err)
    try:
        cam = where_it_looks(network, splits.val, splits.num_classes, config["image_size"], splits.val_names)
    except Exception as err:  # noqa: BLE001
        note("Grad-CAM", err)
    return cost, cam


def record_rank_share(paths: RunPaths, rank: int, world: int, n_train: int, config: dict) -> None:
    """With several processes each writes how many training images it computed: proof they all took part."""
    if world == 1:
        return
    sampler = ShardedBatchSampler(n_train, config["batch_size"], True, config["seed"], rank, world)
    per_epoch = sum(len(batch) for batch in sampler)
    paths.ranks.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.ranks / f"rank-{rank}.json", {"rank": rank, "world": world,
                                                          "train_images_per_epoch": per_epoch})


def eval_batch_size(config: dict) -> int:
    # Evaluation keeps no gradients, so bigger batches cost little memory and run faster; with
    # several processes it must split evenly over them.
    size = max(config["batch_size"], 32)
    return -(-size // config["nproc"]) * config["nproc"]


def total_cpu_seconds(history: list[dict]) -> float | None:
    """The training's CPU seconds over all epochs; None when an epoch has none (trained by an older
    runner before a resume), as a partial sum would look like a cheap run."""
    if not history or any(r.get("train_cpu_seconds") is None for r in history):
        return None
    return round(sum(r["train_cpu_seconds"] for r in history), 3)


def build_result(spec: RunSpec, history: list[dict], best: dict | None, params: int, flops, splits,
                 predictions: dict) -> dict:
    final = history[-1] if history else None
    train_seconds = sum(r["train_seconds"] for r in history)
    trained_images = len(splits.train) * len(history)
    return {
        "run_id": spec.run_id,
        "experiment": spec.experiment,
        "name": spec.display_name,
        "config": spec.config,
        "class_names": splits.class_names,
        "train_images": len(splits.train),
        "val_images": len(splits.val),
        "validation": splits.validation,
        "epochs_run": len(history),
        "stopped_early": bool(final and final.get("stopped_early")),
        "parameters": params,
        "flops": flops,
        "final": final["val"] if final else {},
        "best": best["val"] if best else {},
        "best_epoch": best["epoch"] if best else None,
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(sum(r.get("eval_seconds", 0.0) for r in history), 3),
        "train_cpu_seconds": total_cpu_seconds(history),
        "images_per_second": round(trained_images / train_seconds, 3) if train_seconds else None,
        # the most any of the run's processes held (a resumed run's earlier processes included)
        "peak_memory_mb": max((r.get("peak_rss_mb") or 0 for r in history), default=None) or None,
        "confusion_matrix": {which: confusion_matrix(predictions[which].argmax(1), predictions["labels"],
                                                     splits.num_classes).tolist()
                             for which in ("final", "best") if which in predictions and "labels" in predictions},
        "predictions_digest": digest_predictions(predictions["final"]) if "final" in predictions else None,
        "history": history,
        "data": splits.fingerprint,
        **where_it_runs(),
        "versions": {"runner": runner.__version__, "paddle": paddle.__version__, "python": platform.python_version()},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
