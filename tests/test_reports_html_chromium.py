"""The HTML report in a real headless Chromium: it renders, logs nothing to the console, fits a
phone's width without sideways scrolling of the page, and leaves screenshots in tests/artifacts/.

Skipped when Debian's ``chromium`` is not installed at /usr/bin/chromium (the Makefile set-up
installs it); the tests never install anything themselves.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.api import write_report

from test_reports_synthetic import INCIDENT, build_warehouse
from test_reports_synthetic import documented_schemas  # noqa: F401  (autouse fixture)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    """Chromium logs every console message (errors, CSP violations, uncaught exceptions) as CONSOLE."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


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
    wrapper = report.parent / "phone-check.html"
    wrapper.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe id="f" src="{report.name}" style="width:390px;height:844px;border:0"></iframe>'
        "<script>document.getElementById('f').addEventListener('load', function () {"
        " var d = document.getElementById('f').contentDocument.documentElement;"
        " document.body.setAttribute('data-width', d.scrollWidth + '/' + d.clientWidth); });</script>"
        "</body></html>")
    out = chromium(wrapper.as_uri(), tmp_path / "profile", "--allow-file-access-from-files", "--dump-dom")
    m = re.search(r'data-width="(\d+)/(\d+)"', out.stdout)
    assert m, out.stdout[-1000:] + out.stderr[-1000:]
    scroll, client = int(m.group(1)), int(m.group(2))
    assert 300 < client <= 390 and scroll <= client
