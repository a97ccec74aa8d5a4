"""The generated report in headless Chromium: no console errors, plots render, tables sort, text stays text.

Chromium is driven over the DevTools protocol on `--remote-debugging-pipe` (NUL-separated JSON on
file descriptors 3 and 4), so the test needs nothing beyond the standard library and Debian's
`chromium` package.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_fixtures import (
    HOSTILE,
    serve_rows,
    synthetic_rows,
    with_text_encoder,
    write_fleet,
    write_history,
    write_synthetic_run,
)

from sdbench.report.site import write_site
from sdbench.store import read_results, write_run

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT_S = 60.0


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, profile_dir: Path):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Move the child's ends above 9 so the redirections cannot clobber each other (bash, not
        # dash: dash only knows single-digit descriptors).
        to_browser_read, from_browser_write = (
            _high_fd(to_browser_read),
            _high_fd(from_browser_write),
        )
        self.log_path = profile_dir / "chromium.log"
        # The browser reads commands on fd 3 and writes replies on fd 4.
        command = f'exec "$0" "$@" 3<&{to_browser_read} 4>&{from_browser_write} {to_browser_read}<&- {from_browser_write}>&-'
        self.process = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                command,
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile_dir}",
                "about:blank",
            ],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),  # noqa: SIM115 - the browser owns it until it exits
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._inbox: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._inbox.put(json.loads(message))
        self._inbox.put(None)

    def _pump(self, deadline: float) -> None:
        message = self._inbox.get(timeout=max(deadline - time.monotonic(), 0.01))
        if message is None:
            log = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"chromium closed the debugging pipe; its log ends:\n{log}")
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self.events.append(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while self._next_id not in self._replies:
            self._pump(deadline)
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_for(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for event in self.events:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            self._pump(deadline)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, queue.Empty):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


class Page:
    """One tab with the report loaded; the browser may hold other tabs."""

    def __init__(self, browser: DevTools, url: str):
        self.browser = browser
        self.target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send(
            "Target.attachToTarget", {"targetId": self.target, "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1360, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": url})
        browser.wait_for("Page.loadEventFired", self.session)

    @property
    def events(self) -> list[dict]:
        """What this tab reported (console, exceptions, dialogs), not the browser's other tabs."""
        return [event for event in self.browser.events if event.get("sessionId") == self.session]

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre, after scrolling it into view."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def screenshot(self, path: Path) -> None:
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(data["data"]))


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run browser tests"
        )


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[DevTools]:
    """One headless Chromium for the module: each report opens in a tab of its own."""
    _require_chromium()
    opened = DevTools(tmp_path_factory.mktemp("profile"))
    yield opened
    opened.close()


@contextlib.contextmanager
def _opened_report(results: Path, tmp_path_factory, name: str, browser: DevTools) -> Iterator[Page]:
    """The report of the runs in `results`, written and opened in a new tab of `browser`."""
    index = write_site(read_results([results]), tmp_path_factory.mktemp(f"{name}-site"))
    page = Page(browser, index.resolve().as_uri())
    try:
        yield page
    finally:
        browser.send("Target.closeTarget", {"targetId": page.target})


@pytest.fixture(scope="module")
def page(tmp_path_factory, browser):
    results = tmp_path_factory.mktemp("results")
    write_history(results)
    write_run(with_text_encoder(synthetic_rows("answers")), results / "answers.parquet")
    write_synthetic_run(results, "hostile", suite=HOSTILE, devices=("cuda:0",))
    with _opened_report(results, tmp_path_factory, "report", browser) as opened:
        yield opened


def _is_error(event: dict) -> bool:
    method, params = event["method"], event.get("params", {})
    if method in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening"):
        return True
    if method == "Runtime.consoleAPICalled":
        return params.get("type") in ("error", "assert")
    return method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error"


def _errors(events: list[dict]) -> list[dict]:
    return [event for event in events if _is_error(event)]


def test_no_console_errors_or_dialogs(page):
    page.evaluate("document.readyState")
    assert _errors(page.events) == []


def test_every_plot_renders(page):
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('figure.plot')).map(f => {"
        " const s = f.querySelector('svg'); if (!s) return [f.id, 0, 0];"
        " const r = s.getBoundingClientRect(); return [f.id, r.width, r.height]; })"
    )
    assert len(sizes) == 8
    for anchor, width, height in sizes:
        assert width > 300 and height > 150, anchor


def test_tables_present_and_sortable(page, tmp_path):
    assert page.evaluate("document.querySelectorAll('table.sortable').length") >= 6
    table = "#matrix-sd15-unet table"
    column = page.evaluate(
        f"Array.from(document.querySelectorAll('{table} thead th')).findIndex(t => t.textContent.startsWith('latency'))"
    )
    assert column > 0
    read = (
        f"Array.from(document.querySelectorAll('{table} tbody tr'))"
        f".map(r => r.cells[{column}].getAttribute('data-sort')).filter(v => v !== null).map(Number)"
    )
    before = page.evaluate(read)
    header = f"{table} thead th:nth-child({column + 1})"
    page.click(header)
    ascending = page.evaluate(read)
    assert ascending == sorted(before) and ascending != before
    assert (
        page.evaluate(f"document.querySelector('{header}').getAttribute('aria-sort')")
        == "ascending"
    )
    page.click(header)
    assert page.evaluate(read) == sorted(before, reverse=True)
    page.screenshot(tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 50_000


def test_the_answers_block_is_the_first_section(page):
    first = page.evaluate("document.querySelector('main section').id")
    assert first == "answers"
    questions = page.evaluate(
        "Array.from(document.querySelectorAll('#answers .answer h3')).map(h => h.textContent)"
    )
    assert any("Do I need a GPU?" in q for q in questions)
    assert page.evaluate("document.querySelectorAll('details.fold[open]').length") == 0


def test_no_horizontal_overflow_on_a_420_px_phone(page):
    page.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 420, "height": 900, "deviceScaleFactor": 2, "mobile": True},
    )
    try:
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= 420 and widths[1] <= 420, widths
        # Plot text stays legible: each SVG keeps at least 560 px, scrolling inside its figure.
        plot_widths = page.evaluate(
            "Array.from(document.querySelectorAll('figure.plot svg'))"
            ".map(s => s.getBoundingClientRect().width)"
        )
        assert plot_widths and min(plot_widths) >= 560
        # Every wide table scrolls inside its own box.
        escaped = page.evaluate(
            "Array.from(document.querySelectorAll('table')).filter(t => "
            "!t.closest('.table-scroll')).length"
        )
        assert escaped == 0
    finally:
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1360, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )


