import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import paddle
import pytest

from conftest import DATA_ROOT, TINY, cli, tiny_experiment, wait_until, write_toml
from runner.config import load_experiment
from runner.store.layout import SweepPaths
from runner.run.train import data_loader, prepare_run, train_run

LENET_64 = """
name = "lenet64"
[defaults]
dataset = "ichallenge-pm"
image_size = 64
epochs = 2
batch_size = 16
train_limit = 64
val_limit = 64
optimizer = { name = "adam", learning_rate = 0.001 }
[[runs]]
model = "lenet"
"""


def run_once(tmp_path, text=LENET_64, overrides=()):
    experiment = load_experiment(write_toml(tmp_path, text), overrides)
    spec = experiment.runs[0]
    layout = SweepPaths.for_experiment(experiment.name).run_paths(spec.run_id)
    return spec, layout, train_run(spec, layout, DATA_ROOT, tmp_path / "cache")


def test_lenet_run_writes_logs_result_and_checkpoints(tmp_path, outputs):
    spec, layout, result = run_once(tmp_path)
    from visualdl import LogReader

    vdl_files = list(layout.vdl.glob("vdlrecords.*.log"))
    assert len(vdl_files) == 1
    reader = LogReader(file_path=str(vdl_files[0]))
    tags = set(reader.get_tags()["scalar"])
    assert {"train/loss_step", "loss/train", "acc/train", "loss/val", "acc/val", "auc/val", "lr"} <= tags
    assert len(reader.get_data("scalar", "acc/val")) == 2
    assert len(reader.get_data("scalar", "train/loss_step")) == 2 * 4  # 64 images / batch 16, 2 epochs

    on_disk = json.loads(layout.result.read_text())
    assert on_disk["epochs_run"] == 2 and on_disk["parameters"] > 0 and on_disk["flops"] > 0
    assert set(on_disk["final"]) >= {"acc", "auc", "sensitivity", "specificity", "f1", "loss"}
    assert on_disk["versions"]["paddle"] == paddle.__version__
    # each epoch's training CPU time, and their sum: the cost a loaded machine does not inflate
    cpu = [h["train_cpu_seconds"] for h in on_disk["history"]]
    assert all(c > 0 for c in cpu) and on_disk["train_cpu_seconds"] == pytest.approx(sum(cpu), abs=1e-3)

    # a finished run keeps its last epoch (with optimizer state) and its best weights, nothing older
    assert sorted(p.name for p in layout.checkpoints.iterdir()) == ["best", "epoch-0002", "run.json"]

    # the recorded final metrics are what a separate Model.evaluate of the last checkpoint says
    splits, network, model, _ = prepare_run(spec, DATA_ROOT, tmp_path / "cache")
    model.load(str(layout.checkpoints / "epoch-0002" / "model"))
    evaluated = model.evaluate(data_loader(splits.val, 32, False, 0), verbose=0)
    assert evaluated["acc"] == pytest.approx(on_disk["final"]["acc"])
    assert evaluated["auc"] == pytest.approx(on_disk["final"]["auc"])
    assert evaluated["sensitivity"] == pytest.approx(on_disk["final"]["sensitivity"])
    # (paddle's evaluate reports the last batch's loss; the record holds the mean over all batches)
    # and the best checkpoint restores too; it holds weights only, shared with its epoch's folder
    best_dir = layout.checkpoints / "best"
    assert sorted(p.name for p in best_dir.iterdir()) == ["model.pdparams", "state.json"]
    best_epoch = json.loads((best_dir / "state.json").read_text())["best"]["epoch"]
    for epoch_dir in layout.checkpoints.glob("epoch-*"):
        same_file = (epoch_dir / "model.pdparams").samefile(best_dir / "model.pdparams")
        assert same_file == (epoch_dir.name == f"epoch-{best_epoch:04d}")
        assert (epoch_dir / "model.pdopt").stat().st_size > 0
    model.load(str(best_dir / "model"))
    best = model.evaluate(data_loader(splits.val, 32, False, 0), verbose=0)
    assert best["acc"] == pytest.approx(on_disk["best"]["acc"])


def test_same_seed_gives_identical_metrics(tmp_path, outputs, monkeypatch):
    _, _, first = run_once(tmp_path)
    monkeypatch.setenv("RUNNER_OUTPUT_ROOT", str(tmp_path / "again"))
    _, _, second = run_once(tmp_path)
    assert first["history"] and [h["val"] for h in first["history"]] == [h["val"] for h in second["history"]]
    assert [h["train"] for h in first["history"]] == [h["train"] for h in second["history"]]


