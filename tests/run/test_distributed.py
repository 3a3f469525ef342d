"""Data parallelism on CPU: two processes through paddle.distributed.launch (gloo) against one."""
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import cli, tiny_experiment, wait_until, wait_until_no_worker
from runner.run.distributed import ShardedBatchSampler, gathered_order

LENET = '[[runs]]\nmodel = "lenet"\noptimizer = { name = "adam", learning_rate = 0.003 }\n'


def test_sharded_batches_partition_each_global_batch():
    one = list(ShardedBatchSampler(64, 16, True, seed=3))
    shards = [list(ShardedBatchSampler(64, 16, True, seed=3, rank=r, world=2)) for r in range(2)]
    for k, batch in enumerate(one):
        assert sorted(shards[0][k] + shards[1][k]) == sorted(batch) and len(shards[0][k]) == 8
    padded = [list(ShardedBatchSampler(7, 4, False, rank=r, world=2)) for r in range(2)]
    assert len(padded[0]) == len(padded[1])  # equal shares, so no rank waits forever
    assert gathered_order(7, 4, 2).tolist() == [0, 2, 1, 3, 4, 6, 5]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, outputs):
    path = tiny_experiment(tmp_path, LENET, epochs=2)
    single = cli("train", path, check=True)
    double = cli("train", path, "--nproc", "2", env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "two")})
    assert double.returncode == 0, double.stdout[-3000:] + double.stderr[-3000:]
    one = json.loads(next(outputs.rglob("result.json")).read_text())
    two_file = next((tmp_path / "two").rglob("result.json"))
    two = json.loads(two_file.read_text())
    assert two["parallel"]["processes"] == 2 and two["parallel"]["batch_per_process"] == 8
    assert two["parallel"]["global_batch_size"] == 16
    # both processes took part: each computed half of every epoch's images
    shares = [json.loads(p.read_text()) for p in sorted((two_file.parent / "ranks").glob("rank-*.json"))]
    assert [s["rank"] for s in shares] == [0, 1] and all(s["train_images_per_epoch"] == 24 for s in shares)
    # same global batches, same data, LeNet has no batch norm: equal up to floating-point sums
    for a, b in zip(one["history"], two["history"]):
        assert a["val"]["acc"] == b["val"]["acc"]
        assert a["val"]["loss"] == pytest.approx(b["val"]["loss"], rel=1e-4)
        assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=1e-4)
    assert "nproc" not in single.stderr


def test_gpu_without_cuda_is_a_clear_error(tmp_path, outputs):
    path = tiny_experiment(tmp_path, LENET + 'device = "gpu"\n', epochs=1)
    proc = cli("train", path)
    assert proc.returncode == 1
    assert "no GPU support" in proc.stderr and "Traceback" not in proc.stderr


def test_a_two_process_run_killed_with_its_sweep_leaves_no_worker_and_resumes_to_the_same_metrics(tmp_path, outputs):
    # what experiments/cifar10_zoo.toml's nproc = 2 runs rely on across sittings: kill -9 of the sweep
    # takes paddle's launcher and both its processes with it (none keeps writing the run), and the
    # same command resumes from the checkpoint to what an uninterrupted run gives, batch norm and
    # the Lookahead weights included (they sync every 2 steps, before epoch 1's checkpoint: the average
    # then holds batch norm's statistics, which each process moves towards its own)
    runs = ('[[runs]]\nmodel = "cifar_resnet20"\nnproc = 2\nlookahead = { every = 2, decay = 0.95 }\n'
            'optimizer = { name = "momentum", learning_rate = 0.05, momentum = 0.9, nesterov = true }\n')
    path = tiny_experiment(tmp_path, runs, epochs=6)
    cli("sweep", path, "--jobs", "2", check=True, env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "reference")})
    proc = subprocess.Popen([sys.executable, "-m", "runner", "sweep", str(path), "--jobs", "2"],
                            env={**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = outputs / "tiny" / "checkpoints"
    wait_until(lambda: list(checkpoints.glob("*/epoch-0001")), "epoch 1's checkpoint", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_until_no_worker(outputs)
    # workers left behind would have trained on to the end meanwhile
    assert not list(outputs.rglob("result.json")) and not list(checkpoints.glob("*/epoch-0006"))
    cli("sweep", path, "--jobs", "2", check=True, env={"RUNNER_OUTPUT_ROOT": str(outputs)})
    reference = json.loads(next((tmp_path / "reference").rglob("result.json")).read_text())
    result = json.loads(next(outputs.rglob("result.json")).read_text())
    assert result["parallel"]["processes"] == 2
    assert [h["val"] for h in result["history"]] == [h["val"] for h in reference["history"]]
    assert result["final"] == reference["final"]
    # the table says the run took two processes, and what that makes of its timings
    table = (outputs / "tiny" / "results.md").read_text()
    assert "| processes × threads |" in table and "| 2×1 |" in table and "summed over the processes" in table


def test_the_first_process_of_a_run_to_fail_says_why(tmp_path):
    from runner.store.layout import SweepPaths
    from runner.store.runfiles import read_error, write_error

    # rank 1 diverges and leaves; rank 0 then fails in its next exchange, or takes the launcher's
    # SIGTERM for an interrupt: the run failed for rank 1's reason, not for "interrupted, resume"
    paths = SweepPaths(tmp_path).run_paths("run")
    paths.error.parent.mkdir(parents=True)
    write_error(paths, "loss is nan at epoch 2, step 5")
    write_error(paths, "interrupted (Ctrl-C); run the sweep again to resume from the last finished epoch")
    assert read_error(paths) == "loss is nan at epoch 2, step 5"
    assert [p.name for p in paths.error.parent.iterdir()] == [paths.error.name]  # no temporary file left


def test_kill_9_of_runner_train_takes_its_two_processes_with_it(tmp_path, outputs):
    path = tiny_experiment(tmp_path, LENET, epochs=30)
    proc = subprocess.Popen([sys.executable, "-m", "runner", "train", str(path), "--nproc", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: list((outputs / "tiny" / "checkpoints").glob("*/epoch-0001")), "epoch 1's checkpoint", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_until_no_worker(outputs)
    # a launcher left behind would have trained its workers on to the end meanwhile
    assert not list(outputs.rglob("result.json"))
