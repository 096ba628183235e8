"""A node that answers badly ends `postmortem ingest` in one sentence with the fix and the
right exit code, with the URL's key redacted: a real local HTTP server answers each status or
an HTML page, and the real CLI runs against it (in process, and as a subprocess for Ctrl-C)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from postmortem.cli import _register, cli
from postmortem.errors import INTERRUPTED_MESSAGE

KEY = "0123456789abcdef0123456789abcdef"
POOL = "0x" + "11" * 20
POSTMORTEM = Path(sys.executable).with_name("postmortem")


class _Handler(http.server.BaseHTTPRequestHandler):
    """The first path segment says how to answer: a status code, `html`, `slow`, `json401`."""

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        mode = self.path.strip("/").split("/")[0]
        self.server.hits.append(mode)
        if mode == "slow":
            self.server.slow_started.set()
            self.server.release.wait(30)
            return self._send(200, "application/json", b'{"jsonrpc":"2.0","id":1,"result":"0x1"}')
        if mode == "html":
            page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>Our product</body></html>"
            return self._send(200, "text/html; charset=utf-8", page)
        if mode == "json401":
            body = json.dumps({"jsonrpc": "2.0", "id": None,
                               "error": {"code": -32002, "message": "rejected due to project ID settings"}})
            return self._send(401, "application/json", body.encode())
        status = int(mode)
        body = b"<html><body><h1>503 Service Unavailable</h1></body></html>" if status >= 500 else b"nope"
        self._send(status, "text/html" if status >= 500 else "text/plain", body)

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client went away (Ctrl-C test)


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.hits = []
    srv.slow_started = threading.Event()
    srv.release = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def url(server, mode: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{mode}/v3/{KEY}"


def ingest_args(rpc_url: str, warehouse: Path, *extra: str) -> list[str]:
    return ["ingest", "--rpc-url", rpc_url, "--pool", POOL, "--from-block", "1", "--to-block", "2",
            "--warehouse", str(warehouse), *extra]


CASES = [
    ("401", 2, ["HTTP 401", "refused the key", "check the key in --rpc-url"]),
    ("403", 2, ["HTTP 403", "refused the key", "check the key in --rpc-url"]),
    ("json401", 2, ["HTTP 401", "rejected due to project ID settings", "check the key in --rpc-url"]),
    ("404", 2, ["HTTP 404", "nothing serves JSON-RPC at that path", "check the path in --rpc-url"]),
    ("405", 2, ["HTTP 405", "not a JSON-RPC endpoint", "check --rpc-url"]),
    ("html", 2, ["an HTML page (HTTP 200", "not at a node's JSON-RPC endpoint"]),
    ("503", 1, ["HTTP 503", "after 2 attempts", "try again later"]),
]


@pytest.mark.parametrize("mode, code, fragments", CASES, ids=[c[0] for c in CASES])
def test_http_answer_is_one_sentence_with_the_fix(server, tmp_path, mode, code, fragments):
    _register()
    before = len(server.hits)
    result = CliRunner().invoke(cli, ingest_args(url(server, mode), tmp_path / "wh", "--retries", "1"))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert KEY not in result.output and f"/{mode}/v3/***" in errors[0]
    # a wrong URL or key is not retried; a 5xx is, --retries times
    assert len(server.hits) - before == (2 if code == 1 else 1)
    assert not any((tmp_path / "wh").rglob("*.parquet"))


def test_timeout_message_names_the_timeout_option(server, tmp_path):
    _register()
    start = time.monotonic()
    result = CliRunner().invoke(cli, ingest_args(url(server, "slow"), tmp_path / "wh", "--timeout", "0.3",
                                                 "--retries", "0"))
    assert time.monotonic() - start < 10
    assert result.exit_code == 1, (result.output, result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "no answer within 0.3 s" in errors[0] and "raise --timeout (now 0.3 s)" in errors[0], errors[0]
    assert KEY not in result.output
    help_text = CliRunner().invoke(cli, ["ingest", "--help"]).output
    assert "--timeout SECONDS" in help_text and "--retries" in help_text


def test_the_real_command_prints_one_line_on_stderr(server, tmp_path):
    env = {**os.environ, "POSTMORTEM_RPC_URL": url(server, "401"), "POSTMORTEM_WAREHOUSE": str(tmp_path / "wh")}
    out = subprocess.run([str(POSTMORTEM), "ingest", "--pool", POOL, "--from-block", "1", "--to-block", "2"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "check the key in --rpc-url" in errors[0], out.stderr
    assert "Traceback" not in out.stderr and KEY not in out.stderr + out.stdout


def test_ctrl_c_exits_130_and_says_how_to_resume(server, tmp_path):
    server.slow_started.clear()
    # As in a terminal: a suite started in the background (`make test &`) has SIGINT ignored, and a
    # child inherits that across exec; Ctrl-C's own disposition is the default one.
    proc = subprocess.Popen([str(POSTMORTEM), *ingest_args(url(server, "slow"), tmp_path / "wh")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert server.slow_started.wait(30), "the command never reached the node"
        time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert time.monotonic() - start < 10  # does not wait out the 30 s timeout
    assert stderr.strip().splitlines()[-1] == INTERRUPTED_MESSAGE, stderr
    assert "Traceback" not in stderr and KEY not in stderr + stdout
    assert not any((tmp_path / "wh").rglob("*.parquet"))
