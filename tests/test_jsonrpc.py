"""The one JSON-RPC client (postmortem.jsonrpc), against a real anvil node and a real HTTP server."""

from __future__ import annotations

import ast
import http.server
import threading
from pathlib import Path

import pytest
import requests

from postmortem import jsonrpc
from postmortem.devchain.node import free_port, rpc_ready
from postmortem.errors import PostmortemError

REPO = Path(__file__).resolve().parent.parent


def test_call_reads_the_result(node):
    assert jsonrpc.call(node.url, "eth_chainId") == "0x7a69"
    assert int(jsonrpc.call(node.url, "eth_blockNumber", []), 16) >= 0


def test_an_error_answer_is_one_sentence(node):
    with pytest.raises(jsonrpc.JsonRpcRefused) as info:
        jsonrpc.call(node.url, "eth_noSuchMethod", [])
    assert isinstance(info.value, PostmortemError)
    assert str(info.value).startswith("node refused eth_noSuchMethod: ")
    assert isinstance(info.value.error, dict) and "code" in info.value.error


def test_batch_answers_in_the_order_asked(node):
    answers = jsonrpc.call_batch(node.url, [("eth_chainId", []), ("eth_noSuchMethod", []), ("eth_blockNumber", [])])
    assert answers[0]["result"] == "0x7a69"
    assert "error" in answers[1] and "result" not in answers[1]
    assert answers[2]["result"].startswith("0x")
    assert jsonrpc.call_batch(node.url, []) == []


def test_a_session_is_reused(node):
    with requests.Session() as session:
        assert jsonrpc.call(node.url, "eth_chainId", session=session) == "0x7a69"
        assert jsonrpc.call(node.url, "eth_chainId", session=session) == "0x7a69"


class _NotJson(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_body_that_is_not_json_rpc_is_named():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotJson)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(jsonrpc.JsonRpcBadAnswer, match="not JSON"):
            jsonrpc.call(url, "eth_chainId")
        assert not rpc_ready(url)
    finally:
        server.shutdown()
        server.server_close()


def test_ready_probe_is_false_where_nothing_listens(node):
    assert rpc_ready(node.url)
    assert not rpc_ready(f"http://127.0.0.1:{free_port()}")


def test_no_other_module_posts_json_rpc_by_hand():
    # One client: a request object is built only by postmortem.jsonrpc (the fault proxy builds
    # *answers*, as a node does, which is not a client's job).
    bad = []
    for pkg in ("postmortem", "ingest", "replay", "reports", "devchain"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            if path == REPO / "postmortem" / "jsonrpc.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Dict):
                    keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                    if {"jsonrpc", "method"} <= keys:
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
                if isinstance(node, ast.Attribute) and node.attr in ("urlopen", "HTTPConnection"):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} ({node.attr})")
    assert not bad, "JSON-RPC requests built outside postmortem.jsonrpc: " + "; ".join(bad)
