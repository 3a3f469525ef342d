"""`runner board`: VisualDL over a sweep's logs.

VisualDL 2.5.3's pages answer HTTP 500 under Werkzeug 3 unless a language is given, so the server
is always started with `-L en`.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from runner.errors import RunnerError
from runner.processes import die_with_parent
from runner.store.layout import SweepPaths


def logdirs(output_dirs: list[Path]) -> list[Path]:
    dirs = []
    for out in output_dirs:
        vdl = SweepPaths(Path(out)).vdl
        if not vdl.is_dir() or not any(vdl.iterdir()):
            raise RunnerError(f"no VisualDL logs in {vdl}: run `runner sweep` or `runner train` first")
        dirs.append(vdl)
    return dirs


def start_board(output_dirs: list[Path], port: int = 8040, host: str = "127.0.0.1", timeout: float = 300.0):
    """Start VisualDL and wait until it answers (a busy machine may take it minutes to load the logs;
    it is waited for); returns (process, url). The caller stops it.
    `port = 0` takes a free port, and another one if something takes it before VisualDL does."""
    dirs = logdirs(output_dirs)
    for attempt in range(5 if port == 0 else 1):
        chosen = port or free_port(host)
        with socket.socket() as s:
            if s.connect_ex((host, chosen)) == 0:
                if port:
                    raise RunnerError(f"port {port} is already in use; pass --port with a free one (0: any)")
                continue
        try:
            return serve(dirs, host, chosen, timeout)
        except PortTaken:
            if port:
                raise RunnerError(f"port {port} is already in use; pass --port with a free one (0: any)") from None
    raise RunnerError("no free port found for VisualDL; pass --port")


class PortTaken(Exception):
    pass


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(dirs: list[Path], host: str, port: int, timeout: float):
    # the venv's own visualdl also where the venv is not activated (`.venv/bin/python -m runner board`)
    exe = shutil.which("visualdl") or shutil.which("visualdl", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "visualdl"]
    cmd += ["--logdir", *map(str, dirs), "--host", host, "--port", str(port), "-L", "en"]
    # The server dies with us even if we are killed outright.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
    url = f"http://{host}:{port}/app/scalar"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines()
                if any("in use" in line for line in err):
                    raise PortTaken()
                raise RunnerError(f"VisualDL exited at start: {err[-1] if err else 'no message'}")
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/app/api/runs", timeout=2) as r:
                    if r.status == 200:
                        return proc, url
            except OSError:
                time.sleep(0.3)
        raise RunnerError(f"VisualDL did not answer on port {port} within {timeout:.0f} s")
    except BaseException:  # also Ctrl-C while waiting: never leave the server behind
        stop_board(proc)
        raise


def stop_board(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
