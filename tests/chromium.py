"""Open a local HTML page in headless Chromium and report what a person would see: the charts' drawn size, the
console's errors and warnings, any network request, and a screenshot.

Talks the DevTools protocol over --remote-debugging-pipe (JSON messages separated by NUL on file descriptors 3
and 4), so it needs nothing beyond the `chromium` package. Installs that package with apt-get when it is
missing and the machine allows it (`make chromium` does the same ahead of the test run).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> tuple[str | None, str]:
    """The browser's path, installing Debian's package when missing; or (None, why it could not be had)."""
    found = find_chromium()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing it needs root (run `make chromium` as root)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"])
    for step in steps:
        proc = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return None, f"`{' '.join(step)}` failed: {(proc.stderr or proc.stdout)[-500:]}"
    found = find_chromium()
    return (found, "") if found else (None, "apt-get installed chromium but no browser binary was found")


# What is measured in the page: every chart, its size on screen and how many of its shapes have an area.
MEASURE = """(() => {
  const charts = [...document.querySelectorAll('svg.chart, img')].map(el => {
    const box = el.getBoundingClientRect();
    let drawn = 0;
    if (el.tagName.toLowerCase() === 'svg') {
      for (const shape of el.querySelectorAll('path, rect, use')) {
        try { const b = shape.getBBox(); if (b.width > 0 || b.height > 0) drawn++; } catch (e) {}
      }
    } else if (el.complete && el.naturalWidth > 0) {
      drawn = 1;
    }
    return {label: el.getAttribute('aria-label') || el.getAttribute('alt') || '', width: box.width,
            height: box.height, drawn: drawn};
  });
  return JSON.stringify({title: document.title, charts: charts,
                         text: document.body ? document.body.innerText : ''});
})()"""


class Browser:
    def __init__(self, binary: str, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="sesame-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # the child's fd 3 reads our commands, fd 4 carries its answers
            commands = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            answers = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--mute-audio",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes,
            close_fds=False,
        )  # fds 3 and 4 must survive exec
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.width, self.height = width, height

    # -- protocol
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe (exit {self.proc.poll()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("method") == method:
                return message
            self.events.append(message)

    # -- what a test asks
    def open(self, page: Path, screenshot: Path | None = None) -> dict:
        """Load the page; returns its charts, text, console errors/warnings, requests and the screenshot path."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.call("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
        self.wait_for("Page.loadEventFired")
        measured = json.loads(
            self.call("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=session)["result"][
                "value"
            ]
        )
        if screenshot is not None:
            size = self.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot = self.call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": self.width, "height": min(size["height"], 12000), "scale": 1},
                },
                session=session,
            )
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        # anything the page logged after load still arrives: drain briefly
        try:
            deadline = time.monotonic() + 0.5
            while True:
                self.events.append(self._receive(deadline))
        except TimeoutError:
            pass
        measured["errors"] = self._problems(session)
        measured["requests"] = [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == session
        ]
        measured["screenshot"] = str(screenshot) if screenshot else None
        return measured

    def _problems(self, session: str) -> list[str]:
        found = []
        for e in self.events:
            if e.get("sessionId") != session:
                continue
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(
                    "console."
                    + params["type"]
                    + ": "
                    + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                )
            elif method == "Runtime.exceptionThrown":
                found.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"{params['entry']['source']} {params['entry']['level']}: {params['entry']['text']}")
        return found

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
