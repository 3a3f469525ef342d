"""End to end in a real browser: VisualDL's pages and report.html rendered by headless Chromium.

Each test waits for what it asserts (tests/browser.py polls the page), never for a fixed budget, so
a busy machine makes it slower, not red. Screenshots of the whole page are kept for a person to look
at, in $RUNNER_TEST_ARTIFACTS (else the folder `artifacts` of pytest's temporary folder). Under CI a
missing browser fails these tests instead of skipping them."""
import json
import os
import re
import signal
import urllib.request

import pytest

from browser import CHROMIUM, Browser
from conftest import HANG_SECONDS, cli, tiny_experiment
from runner.report.files import SECTIONS
from test_board import start

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Debian's chromium is not installed (.ci/run installs it)")

# two networks, and a learning rate that differs between them: what VisualDL must show first
TWO_RUNS = '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\noptimizer = { name = "adam", learning_rate = 0.002 }\n'
NAMES = ("lenet seed=0 adam lr=0.001 32px", "alexnet seed=0 adam lr=0.002 32px")


@pytest.fixture
def two_runs(tmp_path, outputs):
    cli("sweep", tiny_experiment(tmp_path, TWO_RUNS, epochs=2), check=True)
    return outputs / "tiny"


def text_has(*words) -> str:
    """A page condition: its text holds every one of `words`."""
    return " && ".join(f"document.body && document.body.innerText.includes({json.dumps(w)})" for w in words)


def hparams_table(text: str) -> tuple[list[str], list[list[str]]]:
    """VisualDL's hyper-parameter table from the page's text (a cell a line; its table is made of
    divs): the column names after "Trial ID", then a row per run, each led by the run's log folder."""
    lines = text.split("Trial ID", 1)[1].split("\nHyper Parameters\n", 1)[0].strip().splitlines()
    starts = [i for i, line in enumerate(lines) if "/vdl/" in line]
    header = lines[:starts[0]]
    rows = [lines[a + 1:b] for a, b in zip(starts, starts[1:] + [len(lines)])]
    return header, rows


def test_visualdl_pages_render_both_runs(tmp_path, two_runs, artifacts):
    board, port = start(two_runs)
    try:
        with Browser(tmp_path) as browser:
            browser.open(f"http://127.0.0.1:{port}/app/scalar")
            # run names lead with what tells the runs apart: model and seed
            browser.wait_for(text_has(*NAMES, "acc", "loss", "auc", "train"), "both runs and the tag groups")
            browser.wait_for("document.querySelectorAll('canvas').length >= 2", "the charts")
            assert browser.screenshot(artifacts / "visualdl-scalar.png").stat().st_size > 10_000  # once drawn

            browser.open(f"http://127.0.0.1:{port}/app/hyper-parameter")
            text = browser.wait_for(f"({text_has('Trial ID', 'acc/val', '0.002')}) && document.body.innerText",
                                    "the hyper-parameter table")
            header, rows = hparams_table(text)
            # what varies within the sweep comes before two dozen settings every run shares
            assert header.index("model") < header.index("optimizer/learning_rate") < header.index("batch_size")
            # every cell has its value (VisualDL leaves a dotted name's cells blank, which drops them here)
            assert all(len(row) == len(header) for row in rows), (header, rows)
            column = header.index("optimizer/learning_rate")
            assert sorted(row[column] for row in rows) == ["0.001", "0.002"], (header, rows)
            assert browser.screenshot(artifacts / "visualdl-hparams.png").stat().st_size > 10_000
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app/api/image/tags", timeout=HANG_SECONDS) as r:
            tags = json.loads(r.read())["data"]["tags"]
        for run_tags in tags:  # the final epoch's figures, as the table's final accuracy
            assert {"final/confusion_matrix", "final/roc", "gradcam/val"} <= set(run_tags), run_tags
            assert not any(tag.startswith("best/") for tag in run_tags), run_tags
    finally:
        board.send_signal(signal.SIGINT)
        board.wait(timeout=HANG_SECONDS)


def test_report_html_opens_with_table_and_plots(tmp_path, two_runs, artifacts):
    report = two_runs / "report.html"
    runs = json.loads(cli("report", two_runs, "--format", "json", check=True).stdout)["runs"]
    with Browser(tmp_path) as browser:
        browser.open(report.as_uri())
        browser.wait_for("document.readyState === 'complete' && document.images.length > 0 && "
                         "[...document.images].every(i => i.complete && i.naturalWidth > 0)", "every figure loaded")
        dom = browser.dom()
        shot = browser.screenshot(artifacts / "report-html.png")
        sizes = browser.evaluate("[...document.querySelectorAll('.run img')].map(i => [i.width, i.naturalWidth])")
        # each section's figure follows its own heading
        order = browser.evaluate("[...document.querySelectorAll('h2, img')].map(e => e.tagName === 'H2' ? "
                                 "'h2:' + e.textContent : e.getAttribute('src'))")
        assert not browser.console_errors, browser.console_errors
    assert shot.stat().st_size > 10_000
    for run in runs:  # every run, with its accuracy as the table shows it
        row = re.search(rf"<tr><td>{re.escape(run['run_id'])}</td>(.*?)</tr>", dom)
        assert row and f"{100 * run['final_acc']:.2f}%" in row.group(1), run["run_id"]
    images = re.findall(r'<img[^>]* src="([^"]+\.png)"', dom)
    assert len(images) >= 3 + 2 * 3  # the comparison plots, and each run's curves, confusion matrix and ROC
    assert all((two_runs / src).stat().st_size > 1000 for src in images)
    for figure, heading, _ in SECTIONS:
        if figure in ("search_history.png", "search_importance.png"):
            continue
        assert figure in images, figure
        assert order[order.index(f"h2:{heading}") + 1] == figure, (heading, order)
    assert "<h2>Cost, calibration and operating points</h2>" in dom
    # a run's figures are shown at the size they were drawn at: their text reads as drawn
    assert len(sizes) == 2 * 3 and all(shown >= 0.99 * natural for shown, natural in sizes), sizes
    # the Grad-CAM grid: its images named by file under it, and a caption that says how it is scaled
    key = re.search(r"<p class=\"gradcam-key\">Columns: (.*?)</p>", dom).group(1)
    assert len(re.findall(r"V\d{4}\.jpg \((PM|non-PM \(H\+N\))\)", key)) == 8, key
    assert "scaled to its own peak, as its colour bar says" in dom
    # the cost table says under which load the latencies were taken
    assert "measured under" in dom and re.search(r"<td>load \d+\.\d, \d+ other runs?</td>", dom)
