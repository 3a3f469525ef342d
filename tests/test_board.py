import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

from conftest import HANG_SECONDS, cli, tiny_experiment, wait_until


def start(*args, env=None):
    """`runner board ... --port 0` (the runner picks a free port); the process and its port."""
    board = subprocess.Popen([sys.executable, "-m", "runner", "board", *map(str, args), "--port", "0"],
                             env=env or os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = board.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/app/scalar", line)
    assert match, (line, board.stderr.read() if board.poll() is not None else "")
    return board, int(match.group(1))


def port_closed(port) -> bool:
    def closed():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) != 0
    return wait_until(closed, f"port {port} to close")


def get_json(url):
    with urllib.request.urlopen(url, timeout=HANG_SECONDS) as r:
        return json.loads(r.read())


def test_board_serves_every_run_and_stops_on_ctrl_c(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\n', epochs=1)
    cli("sweep", path, check=True)
    board, port = start(outputs / "tiny", env={**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)})
    try:
        runs = get_json(f"http://127.0.0.1:{port}/app/api/runs")["data"]
        assert len(runs) == 2
        tags = get_json(f"http://127.0.0.1:{port}/app/api/scalar/tags")["data"]
        assert sorted(tags["runs"]) == sorted(runs)
        for run_tags in tags["tags"]:
            assert {"acc/val", "loss/train", "train/loss_step"} <= set(run_tags)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app/scalar", timeout=HANG_SECONDS) as page:
            assert page.status == 200  # the page itself renders (VisualDL needs -L en under Werkzeug 3)
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=HANG_SECONDS)
    assert "VisualDL stopped" in board.stdout.read()
    assert port_closed(port)  # the server is gone


def test_board_without_logs_says_so(tmp_path, outputs):
    proc = cli("board", tmp_path / "nothing")
    assert proc.returncode == 1 and "no VisualDL logs" in proc.stderr and "Traceback" not in proc.stderr


def test_board_compare_shows_two_sweeps_together(tmp_path, outputs):
    first = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', name="first", epochs=1)
    second = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nlabel = "lenet, second sweep"\n', name="second",
                             epochs=1)
    cli("sweep", first, check=True)
    cli("sweep", second, check=True)
    board, port = start(outputs / "first", "--compare", outputs / "second")
    try:
        runs = get_json(f"http://127.0.0.1:{port}/app/api/runs")["data"]
        assert sorted(runs) == sorted(["lenet seed=0 adam lr=0.001 32px", "lenet, second sweep"])
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=HANG_SECONDS)
