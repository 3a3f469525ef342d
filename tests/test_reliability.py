"""Bad inputs and crashes: each case asserts what the user sees and that nothing finished is lost.
The catalogue with the message of each case is docs/reliability.md."""
import csv
import errno
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import cv2
import numpy as np
import paddle
import pytest

from conftest import (DATA_ROOT, PM, TIMINGS, cli, epochs_logged_before_each_start, resumed_at, tiny_experiment,
                      wait_until_no_worker)
from runner.store.checkpoints import Checkpoints
from runner.config import load_experiment
from runner.run.conv_bias import ChannelBiasAdd
from runner.errors import RunnerError
from runner.store.layout import SweepLayout
from runner.store.registry import RunRegistry
from runner.sweep.loop import train_one
from runner.run.train import train_run

ONE_RUN = '[[runs]]\nmodel = "lenet"\n'


def tiny_run(tmp_path, epochs):
    """The spec and output layout of a one-run LeNet experiment, for tests that call train_run."""
    experiment = load_experiment(tiny_experiment(tmp_path, ONE_RUN, epochs=epochs))
    spec = experiment.runs[0]
    return spec, SweepLayout.for_experiment(experiment.name).run(spec.run_id)


def note_collector(notes: list, starts: list | None = None):
    """Collects the notes of a run, and the epoch each start resumed after."""
    def report(event, **details):
        if event == "note":
            notes.append(details["message"])
        elif event == "start" and starts is not None:
            starts.append(details["resumed_at"])
    return report


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_image_size_too_small_for_the_model(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nimage_size = 16\n')
    proc = cli("train", path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'lenet' cannot take 3x16x16 input: layer conv3" in proc.stderr and "image_size >= 28" in proc.stderr


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, outputs, monkeypatch):
    spec, run = tiny_run(tmp_path, epochs=3)
    # as if killed after epoch 3's checkpoint was half written: the run never finished, so the
    # epoch before it was not pruned
    monkeypatch.setattr(Checkpoints, "keep_last_only", lambda self: None)
    reference = train_run(spec, run, DATA_ROOT)
    run.result.unlink()
    newest = run.checkpoints / "epoch-0003" / "model.pdparams"
    newest.write_bytes(newest.read_bytes()[:100])
    notes, starts = [], []
    resumed = train_run(spec, run, DATA_ROOT, report=note_collector(notes, starts))
    assert any("epoch-0003 is unreadable" in n for n in notes)
    assert starts == [2]  # resumed from the epoch before the damaged one, not from scratch
    assert resumed["final"] == reference["final"] and len(resumed["history"]) == 3


def test_all_checkpoints_unreadable_restarts_and_says_so(tmp_path, outputs):
    spec, run = tiny_run(tmp_path, epochs=2)
    reference = train_run(spec, run, DATA_ROOT)
    run.result.unlink()
    for params in run.checkpoints.glob("epoch-*/model.pdparams"):
        params.write_bytes(b"")
    notes, starts = [], []
    again = train_run(spec, run, DATA_ROOT, report=note_collector(notes, starts))
    assert any("restarting the run from scratch" in n for n in notes)
    assert starts == [0]
    assert again["final"] == reference["final"]


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, outputs, monkeypatch):
    spec, run = tiny_run(tmp_path, epochs=3)
    real_save, calls = paddle.save, []

    def save(obj, path, *args, **kwargs):
        calls.append(path)
        # epoch 1: best's weights + epoch-0001's optimizer state (its weights are linked to best's)
        # succeed; epoch 2's first write hits a full disk
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(paddle, "save", save)
    with pytest.raises(RunnerError) as err:
        train_run(spec, run, DATA_ROOT)
    assert "could not write checkpoint" in str(err.value) and "No space left on device" in str(err.value)
    assert "previous checkpoint is kept" in str(err.value)
    assert not list(run.checkpoints.glob(".tmp-*"))
    monkeypatch.setattr(paddle, "save", real_save)
    result = train_run(spec, run, DATA_ROOT)  # space freed: it resumes after epoch 1
    assert result["epochs_run"] == 3


