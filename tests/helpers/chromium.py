"""Debian's headless Chromium for the HTML report tests: where it is, its flags, one run of it,
and the console messages it logged. Where the screenshots go (tests/artifacts/)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"  # tests/artifacts

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    """Chromium logs every console message (errors, CSP violations, uncaught exceptions) as CONSOLE."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def phone_width(report: Path, tmp_path: Path) -> tuple[int, int]:
    """(scrollWidth, clientWidth) of ``report`` laid out in a 390 px frame."""
    wrapper = report.parent / f"phone-check-{report.stem}.html"
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
    return int(m.group(1)), int(m.group(2))
