"""The rendered report in a real browser: Debian's headless Chromium loads it from a copied
folder (file://, no server, no network), and the test fails on any console error, uncaught
exception or broken image, then saves a screenshot (kept under the test's tmp folder and,
when EDGEBENCH_SCREENSHOTS is set, copied there)."""

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

import pytest
from waiting import HANG_S

from orchestrator.report import figures, replay
from orchestrator.report.render import render


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no chromium on PATH, and installing Debian's chromium needs root and apt-get "
                    "(sudo apt-get install -y chromium)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
    res = subprocess.run(["apt-get", "install", "-y", "chromium"], env=env, capture_output=True, text=True,
                         timeout=1200)
    path = _find_chromium()
    if not path:
        pytest.skip(f"apt-get install -y chromium did not give a chromium: {res.stderr[-500:]}")
    return path


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page, one websocket)."""

    def __init__(self, binary: str, profile: Path):
        self.proc = subprocess.Popen(
            [binary, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + HANG_S  # a hang guard: readline blocks until chromium prints
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("chromium exited before opening its DevTools port")
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
        assert port, "chromium never printed its DevTools port"
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(p for p in pages if p.get("type") == "page")
        import websocket

        # a hang guard, not a speed target: a long page's screenshot on a loaded machine takes a while
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=HANG_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = HANG_S) -> None:
        if any(e.get("method") == event for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == event:
                return
        raise TimeoutError(event)

    def load(self, url: str) -> list[str]:
        """Open `url`; return every problem: console errors, exceptions, failed loads, broken images."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        broken = self.call("Runtime.evaluate", returnByValue=True, expression=(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => 'broken image: ' + (i.alt || i.src.slice(0, 60)))"))["result"]["value"]
        problems = list(broken)
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append("console error: " + " ".join(str(a.get("value")) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                problems.append("exception: " + p["exceptionDetails"].get("text", ""))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                problems.append("log error: " + p["entry"].get("text", ""))
        return problems

    def screenshot(self, path: Path) -> Path:
        height = self.call("Runtime.evaluate", returnByValue=True,
                           expression="document.documentElement.scrollHeight")["result"]["value"]
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(int(height), 16000),
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    b = Browser(chromium, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_the_checker_catches_console_errors_and_broken_images(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<img alt="nothing" src="data:image/svg+xml;base64,AAAA"><script>console.error("boom")</script>')
    problems = browser.load(bad.as_uri())
    assert "broken image: nothing" in problems
    assert any("boom" in p for p in problems)


def test_a_copied_report_opens_without_errors_and_every_figure_shows(browser, tmp_path):
    run = replay.make_run(tmp_path / "made" / "nano-run", per_category=2, seed=5)
    render(run)
    copied = tmp_path / "laptop" / "nano-run"
    shutil.copytree(run, copied)
    shutil.rmtree(tmp_path / "made")  # the copy must stand alone
    assert browser.load((copied / "report.html").as_uri()) == []
    assert browser.load((copied / "queries-1.html").as_uri()) == []  # the per-query page, CSP and all
    rows = browser.call("Runtime.evaluate", returnByValue=True,
                        expression="document.querySelectorAll('table.queries tr[id]').length")["result"]["value"]
    assert rows == 10
    assert browser.load((copied / "report.html").as_uri()) == []
    n_images = browser.call("Runtime.evaluate", returnByValue=True,
                            expression="document.images.length")["result"]["value"]
    assert n_images == len(figures.ALL) - 3  # every figure but the sweeps' and the pair's
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    from orchestrator.report import index

    index.build(copied.parent)
    assert browser.load((copied.parent / "index.html").as_uri()) == []
    keep = os.environ.get("EDGEBENCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