def test_registry_from_a_newer_runner_is_refused_and_untouched(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE_RUN, epochs=1)
    cli("sweep", path, check=True)
    db = outputs / "tiny" / "runs.sqlite"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = digest(db)
    proc = cli("sweep", path)
    assert proc.returncode == 1 and "written by a newer runner" in proc.stderr and "Traceback" not in proc.stderr
    assert digest(db) == before


def test_corrupted_registry_is_refused_and_untouched(tmp_path, outputs):
    (outputs / "tiny").mkdir(parents=True)
    db = outputs / "tiny" / "runs.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    proc = cli("sweep", tiny_experiment(tmp_path, ONE_RUN, epochs=1))
    assert proc.returncode == 1 and "is not a readable run registry" in proc.stderr
    assert db.read_bytes() == b"this is not a database" * 100


def test_output_folder_not_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = cli("sweep", tiny_experiment(tmp_path, ONE_RUN), env={"RUNNER_OUTPUT_ROOT": str(blocker / "outputs")})
    assert proc.returncode == 1 and "cannot write to the output folder" in proc.stderr
    assert "RUNNER_OUTPUT_ROOT" in proc.stderr


def test_ctrl_c_marks_the_run_interrupted_and_it_resumes(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "alexnet"\nimage_size = 64\n', epochs=4)
    proc = subprocess.Popen([sys.executable, "-m", "runner", "train", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)})
    deadline = time.monotonic() + 300
    while not list(outputs.glob("tiny/checkpoints/*/epoch-0001")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    rows = RunRegistry(outputs / "tiny" / "runs.sqlite").rows()
    assert rows[0]["status"] == "interrupted"
    again = cli("train", path, check=True)
    assert "resuming after epoch" in again.stdout
    assert RunRegistry(outputs / "tiny" / "runs.sqlite").rows()[0]["status"] == "done"


def test_ctrl_c_inside_a_backward_paddle_calls_from_cpp_is_an_interrupt(tmp_path, outputs, monkeypatch):
    # paddle turns a KeyboardInterrupt raised in a PyLayer's backward into OSError "(External) ..."
    spec, run = tiny_run(tmp_path, epochs=3)
    real_backward, calls = ChannelBiasAdd.backward, []

    def backward(ctx, grad):
        calls.append(1)
        if len(calls) == 3 * 3 + 1:  # 3 biased convolutions, 48 images / batch 16: in epoch 2's first step
            raise KeyboardInterrupt
        return real_backward(ctx, grad)

    monkeypatch.setattr(ChannelBiasAdd, "backward", staticmethod(backward))
    experiment = load_experiment(tmp_path / "tiny.toml")
    with pytest.raises(KeyboardInterrupt):  # `runner train`'s path: the run is recorded in the registry
        train_one(experiment, spec, DATA_ROOT)
    assert [p.name for p in run.checkpoints.glob("epoch-*")] == ["epoch-0001"]
    registry = RunRegistry(outputs / "tiny" / "runs.sqlite", create=False)
    assert registry.get(spec.run_id)["status"] == "interrupted"
    registry.close()
    monkeypatch.setattr(ChannelBiasAdd, "backward", staticmethod(real_backward))
    notes, starts = [], []
    assert train_run(spec, run, DATA_ROOT, report=note_collector(notes, starts))["epochs_run"] == 3
    assert starts == [1]  # resumed after the epoch that finished before the interrupt


def test_predict_on_bad_and_odd_images(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE_RUN, epochs=1)
    cli("sweep", path, check=True)
    checkpoint = next((outputs / "tiny" / "checkpoints").iterdir())
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((50, 70), 128, np.uint8))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    fundus = PM / "PALM-Validation400" / "V0001.jpg"  # 224x224, the run used 32x32
    proc = cli("predict", checkpoint, fundus, gray, text, tmp_path / "missing.jpg")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any(str(fundus) in line and "resized from 224x224 to 32x32" in line and "PM:" in line for line in lines)
    assert any(str(gray) in line and "resized from 70x50" in line for line in lines)
    assert f"{text}: error:" in proc.stderr and "not a readable image" in proc.stderr
    assert "missing.jpg: no such file" in proc.stderr and "Traceback" not in proc.stderr
    # a grayscale image is read as three equal channels: it predicts what its RGB copy predicts
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.full((50, 70, 3), 128, np.uint8))
    both = cli("predict", checkpoint, gray, rgb, check=True).stdout.splitlines()
    assert both[0].split(":", 1)[1] == both[1].split(":", 1)[1]
    bad = cli("predict", tmp_path / "nowhere", fundus)
    assert bad.returncode == 1 and "no checkpoint at" in bad.stderr


