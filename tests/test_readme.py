"""The README's Quick start, line by line in its order, as a newcomer runs it on a fresh clone."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import DATA_ROOT, HANG_SECONDS, REPO

pytestmark = pytest.mark.slow


def quick_start_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_every_quick_start_line_works_on_a_fresh_clone_in_order(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copytree(REPO / "experiments", clone / "experiments")
    (tmp_path / "shared").symlink_to(DATA_ROOT.parent)  # ../shared/data, as beside a clone
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env['PATH']}"
    lines = quick_start_lines()
    assert lines[0].startswith("export RUNNER_DATA_ROOT=") and len(lines) >= 8
    for line in lines:
        if line.startswith("export "):
            key, value = line.split(" ", 1)[1].split("=", 1)
            env[key] = value
            continue
        argv = shlex.split(line)
        if argv[:2] == ["runner", "board"]:
            board = subprocess.Popen(argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
            seen = board.stdout.readline()  # the URL, once VisualDL answers; or its error
            os.killpg(board.pid, signal.SIGINT)
            assert board.wait(timeout=HANG_SECONDS) == 0 and "VisualDL: http://127.0.0.1:" in seen, seen
            continue
        proc = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=HANG_SECONDS)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr, line
        if argv[:2] == ["runner", "predict"]:
            assert re.search(r"V0001\.jpg: (PM|non-PM \(H\+N\))\s+non-PM \(H\+N\): 0\.\d{4}\s+PM: 0\.\d{4}", proc.stdout)
    assert (clone / "outputs" / "quick" / "report.html").exists()
