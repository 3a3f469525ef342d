import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from conftest import cli, tiny_experiment


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_board_serves_every_run_and_stops_on_ctrl_c(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\n', epochs=1)
    cli("sweep", path, check=True)
    port = free_port()
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)}
    board = subprocess.Popen([sys.executable, "-m", "runner", "board", str(outputs / "tiny"), "--port", str(port)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = board.stdout.readline()
        assert f"http://127.0.0.1:{port}/app/scalar" in line
        runs = get_json(f"http://127.0.0.1:{port}/app/api/runs")["data"]
        assert len(runs) == 2
        tags = get_json(f"http://127.0.0.1:{port}/app/api/scalar/tags")["data"]
        assert sorted(tags["runs"]) == sorted(runs)
        for run_tags in tags["tags"]:
            assert {"acc/val", "loss/train", "train/loss_step"} <= set(run_tags)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app/scalar", timeout=10) as page:
            assert page.status == 200  # the page itself renders (VisualDL needs -L en under Werkzeug 3)
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=30)
    assert "VisualDL stopped" in board.stdout.read()
    time.sleep(0.5)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the server is gone


def test_board_without_logs_says_so(tmp_path, outputs):
    proc = cli("board", tmp_path / "nothing")
    assert proc.returncode == 1 and "no VisualDL logs" in proc.stderr


def test_board_compare_shows_two_sweeps_together(tmp_path, outputs):
    first = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', name="first", epochs=1)
    second = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nlabel = "lenet, second sweep"\n', name="second",
                             epochs=1)
    cli("sweep", first, check=True)
    cli("sweep", second, check=True)
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "runner", "board", str(outputs / "first"), "--port", str(port),
                              "--compare", str(outputs / "second")], env=os.environ.copy(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "/app/scalar" in board.stdout.readline()
        runs = get_json(f"http://127.0.0.1:{port}/app/api/runs")["data"]
        assert sorted(runs) == sorted(["lenet adam lr=0.001 32px seed=0", "lenet, second sweep"])
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=30)
