"""The case-study report opens in headless Chromium without console errors, renders its plots, and screenshots.

Chromium is Debian's ``chromium`` package: the session fixture installs it with apt-get when it is missing and the
tests run as root (CI); elsewhere install it first (``apt-get install chromium``). The page is driven through the
DevTools protocol over a websocket (``websocket-client``): console errors, uncaught exceptions and failed loads
are collected from the ``Runtime`` and ``Log`` domains, which is exact where parsing ``--enable-logging`` output
is not.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cosmic.explore.backends import LocalBackend
from cosmic.study import run_case_study

SCREENSHOT_ENV = "COSMIC_REPORT_SCREENSHOT"  # copy the screenshot there (to look at it)


@pytest.fixture(scope="session")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True,
                       timeout=1200)
        exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("Chromium is needed for the report test: apt-get install chromium (as root)")
    return exe


class _Page:
    """A minimal DevTools-protocol client for one page target."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        self.ws.settimeout(60)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self.events.append(msg)

    def wait_for(self, method: str, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < end:
            self.ws.settimeout(max(0.1, end - time.monotonic()))
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        import websocket

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ws.settimeout(max(0.05, end - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                return

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + str(p["entry"].get("text")) + " " + str(p["entry"].get("url", "")))
        return out


def _open(exe: str, profile: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--remote-allow-origins=*", "--window-size=1400,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    end = time.monotonic() + 60
    port = None
    while time.monotonic() < end and port is None:
        line = proc.stderr.readline().decode("utf-8", "replace")
        if not line and proc.poll() is not None:
            break
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        pytest.fail("Chromium did not start its DevTools endpoint")
    # keep reading stderr so Chromium never blocks on a full pipe
    import threading

    threading.Thread(target=lambda: proc.stderr.read() if proc.stderr else None, daemon=True).start()
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
    page = next(t for t in targets if t.get("type") == "page")
    return proc, page["webSocketDebuggerUrl"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    run_case_study("cosmic-paper", d, backend=LocalBackend(1), agents=["ga", "random"], seeds=2, budget=60,
                   objective="runtime*cost", setting="both", models=["vit-base"], systems=["s1", "s3"])
    return d / "report.html"


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "<script src=" not in text and 'src="http' not in text  # plotly.js is inlined, nothing is fetched
    assert "Plotly" in text


def test_report_opens_without_console_errors(chromium: str, report: Path, tmp_path: Path) -> None:
    proc, ws_url = _open(chromium, tmp_path / "profile")
    try:
        page = _Page(ws_url)
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        page.send("Page.navigate", url=report.resolve().as_uri())
        page.wait_for("Page.loadEventFired", timeout_s=60)
        page.drain(1.5)  # plotly draws after load
        n_plots = page.send("Runtime.evaluate", expression="document.querySelectorAll('.js-plotly-plot').length",
                            returnByValue=True)["result"]["value"]
        n_svg = page.send("Runtime.evaluate", expression="document.querySelectorAll('.main-svg').length",
                          returnByValue=True)["result"]["value"]
        shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        (tmp_path / "report.png").write_bytes(png)
        if os.environ.get(SCREENSHOT_ENV):
            Path(os.environ[SCREENSHOT_ENV]).write_bytes(png)
        errors = page.errors()
        page.ws.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert errors == [], errors
    # speedup bars, breakdown, convergence and Pareto figures, one per setting
    assert n_plots == 8, n_plots
    assert n_svg >= n_plots
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