def test_hostile_suite_name_stays_text(page):
    assert HOSTILE in page.evaluate("document.title")
    assert HOSTILE in page.evaluate("document.querySelector('h1').textContent")
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert not any(e["method"] == "Page.javascriptDialogOpening" for e in page.events)


def test_screenshot_saved(page, tmp_path):
    path = tmp_path / "report-full.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("SDBENCH_SCREENSHOT")
    if keep:  # lets `make` or a person keep the picture for the README
        shutil.copy(path, keep)


@pytest.fixture(scope="module")
def serving_page(tmp_path_factory, browser):
    """A report of serve rows beside an ordinary run: the Serving section and its capacity table."""
    results = tmp_path_factory.mktemp("serve-results")
    write_synthetic_run(results, "plain", devices=("cuda:0",))
    write_run(serve_rows(), results / "serve.parquet")
    with _opened_report(results, tmp_path_factory, "serve", browser) as opened:
        yield opened


def test_the_serving_section_draws_latency_throughput_and_batch_mix(serving_page):
    assert _errors(serving_page.events) == []
    sizes = serving_page.evaluate(
        "Array.from(document.querySelectorAll('#serving figure.plot')).map(f => {"
        " const r = f.querySelector('svg').getBoundingClientRect(); return [f.id, r.width, r.height]; })"
    )
    assert [anchor for anchor, _, _ in sizes] == [
        "plot-serve-latency", "plot-serve-throughput", "plot-serve-batches"
    ]  # fmt: skip
    for anchor, width, height in sizes:
        assert width > 300 and height > 150, anchor
    latency_text = serving_page.evaluate(
        "document.querySelector('#plot-serve-latency svg').textContent"
    )
    assert "SLO p99 2 s" in latency_text and "queue unbounded" in latency_text


def test_the_serving_section_lists_serve_runs_and_the_gpus_a_service_needs(serving_page):
    runs = serving_page.evaluate(
        "Array.from(document.querySelectorAll('#serve-runs tbody tr')).map(r => r.textContent)"
    )
    assert len(runs) == 5 and any("closed loop, 4 clients" in r for r in runs)
    title = serving_page.evaluate(
        "document.querySelector('#serving [id^=capacity-] h3').textContent"
    )
    assert "requests/s within p99 2 s" in title
    gpus = serving_page.evaluate(
        "document.querySelectorAll('#serving [id^=capacity-] tbody tr').length"
    )
    assert 1 <= gpus <= 8


@pytest.fixture(scope="module")
def fleet_page(tmp_path_factory, browser):
    """A report of one GPU run from each of three synthetic machines (report_fixtures.FLEET)."""
    results = tmp_path_factory.mktemp("fleet-results")
    write_fleet(results)
    with _opened_report(results, tmp_path_factory, "fleet", browser) as opened:
        yield opened


# The baseline (most ok cells, then by label: the A100) first, then the others by label.
FLEET_MACHINES = [
    "a100-sxm4-80gb·secret-beta",
    "h100-80gb-hbm3·secret-gamma",
    "rtx-4090·secret-alpha",
]


def test_a_three_machine_report_shows_the_machines_section_near_the_top(fleet_page):
    assert _errors(fleet_page.events) == []
    sections = fleet_page.evaluate(
        "Array.from(document.querySelectorAll('main section')).map(s => s.id)"
    )
    assert sections.index("machines") < sections.index("overview")
    assert fleet_page.evaluate("document.querySelector('#machines h2').textContent").startswith(
        "Machines"
    )
    listed = fleet_page.evaluate(
        "Array.from(document.querySelectorAll('#machines-table tbody tr')).map(r => r.cells[0].textContent.trim())"
    )
    assert listed == FLEET_MACHINES
    header = fleet_page.evaluate(
        "Array.from(document.querySelectorAll('#machines-shared thead th')).map(t => t.textContent.trim())"
    )
    assert header[1:] == FLEET_MACHINES  # the cell, then one column per machine
    # Fixture latencies 1.0 (4090), 0.8 (A100) and 0.5 (H100): against the A100, 0.8x and 1.6x.
    shared = fleet_page.evaluate("document.querySelector('#machines-shared tbody').textContent")
    assert "· 1.60×" in shared and "· 0.80×" in shared


def test_the_machines_bar_chart_draws_a_bar_label_per_machine(fleet_page):
    box = fleet_page.evaluate(
        "(() => { const r = document.querySelector('#plot-machines svg').getBoundingClientRect();"
        " return [r.width, r.height]; })()"
    )
    assert box[0] > 300 and box[1] > 150
    text = fleet_page.evaluate("document.querySelector('#plot-machines svg').textContent")
    for machine in FLEET_MACHINES:
        assert machine in text
