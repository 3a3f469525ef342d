#!/usr/bin/env python3
"""Speed of the runner against the course's own loop (../shared/bench/seed_recipe.py), measured in
one invocation on this machine, on the same models, epochs and data.

    python bench/speed.py                              # alexnet + resnet50, 5 epochs (about an hour)
    python bench/speed.py --epochs 1 --train-limit 100 # a few minutes

For each model it prints train and eval images/s, wall seconds, validation accuracy and achieved
GFLOP/s (and its share of the machine's float32 matrix-product limit) for the yardstick and for the
runner, then the ratios; then the wall time of the whole set run one after the other by the
yardstick against `runner sweep` of the same runs, for each way of using the cores (--sweeps: two
runs side by side with threads = 1, the default; one run at a time with a math thread per core;
one run at a time with, per model, the faster of threads and data-parallel processes); then
paddle.Model.fit's overhead against a bare loop over the same network, optimizer and batches.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import course_experiment  # noqa: E402

REPO = HERE.parent
YARDSTICK = REPO.parent / "shared" / "bench" / "seed_recipe.py"
# The yardstick's models and optimizers; the runner's names for the same networks.
RUNS = {
    "alexnet": ("alexnet", '{ name = "adam", learning_rate = 0.001 }'),
    "resnet50": ("paddle.vision/resnet50", '{ name = "momentum", learning_rate = 0.001, momentum = 0.9 }'),
    "vgg16": ("paddle.vision/vgg16", '{ name = "momentum", learning_rate = 0.001, momentum = 0.9 }'),
}
# How the runner may use the cores, as TOML lines per model. A sweep packs runs by the cores they
# take (threads x nproc), so "side-by-side" runs two at a time and the others one at a time.
SWEEPS = {
    "side-by-side": lambda model, cores: "threads = 1",
    "threads": lambda model, cores: f"threads = {cores}",
    # the faster of the two per model, from bench/parallel.py: AlexNet's 72 M parameters make
    # gradient all-reduce through gloo cost what a second process saves; ResNet-50's 24 M do not
    "fastest": lambda model, cores: f"threads = {cores}" if model == "alexnet" else f"threads = 1\nnproc = {cores}",
}


def matmul_limit_gflops() -> float:
    """Float32 matrix-product GFLOP/s of one core (numpy, one thread) times the usable cores."""
    code = textwrap.dedent("""
        import time, numpy as np
        a = np.random.rand(2048, 2048).astype(np.float32); b = a.copy(); a @ b
        t = time.perf_counter(); n = 10
        for _ in range(n): a @ b
        print(2 * 2048 ** 3 * n / (time.perf_counter() - t) / 1e9)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    per_core = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    return per_core * len(os.sched_getaffinity(0))


def run_yardstick(model: str, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}  # the course runs it plain
    cmd = [sys.executable, str(YARDSTICK), "--data", str(args.data / "ichallenge-pm"), "--model", model,
           "--epochs", str(args.epochs), "--seed", "0"]
    if args.train_limit:
        cmd += ["--train-limit", str(args.train_limit)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"yardstick failed:\n{proc.stderr[-2000:]}")
    epochs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    train_s = sum(e["train_s"] for e in epochs)
    eval_s = sum(e["epoch_s"] - e["train_s"] for e in epochs)
    n_train = round(epochs[0]["train_img_s"] * epochs[0]["train_s"])
    return {"wall_s": wall, "train_img_s": n_train * len(epochs) / train_s,
            "eval_img_s": 400 * len(epochs) / eval_s, "val_acc": epochs[-1]["val_acc"], "train_s": train_s}


def experiment_file(folder: Path, models: list[str], args, sweep: str, cores: int) -> Path:
    runs = [(*RUNS[m], SWEEPS[sweep](m, cores)) for m in models]
    return course_experiment(folder / "speed.toml", "speed", runs, args.epochs, args.train_limit)