def test_fault_injection_sigkill_at_five_moments(tmp_path, outputs):
    """A sweep of 4 tiny runs killed with SIGKILL in training, evaluation, checkpoint writing, registry
    updates and at a random time; each restart carries on and the end is the uninterrupted sweep."""
    runs = "".join(f'[[runs]]\nmodel = "lenet"\nseed = {s}\n' for s in range(3)) + '[[runs]]\nmodel = "alexnet"\n'
    path = tiny_experiment(tmp_path, runs, epochs=2)
    cli("sweep", path, "--jobs", "1", check=True, env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "reference")})

    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)}
    finished_stamps = {}

    def note_finished():
        for result in outputs.glob("tiny/runs/*/result.json"):
            stamp = finished_stamps.setdefault(result, result.stat().st_mtime_ns)
            assert result.stat().st_mtime_ns == stamp, f"{result} was written again after its run finished"

    for fault in ("train-step:3", "eval:2", "checkpoint-write:3", "registry-update:1"):
        proc = subprocess.run([sys.executable, "-m", "runner", "sweep", str(path), "--jobs", "1"],
                              env={**env, "RUNNER_FAULT": fault}, capture_output=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr[-500:])
        wait_until_no_worker(outputs)
        note_finished()
    proc = subprocess.Popen([sys.executable, "-m", "runner", "sweep", str(path), "--jobs", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(7).uniform(2.0, 6.0))
    proc.kill()
    proc.wait()
    wait_until_no_worker(outputs)
    note_finished()

    cli("sweep", path, "--jobs", "1", check=True, env={"RUNNER_OUTPUT_ROOT": str(outputs)})
    note_finished()
    rows = RunRegistry(outputs / "tiny" / "runs.sqlite").rows()
    assert len(rows) == 4 and all(r["status"] == "done" for r in rows)
    restarts = 0
    for row in rows:
        log = outputs / "tiny" / "runs" / row["id"] / "train.log"
        # each process of a run resumed at or after every epoch already logged: nothing finished
        # was trained again, and a restart resumed rather than started over
        for started, logged in zip(resumed_at(log), epochs_logged_before_each_start(log)):
            assert started >= logged, (row["id"], resumed_at(log), epochs_logged_before_each_start(log))
        assert row["attempts"] >= len(resumed_at(log))  # a kill before a worker logs its start counts too
        restarts += sum(1 for started in resumed_at(log) if started > 0)
    assert restarts >= 1  # the kills landed mid-run, and those runs resumed

    def table(root):
        with open(root / "tiny" / "results.csv") as f:
            return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(f)]

    assert table(outputs) == table(tmp_path / "reference")


def test_kill_term_of_a_sweep_started_in_the_background_stops_it_cleanly(tmp_path, outputs):
    """A shell starts background jobs with SIGINT ignored; `kill` (SIGTERM) must still stop the sweep
    with its runs marked interrupted, not leave them 'running'."""
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "alexnet"\nimage_size = 64\n', epochs=4)
    proc = subprocess.Popen([sys.executable, "-m", "runner", "sweep", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 300
    while not list(outputs.glob("tiny/checkpoints/*/epoch-0001")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in stderr
    assert RunRegistry(outputs / "tiny" / "runs.sqlite").rows()[0]["status"] == "interrupted"
    cli("sweep", path, check=True)
    assert RunRegistry(outputs / "tiny" / "runs.sqlite").rows()[0]["status"] == "done"
