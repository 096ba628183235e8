"""The HTML report in a real headless Chromium: it renders, logs nothing to the console, fits a
phone's width without sideways scrolling of the page, shows every borrower's amount owed on a
390 px screen, keeps every chart and its labels on screen and clear of the marks, and leaves
full-page screenshots at 1280 and 390 px in tests/artifacts/.

Layout is measured for real, over the DevTools protocol (``Page`` below): the boxes Chromium laid
out, not the CSS we hoped for. Skipped when Debian's ``chromium`` is not installed at
/usr/bin/chromium (the Makefile set-up installs it); the tests never install anything themselves.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from postmortem.reports.api import write_report

from helpers.chromium import ARTIFACTS, CHROMIUM, FLAGS, chromium, console_lines, phone_width
from helpers.synthetic import INCIDENT, build_warehouse
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")


# --- a small DevTools-protocol client: real layout measurements and full-page screenshots ---------


class Page:
    """One headless Chromium tab driven over the DevTools protocol (stdlib + ``websockets``)."""

    def __init__(self, profile: Path):
        self.profile = profile
        self.next_id = 0
        self.closing = contextlib.ExitStack()

    def __enter__(self) -> "Page":
        from websockets.sync.client import connect

        self.profile.mkdir(parents=True, exist_ok=True)
        active = self.profile / "DevToolsActivePort"
        active.unlink(missing_ok=True)  # a stale one from an earlier run would point at a dead port
        self.log = open(self.profile / "chromium.log", "w")  # noqa: SIM115  (closed in __exit__)
        self.proc = subprocess.Popen([str(CHROMIUM), *FLAGS, "--remote-debugging-port=0",
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        try:
            deadline = time.monotonic() + 60
            while not (active.exists() and len(active.read_text().split()) >= 2):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port: "
                                       + (self.profile / "chromium.log").read_text()[-2000:])
                time.sleep(0.1)
            port = int(active.read_text().split()[0])
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
            page = next(t for t in targets if t["type"] == "page")
            self.ws = self.closing.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
            self.send("Page.enable")
        except BaseException:
            self.__exit__(None, None, None)  # never leave a browser behind
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.closing.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def send(self, method: str, wait_event: str | None = None, **params) -> dict:
        """Send a command; return its result (after ``wait_event`` arrives too, when given)."""
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        result, seen = None, wait_event is None
        while result is None or not seen:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result = msg["result"]
            elif wait_event and msg.get("method") == wait_event:
                seen = True
        return result

    def open(self, url: str, width: int, height: int = 900) -> None:
        """Load ``url`` in a viewport ``width`` CSS pixels wide, as a phone does when ``width`` < 500."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 500)
        self.send("Page.navigate", wait_event="Page.loadEventFired", url=url)

    def evaluate(self, expression: str):
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        return r["result"].get("value")

    def screenshot(self, path: Path, selector: str | None = None) -> None:
        """The whole page (or one element), beyond the viewport, as a PNG."""
        if selector:
            box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                                ".getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()")
        else:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            box = [0, 0, size["width"], size["height"]]
        x, y, w, h = box
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": x, "y": y, "width": w, "height": min(h, 16_000), "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("reports-chromium")
    syn = build_warehouse(base / "warehouse")
    return write_report(syn.root, INCIDENT, base / "out", formats=("html",))["html"]