def test_killed_run_resumes_to_the_same_metrics(tmp_path, outputs, monkeypatch):
    # with a warm-up wrapping the cosine schedule: both schedules' states must come back
    text = LENET_64.replace("epochs = 2", "epochs = 3").replace('"lenet"', '"alexnet"').replace(
        "[[runs]]", 'augment = true\nscheduler = { name = "cosine", warmup_epochs = 1 }\n[[runs]]')
    path = write_toml(tmp_path, text)
    # reference: never interrupted
    monkeypatch.setenv("RUNNER_OUTPUT_ROOT", str(tmp_path / "reference"))
    cli("train", path, check=True, env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "reference")})
    # killed with SIGKILL as soon as epoch 1's checkpoint exists, then resumed
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)}
    proc = subprocess.Popen([sys.executable, "-m", "runner", "train", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    checkpoint = outputs / "lenet64" / "checkpoints"
    wait_until(lambda: list(checkpoint.glob("*/epoch-0001")), "epoch 1's checkpoint", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(checkpoint.glob("*/epoch-0001")) and not list(checkpoint.glob("*/epoch-0003"))
    resumed = cli("train", path, check=True, env={"RUNNER_OUTPUT_ROOT": str(outputs)})
    assert "resuming after epoch 1" in resumed.stdout or "resuming after epoch 2" in resumed.stdout

    reference = json.loads(next((tmp_path / "reference").rglob("result.json")).read_text())
    result = json.loads(next(outputs.rglob("result.json")).read_text())
    assert [h["val"] for h in result["history"]] == [h["val"] for h in reference["history"]]
    assert result["final"] == reference["final"]
    # the epochs before the kill keep their CPU time through the checkpoint
    assert all(h["train_cpu_seconds"] > 0 for h in result["history"]) and result["train_cpu_seconds"] > 0
    assert "unused values in state_dict" not in resumed.stdout + resumed.stderr


def test_googlenet_trains_with_aux_losses_and_reports_main_head(tmp_path, outputs):
    from runner.run.objectives import ClassificationLoss

    experiment = load_experiment(write_toml(tmp_path, LENET_64.replace('"lenet"', '"googlenet"')),
                                 ["image_size=32", "train_limit=8", "val_limit=8", "batch_size=8"])
    splits, network, model, metric = prepare_run(experiment.runs[0], DATA_ROOT)
    x = paddle.to_tensor(np.stack([splits.train[i][0] for i in range(8)]))
    y = paddle.to_tensor(np.stack([splits.train[i][1] for i in range(8)]))
    network.train()
    logits, aux1, aux2 = network(x)
    loss_fn = ClassificationLoss(aux_weight=0.3)
    main_only = paddle.nn.functional.cross_entropy(logits, y)
    with_aux = loss_fn(logits, aux1, aux2, y)
    expected = main_only + 0.3 * (paddle.nn.functional.cross_entropy(aux1, y) + paddle.nn.functional.cross_entropy(aux2, y))
    assert float(with_aux) == pytest.approx(float(expected), rel=1e-6)
    assert float(with_aux) > float(main_only)
    # one real optimisation step through paddle.Model
    before = network.aux1.fc2.weight.numpy().copy()
    model.train_batch([x], [y])
    assert not np.allclose(before, network.aux1.fc2.weight.numpy())  # the aux head was trained
    # evaluation sees only the main head: accuracy equals the main logits' accuracy
    network.eval()
    metric.reset()
    model.eval_batch([x], [y])
    with paddle.no_grad():
        main_acc = float((network(x).argmax(1).numpy() == y.numpy().reshape(-1)).mean())
    assert metric.accumulate()[0] == pytest.approx(main_acc)


def test_label_smoothing_matches_hand_computed_loss_and_trains():
    from runner.run.objectives import ClassificationLoss

    # logits (2, 0) for class 0: p = (e^2, 1) / (e^2 + 1); eps = 0.1 over 2 classes puts 0.95 on the
    # true class and 0.05 on the other
    logits = paddle.to_tensor([[2.0, 0.0], [2.0, 0.0]])
    labels = paddle.to_tensor([[0], [1]], dtype="int64")
    log_p = np.log(np.exp([2.0, 0.0]) / (np.exp(2.0) + 1))
    expected = np.mean([-(0.95 * log_p[0] + 0.05 * log_p[1]), -(0.95 * log_p[1] + 0.05 * log_p[0])])
    assert float(ClassificationLoss(label_smoothing=0.1)(logits, labels)) == pytest.approx(expected, rel=1e-6)
    assert float(ClassificationLoss()(logits, labels)) == pytest.approx(-np.mean(log_p), rel=1e-6)

    # one step through paddle.Model with integer labels, as the runner feeds them
    net = paddle.nn.Linear(4, 2)
    model = paddle.Model(net)
    model.prepare(paddle.optimizer.SGD(0.1, parameters=net.parameters()), ClassificationLoss(label_smoothing=0.1))
    before = net.weight.numpy().copy()
    model.train_batch([paddle.rand([3, 4])], [paddle.to_tensor([[0], [1], [1]], dtype="int64")])
    assert not np.allclose(before, net.weight.numpy())


def test_diverging_run_fails_with_epoch_and_step(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "alexnet"\n'
                                     'optimizer = { name = "momentum", learning_rate = 1e6, momentum = 0.9 }\n')
    proc = cli("train", path)
    assert proc.returncode == 1
    assert "loss is nan at epoch 1, step" in proc.stderr or "loss is inf at epoch 1, step" in proc.stderr
    assert "Traceback" not in proc.stderr
    from runner.store.registry import RunRegistry

    rows = RunRegistry(outputs / "tiny" / "runs.sqlite").rows()
    assert rows[0]["status"] == "failed" and "at epoch 1, step" in rows[0]["error"]


@pytest.mark.parametrize("scheduler, expected", [
    ('{ name = "step", step_size = 1, gamma = 0.5 }', [0.01, 0.005, 0.0025]),
    ('{ name = "cosine" }', [0.01, 0.0075, 0.0025]),
    ('{ name = "constant", warmup_epochs = 2 }', [0.001, 0.0055, 0.01]),
])
def test_learning_rate_schedules_step_once_per_epoch(tmp_path, outputs, scheduler, expected):
    text = TINY.format(name="lr", epochs=3).replace("learning_rate = 0.001", "learning_rate = 0.01")
    experiment = load_experiment(write_toml(tmp_path, text + f'scheduler = {scheduler}\n[[runs]]\nmodel = "lenet"\n'))
    spec = experiment.runs[0]
    result = train_run(spec, SweepPaths.for_experiment("lr").run_paths(spec.run_id), DATA_ROOT)
    assert [h["lr"] for h in result["history"]] == pytest.approx(expected)


def test_an_epochs_cpu_time_counts_work_not_waiting():
    """A process that waits for a core (here: sleeps) adds wall time but no CPU time, which is why
    train_cpu_seconds can compare runs trained under different loads."""
    import time

    from runner.run.callbacks import History

    history = History([], metric=None, steps=1)
    history.current = {"_cpu0": time.process_time()}
    history.loss_sums = {"train": [3.0, 2.0]}
    started = time.perf_counter()
    time.sleep(0.3)
    sum(i * i for i in range(300_000))  # some work
    assert time.perf_counter() - started >= 0.3
    seconds, loss = history.train_totals()
    assert 0 < seconds < 0.25 and loss == 1.5
    # where data-loader worker processes do part of the work, this process's CPU time is not the
    # training's: none is recorded rather than an undercount
    history = History([], metric=None, steps=1, counts_cpu=False)
    history.current = {"_cpu0": time.process_time()}
    history.loss_sums = {"train": [0.0, 0.0]}
    seconds, loss = history.train_totals()
    assert seconds is None and math.isnan(loss)


def test_a_run_with_an_epoch_of_no_cpu_time_has_no_total():
    from runner.run.train import total_cpu_seconds

    assert total_cpu_seconds([{"train_cpu_seconds": 1.5}, {"train_cpu_seconds": 2.25}]) == 3.75
    # resumed from a checkpoint of a runner that did not record it: a partial sum would look cheap
    assert total_cpu_seconds([{"train_seconds": 9.0}, {"train_cpu_seconds": 2.25}]) is None
    assert total_cpu_seconds([]) is None


def test_a_run_loading_in_worker_processes_records_no_cpu_time(tmp_path, outputs):
    _, _, result = run_once(tmp_path, LENET_64.replace("epochs = 2", "epochs = 1"), overrides=["num_workers=1"])
    assert result["history"][0]["train_cpu_seconds"] is None and result["train_cpu_seconds"] is None
    assert result["train_seconds"] > 0
