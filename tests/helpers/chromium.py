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