def test_console_detection_works(tmp_path):
    """The check below would catch a script error or a blocked external load."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
                   '<img src="https://example.invalid/x.png"><p>hi</p>')
    out = chromium(bad.as_uri(), tmp_path / "profile", f"--screenshot={tmp_path / 'bad.png'}", "--window-size=400,300")
    assert console_lines(out.stderr), out.stderr[-2000:]


@pytest.mark.parametrize("name, size", [("desktop", "1280,2000"), ("phone", "390,2000")])
def test_renders_without_console_messages(report, tmp_path, name, size):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = tmp_path / f"report-{name}.png"
    out = chromium(report.as_uri(), tmp_path / "profile", f"--screenshot={shot}", f"--window-size={size}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert console_lines(out.stderr) == []
    assert shot.exists() and shot.stat().st_size > 20_000  # a page with content, not a blank one
    shutil.copyfile(shot, ARTIFACTS / shot.name)


def test_the_dom_is_the_report(report, tmp_path):
    out = chromium(report.as_uri(), tmp_path / "profile", "--dump-dom")
    assert out.returncode == 0 and console_lines(out.stderr) == []
    dom = out.stdout
    assert 'id="headline"' in dom and "Wrongly eligible liquidations" in dom
    assert dom.count("<svg") >= 3 and 'id="reimbursement"' in dom


def test_the_page_fits_a_phone(report, tmp_path):
    """At 390 px the page itself never scrolls sideways; wide tables and charts scroll in their own box."""
    scroll, client = phone_width(report, tmp_path)
    assert 300 < client <= 390 and scroll <= client


def test_an_address_in_the_headline_wraps_on_a_phone(report, tmp_path):
    """The headline names addresses (the mispriced asset's price source): 42 characters without a
    break must wrap at 390 px, not push the page sideways."""
    html = report.read_text()
    marker = '<div class="lede" id="headline">'
    assert marker in html
    address = "0x" + "cbf9c5aa1229c66245521169e527708a1c2d3e4f"
    wide = report.parent / "address-in-headline.html"
    wide.write_text(html.replace(marker, marker + f"<p>The oracle priced it through {address}: a long name.</p>", 1))
    scroll, client = phone_width(wide, tmp_path)
    assert 300 < client <= 390 and scroll <= client




# Where each borrower's amount owed is on screen: the reimbursement table's "owed" column, found by
# its header, each body cell's box, and whether the cell is what the reader actually sees at its
# centre (not clipped by a scroll box, not under something else).
OWED_JS = r"""(() => {
  const W = document.documentElement.clientWidth;
  const table = document.querySelector('#reimbursement table');
  if (!table) return {error: 'no reimbursement table'};
  const heads = [...table.querySelectorAll('thead th')];
  const col = heads.findIndex(th => /^owed\b/i.test(th.textContent.trim()));
  if (col < 0) return {error: 'no "owed" column in ' + heads.map(h => h.textContent).join(' | ')};
  const cells = [];
  for (const tr of table.querySelectorAll('tbody tr')) {
    const td = tr.children[col];
    const top = td.getBoundingClientRect().top + scrollY;
    window.scrollTo(0, Math.max(0, top - innerHeight / 2));  // vertical only: sideways is what we test
    const r = td.getBoundingClientRect();
    const hit = document.elementFromPoint(Math.min(Math.max(r.left + r.width / 2, 0), W - 1), r.top + r.height / 2);
    cells.push({text: td.textContent.trim(), left: r.left, right: r.right,
                seen: r.width > 0 && r.left >= 0 && r.right <= W + 0.5 && !!hit && td.contains(hit)});
  }
  window.scrollTo(0, 0);
  return {width: W, scrollWidth: document.documentElement.scrollWidth, cells};
})()"""

# Every chart shown at this width: on screen, text big enough to read, no text cut by the chart's
# edge, no label over another label or over a data mark (``.mark``: points, ticks, bars).
CHARTS_JS = r"""(() => {
  const W = document.documentElement.clientWidth, charts = [], problems = [];
  const hits = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 &&
                         Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
  for (const svg of document.querySelectorAll('#charts svg.chart')) {
    const s = svg.getBoundingClientRect();
    if (s.width === 0) continue;  // the copy drawn for the other screen width, hidden by CSS
    const id = svg.querySelector('title').id;
    const scale = s.width / svg.viewBox.baseVal.width;
    const marks = [...svg.querySelectorAll('.mark')].map(m => [m, m.getBoundingClientRect()]);
    const texts = [...svg.querySelectorAll('text')].map(t => [t, t.getBoundingClientRect()]);
    charts.push({id, width: s.width, marks: marks.length, texts: texts.length});
    if (s.left < -0.5 || s.right > W + 0.5) problems.push(`${id}: spans ${s.left}..${s.right} in a ${W} px viewport`);
    texts.forEach(([t, r], i) => {
      const label = `${id}: "${t.textContent}"`;
      const px = parseFloat(t.getAttribute('font-size')) * scale;
      if (px < 9.5) problems.push(`${label} is ${px.toFixed(1)} px on screen`);
      if (r.left < s.left - 0.5 || r.right > s.right + 0.5 || r.top < s.top - 0.5 || r.bottom > s.bottom + 0.5)
        problems.push(`${label} is cut by the chart's edge`);
      for (const [m, q] of marks) if (hits(r, q)) problems.push(`${label} covers the mark "${m.textContent}"`);
      for (const [u, q] of texts.slice(i + 1)) if (hits(r, q)) problems.push(`${label} overlaps "${u.textContent}"`);
    });
  }
  return {width: W, charts, problems};
})()"""

WIDTHS = [("desktop", 1280), ("tablet", 700), ("phone", 390)]


@pytest.fixture(scope="module")
def pages(report, tmp_path_factory):
    """The report laid out at each width: its measurements, and full-page screenshots in tests/artifacts/."""
    pytest.importorskip("websockets.sync.client")
    ARTIFACTS.mkdir(exist_ok=True)
    out = {}
    for name, width in WIDTHS:
        with Page(tmp_path_factory.mktemp(f"cdp-{name}")) as page:
            page.open(report.as_uri(), width)
            out[name] = {"owed": page.evaluate(OWED_JS), "charts": page.evaluate(CHARTS_JS)}
            page.screenshot(ARTIFACTS / f"report-full-{width}.png")
            for section in ("charts", "reimbursement"):
                page.screenshot(ARTIFACTS / f"report-{section}-{width}.png", f"#{section}")
    return out


@pytest.mark.parametrize("name", [n for n, _ in WIDTHS])
def test_every_amount_owed_is_on_screen(pages, name):
    """Each borrower's amount owed is visible without scrolling sideways, at 1280 px and at 390 px."""
    owed = pages[name]["owed"]
    assert "error" not in owed, owed
    cells = owed["cells"]
    assert cells, "the reimbursement table has no rows"
    assert all(re.search(r"\d", c["text"]) for c in cells), cells
    hidden = [c for c in cells if not c["seen"]]
    assert not hidden, f"{len(hidden)} of {len(cells)} owed amounts are off a {owed['width']} px screen: {hidden[:3]}"
    assert owed["scrollWidth"] <= owed["width"]


@pytest.mark.parametrize("name", [n for n, _ in WIDTHS])
def test_charts_fit_and_their_labels_stay_clear(pages, name):
    c = pages[name]["charts"]
    assert len(c["charts"]) >= 3 and all(ch["marks"] > 0 and ch["texts"] > 5 for ch in c["charts"]), c["charts"]
    assert c["problems"] == [], "\n".join(c["problems"][:20])
