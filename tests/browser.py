"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no port,
no extra package), so that a test waits for what it needs on the page (a condition polled in the
page itself) rather than for a fixed time budget that a busy machine overruns.

    with Browser(tmp_path) as browser:
        browser.open(url)
        browser.wait_for("document.images.length > 3", "the figures")
        browser.screenshot(path)

Every wait is bounded by conftest.HANG_SECONDS only, a bound that a hung browser reaches and a slow
machine does not.
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

from conftest import HANG_SECONDS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, folder: Path, width: int = 1400, height: int = 1000):
        assert CHROMIUM, "chromium is not installed: .ci/run installs Debian's chromium"
        profile = folder / f"chromium-profile-{len(list(folder.glob('chromium-profile-*')))}"
        to_browser, self._theirs_in = os.pipe()  # fd 3 of the browser reads what we write
        self._theirs_out, from_browser = os.pipe()  # fd 4 of the browser writes what we read
        theirs = (to_browser, from_browser)

        def as_fds_3_and_4():  # in the child: dup first, since a pipe's fds may already be 3 or 4
            read, write = os.dup(theirs[0]), os.dup(theirs[1])
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", "--remote-debugging-pipe",
             "about:blank"],
            preexec_fn=as_fds_3_and_4, close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(folder / "chromium.log", "ab"))
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id, self.session = b"", 0, None
        self.console_errors: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the protocol -------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._theirs_in, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next_message()
            if reply.get("method") == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(reply["params"]["exceptionDetails"])[:500])
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})

    def _next_message(self) -> dict:
        deadline = time.monotonic() + HANG_SECONDS
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._theirs_out], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"chromium sent nothing for {HANG_SECONDS:.0f} s: hung"
            chunk = os.read(self._theirs_out, 1 << 20)
            assert chunk, f"chromium exited (code {self.proc.poll()})"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(line)

    # ---- what a test does -----------------------------------------------------------------------

    def open(self, url: str) -> None:
        if self.session is None:
            page = next(t for t in self.send("Target.getTargets", session=False)["targetInfos"] if t["type"] == "page")
            self.session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                     session=False)["sessionId"]
            self.send("Runtime.enable")
            self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, (expression, result["exceptionDetails"])
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str):
        """Poll `expression` in the page until it is truthy, and return its value."""
        deadline = time.monotonic() + HANG_SECONDS
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"waited {HANG_SECONDS:.0f} s for {what}: the page never had it"
            time.sleep(0.2)

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path) -> Path:
        """The whole page, below the fold too, as a PNG, once it has stopped changing: two shots in a
        row alike (a chart still loading shows a spinner, one drawing animates)."""
        deadline, previous = time.monotonic() + HANG_SECONDS, None
        while True:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                        "clip": {"x": 0, "y": 0, "width": size["width"],
                                                                 "height": min(size["height"], 12000), "scale": 1}})
            if shot["data"] == previous:
                break
            assert time.monotonic() < deadline, f"the page kept changing for {HANG_SECONDS:.0f} s"
            previous = shot["data"]
            time.sleep(0.5)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=HANG_SECONDS)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            for fd in (self._theirs_in, self._theirs_out):
                try:
                    os.close(fd)
                except OSError:
                    pass
