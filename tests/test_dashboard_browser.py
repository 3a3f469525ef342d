"""End to end in a real browser: VisualDL's pages and report.html rendered by headless Chromium.
Screenshots are kept in outputs/test-artifacts/ for a person to look at."""
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from conftest import REPO, cli, tiny_experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "outputs" / "test-artifacts"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def chromium(tmp_path, *args, timeout=120) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--window-size=1400,1000", "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_runs(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\n', epochs=2)
    cli("sweep", path, check=True)
    return outputs / "tiny"


def test_visualdl_pages_render_both_runs(tmp_path, two_runs):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "runner", "board", str(two_runs), "--port", str(port)],
                             env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "/app/scalar" in board.stdout.readline()
        scalar = chromium(tmp_path, "--dump-dom", f"http://127.0.0.1:{port}/app/scalar")
        dom = scalar.stdout
        assert "lenet adam lr=0.001 32px seed=0" in dom and "alexnet adam lr=0.001 32px seed=0" in dom
        for tag in ("acc", "loss", "auc"):
            assert tag in dom
        shot = ARTIFACTS / "visualdl-scalar.png"
        chromium(tmp_path, f"--screenshot={shot}", f"http://127.0.0.1:{port}/app/scalar")
        assert shot.stat().st_size > 10_000
        hparams = ARTIFACTS / "visualdl-hparams.png"
        chromium(tmp_path, f"--screenshot={hparams}", f"http://127.0.0.1:{port}/app/hyper-parameter")
        assert hparams.stat().st_size > 10_000
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=30)


def test_report_html_opens_with_table_and_plots(tmp_path, two_runs):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = two_runs / "report.html"
    page = chromium(tmp_path, "--enable-logging=stderr", "--dump-dom", report.as_uri())
    assert page.returncode == 0
    dom = page.stdout
    assert "<table>" in dom and dom.count("<tr>") >= 3  # header + two runs
    assert dom.count('src="data:image/png;base64,') >= 3 + 2 * 3  # comparison plots + each run's pictures
    assert "Uncaught" not in page.stderr
    shot = ARTIFACTS / "report-html.png"
    chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert shot.stat().st_size > 10_000
