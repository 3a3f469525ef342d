"""End to end in a real browser: VisualDL's pages and report.html rendered by headless Chromium.
Screenshots are kept for a person to look at, in $RUNNER_TEST_ARTIFACTS (else pytest's own
temporary folder). Under CI a missing browser fails these tests instead of skipping them."""
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import cli, tiny_experiment
from test_board import start

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("RUNNER_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium(tmp_path, *args, timeout=120) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is not installed: .ci/run installs Debian's chromium"
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--window-size=1400,1000", "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def two_runs(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\n', epochs=2)
    cli("sweep", path, check=True)
    return outputs / "tiny"


def test_visualdl_pages_render_both_runs(tmp_path, two_runs, artifacts):
    board, port = start(two_runs)
    try:
        dom = chromium(tmp_path, "--dump-dom", f"http://127.0.0.1:{port}/app/scalar").stdout
        assert "lenet adam lr=0.001 32px seed=0" in dom and "alexnet adam lr=0.001 32px seed=0" in dom
        for group in ("acc", "loss", "auc", "train"):  # the tag groups: acc/*, loss/*, auc/val, train/loss_step
            assert f">{group}<" in dom, group
        shot = artifacts / "visualdl-scalar.png"
        chromium(tmp_path, f"--screenshot={shot}", f"http://127.0.0.1:{port}/app/scalar")
        assert shot.stat().st_size > 10_000
        hparams = chromium(tmp_path, "--dump-dom", f"http://127.0.0.1:{port}/app/hyper-parameter").stdout
        for name in ("optimizer.learning_rate", "image_size", "model", "acc/val"):
            assert name in hparams, name
        shot = artifacts / "visualdl-hparams.png"
        chromium(tmp_path, f"--screenshot={shot}", f"http://127.0.0.1:{port}/app/hyper-parameter")
        assert shot.stat().st_size > 10_000
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=30)


def test_report_html_opens_with_table_and_plots(tmp_path, two_runs, artifacts):
    report = two_runs / "report.html"
    page = chromium(tmp_path, "--enable-logging=stderr", "--dump-dom", report.as_uri())
    assert page.returncode == 0 and "Uncaught" not in page.stderr
    dom = page.stdout
    runs = json.loads(cli("report", two_runs, "--format", "json", check=True).stdout)["runs"]
    for run in runs:  # every run, with its accuracy as the table shows it
        row = re.search(rf"<tr><td>{re.escape(run['run_id'])}</td>(.*?)</tr>", dom)
        assert row and f"{100 * run['final_acc']:.2f}%" in row.group(1), run["run_id"]
    images = re.findall(r'<img[^>]* src="([^"]+\.png)"', dom)
    assert len(images) >= 3 + 2 * 3  # the comparison plots, and each run's curves, confusion matrix and ROC
    for figure in ("gradcam.png", "reliability.png", "pareto.png", "accuracy_by_group.png", "val_acc_per_epoch.png"):
        assert figure in images, figure
    for heading in ("Where it looks", "Calibration", "Accuracy against cost", "Cost, calibration and operating points"):
        assert f"<h2>{heading}</h2>" in dom, heading
    assert all((two_runs / src).stat().st_size > 1000 for src in images)
    shot = artifacts / "report-html.png"
    chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert shot.stat().st_size > 10_000