def run_runner_sweep(path: Path, out: Path, jobs: int, args) -> tuple[float, list[dict]]:
    """Wall seconds of `runner sweep` (process start-up included) and the runs' result records."""
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(out), "RUNNER_DATA_ROOT": str(args.data)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "runner", "sweep", str(path), "--jobs", str(jobs)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"runner sweep failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    results = [json.loads(p.read_text()) for p in sorted(out.glob("speed/runs/*/result.json"))]
    return wall, results


def bare_loop_overhead(model: str, args, rounds: int = 3) -> dict:
    """Model.fit against a hand-written loop over the same network, optimizer and batches: the two
    take turns on one network, `rounds` times, so that drift in the machine's speed hits both."""
    code = textwrap.dedent(f"""
        import json, time, numpy as np, paddle
        from runner.models import build_network, build_model
        from runner.run.objectives import ClassificationLoss, ClassificationMetrics
        from runner.data import load_splits
        from runner.run.train import data_loader
        splits = load_splits("ichallenge-pm", 224, {str(args.data)!r}, train_limit=100)
        paddle.seed(0); np.random.seed(0)
        net = build_network({RUNS[model][0]!r}, 2, 224)
        opt = paddle.optimizer.Adam(0.001, parameters=net.parameters())
        loss_fn = ClassificationLoss()
        model = build_model(net, 224); model.prepare(opt, loss_fn, ClassificationMetrics(2))
        loader = data_loader(splits.train, 10, True, 0)
        def bare():
            net.train()
            for x, y in loader:
                loss = loss_fn(net(x), y); loss.backward(); opt.step(); opt.clear_grad()
        def fit():
            model.fit(loader, epochs=1, verbose=0)
        bare()  # warm-up: first-call allocations
        times = {{"bare": [], "fit": []}}
        for _ in range({rounds}):
            for name, step in (("bare", bare), ("fit", fit)):
                t = time.perf_counter(); step(); times[name].append(time.perf_counter() - t)
        print(json.dumps(times))
    """)
    proc = subprocess.run([sys.executable, "-c", "import runner\n" + code], capture_output=True, text=True,
                          env={**os.environ, "RUNNER_DATA_ROOT": str(args.data)})
    if proc.returncode:
        raise SystemExit(f"overhead probe failed:\n{proc.stderr[-2000:]}")
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    ratios = sorted(f / b for b, f in zip(times["bare"], times["fit"]))
    return {"bare_s": sum(times["bare"]), "fit_s": sum(times["fit"]), "median_ratio": ratios[len(ratios) // 2],
            "ratios": ratios}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RUNNER_DATA_ROOT", REPO.parent / "shared" / "data")))
    ap.add_argument("--models", nargs="+", default=["alexnet", "resnet50"], choices=sorted(RUNS))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-limit", type=int, default=0, help="use only N training images (a quick probe)")
    ap.add_argument("--sweeps", nargs="+", default=list(SWEEPS), choices=list(SWEEPS),
                    help="how the runner uses the cores: two runs side by side, one run with a math thread "
                         "per core, or per model the faster of threads and data-parallel processes")
    args = ap.parse_args()
    args.data = args.data.resolve()
    sys.path.insert(0, str(REPO))
    from runner.models import build_network, count_flops

    limit = matmul_limit_gflops()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {cores} cores, float32 matrix-product limit {limit:.0f} GFLOP/s "
          f"(numpy, one thread per core); epochs {args.epochs}, train images {args.train_limit or 400}, "
          f"validation images 400", flush=True)
    sweeps = {}  # name -> (wall, results by model)
    for name in args.sweeps:
        with tempfile.TemporaryDirectory() as tmp:
            path = experiment_file(Path(tmp), args.models, args, name, cores)
            wall, results = run_runner_sweep(path, Path(tmp) / "out", cores, args)
        sweeps[name] = (wall, {r["config"]["model"]: r for r in results})
        print(f"runner sweep ({name}): {wall:.0f} s", flush=True)

    # the yardstick last: a mistake in the runner's half shows before the long part
    yard = {}
    for m in args.models:
        yard[m] = run_yardstick(m, args)
        print(f"yardstick {m}: {json.dumps({k: round(v, 3) for k, v in yard[m].items()})}", flush=True)
    raw = REPO / "outputs" / "bench" / f"speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "limit_gflops": limit,
                               "yardstick": yard, "sweeps": sweeps}, indent=1))
    print(f"raw measurements: {raw}")
    header = f"{'model':<9} {'who':<19} {'train img/s':>11} {'eval img/s':>10} {'wall s':>8} {'val acc':>8} {'GFLOP/s':>8} {'of limit':>8}"
    print("\n" + header)
    for m in args.models:
        macs = count_flops(build_network(RUNS[m][0], 2, 224), 224)
        rows = [("yardstick", yard[m])]
        for name, (_, by_model) in sweeps.items():
            r = by_model[RUNS[m][0]]
            rows.append((f"runner {name}", {
                "train_img_s": r["images_per_second"], "eval_img_s": 400 * r["epochs_run"] / r["eval_seconds"],
                "wall_s": r["train_seconds"] + r["eval_seconds"], "val_acc": r["final"]["acc"]}))
        for who, row in rows:
            gflops = 2 * macs * (3 * row["train_img_s"]) / 1e9  # forward + backward = 3 forward passes
            print(f"{m:<9} {who:<19} {row['train_img_s']:>11.2f} {row['eval_img_s']:>10.2f} {row['wall_s']:>8.1f} "
                  f"{row['val_acc']:>8.4f} {gflops:>8.1f} {gflops / limit:>8.1%}")
        for who, ours in rows[1:]:
            print(f"{m:<9} {'x ' + who[7:]:<19} {ours['train_img_s'] / yard[m]['train_img_s']:>10.2f}x "
                  f"{ours['eval_img_s'] / yard[m]['eval_img_s']:>9.2f}x {yard[m]['wall_s'] / ours['wall_s']:>7.2f}x")
    seq = sum(y["wall_s"] for y in yard.values())
    print(f"\nwhole set, yardstick one after the other: {seq:.0f} s")
    for name, (wall, _) in sweeps.items():
        print(f"whole set, runner sweep ({name}): {wall:.0f} s -> {seq / wall:.2f}x")
    for m in args.models:
        o = bare_loop_overhead(m, args)
        print(f"fit overhead {m}: bare loop {o['bare_s']:.1f} s, paddle.Model.fit {o['fit_s']:.1f} s over {len(o['ratios'])} turns "
              f"each of 100 images; median of the turns {o['median_ratio'] - 1:+.1%} "
              f"(turns: {', '.join(f'{r - 1:+.1%}' for r in o['ratios'])})")


if __name__ == "__main__":
    main()
