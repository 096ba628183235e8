"""A fault-injecting JSON-RPC proxy: a real HTTP server on loopback that forwards to a local
node and misbehaves the way hosted providers do, on a declarative, seeded plan.

Used by the ingest tests and the soak benchmark::

    plan = [
        {"kind": "http_429", "every": 5, "retry_after": 1},
        {"kind": "range_cap", "style": "alchemy", "max_range": 500},
        {"kind": "reset", "probability": 0.05},
    ]
    with FaultProxy(anvil.url, plan, seed=1) as proxy:
        client = RpcClient(proxy.url)
        ...
        proxy.counts()  # {"requests": ..., "http_429": ..., "range_cap": ..., ...}

The plan's rules (kinds, selectors, options, throughput, ``hosted_provider_plan``) are described
in ``devchain.fault_rules``; the providers' error texts are ``devchain.provider_errors``.

Determinism: rules are evaluated under one lock, in plan order, each with its own
``random.Random`` seeded from (seed, rule index); for a client that sends requests one at a
time the fault sequence is a function of the seed. Safety: the proxy listens on 127.0.0.1
only, forwards only to a loopback upstream, bounds request size, idle connections, sleeps
and upstream waits, and ``stop()`` wakes every sleeper.

``build_log_chain`` (``devchain.logchain``, re-exported here) seeds a local node with a contract
that emits logs of varied density, so the proxy has something realistic to forward.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
from typing import Any, Iterable, Mapping

import requests

from postmortem import jsonrpc
from postmortem.devchain.fault_rules import (
    _BATCH_KINDS,
    _CALL_KINDS,
    Fault,
    _RuleState,
    hosted_provider_plan,
)
from postmortem.devchain.logchain import EMITTER_ADDRESS, EMITTER_TOPIC, LogChain, build_log_chain
from postmortem.devchain.node import is_loopback_host
from postmortem.devchain.provider_errors import (
    RANGE_CAP_STYLES,
    RESULT_CAP_STYLES,
    range_cap_error,
    result_cap_error,
)

# The rules, the providers' texts and the log-chain builder live in their own modules and are
# re-exported here, so ``from postmortem.devchain.faultproxy import Fault, build_log_chain`` works.
__all__ = [
    "EMITTER_ADDRESS",
    "EMITTER_TOPIC",
    "Fault",
    "FaultProxy",
    "LogChain",
    "RANGE_CAP_STYLES",
    "RESULT_CAP_STYLES",
    "build_log_chain",
    "hosted_provider_plan",
    "range_cap_error",
    "result_cap_error",
]

MAX_BODY_BYTES = 32 * 1024 * 1024
IDLE_SECONDS = 10.0  # an idle keep-alive connection is closed after this


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # noqa: D401
        self.proxy._count("handler_errors")  # type: ignore[attr-defined]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    server_version = "faultproxy"
    timeout = IDLE_SECONDS

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy._track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.proxy._track(self.connection, False)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # silence per-request logging
        pass

    def do_POST(self) -> None:
        self.server.proxy._serve(self)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self.server.proxy._send(self, 405, b"JSON-RPC over POST only\n", "text/plain")  # type: ignore[attr-defined]



class FaultProxy:
    """A local HTTP server that forwards JSON-RPC to ``upstream_url`` and injects ``plan``.

    ``plan`` is a list of ``Fault``s or dicts; ``seed`` makes probabilistic rules repeatable.
    ``url`` is set by ``start()`` (a random free port on 127.0.0.1). ``counts()`` gives the
    faults injected by kind plus ``requests``, ``calls`` and ``upstream_requests``;
    ``events`` lists ``(request_number, kind)`` for every fault (last 100,000);
    ``max_in_flight`` is the largest number of requests handled at once.
    """

    def __init__(
        self,
        upstream_url: str,
        plan: Iterable[Fault | Mapping[str, Any]] = (),
        seed: int = 0,
        *,
        upstream_timeout: float = 30.0,
    ) -> None:
        parts = urllib.parse.urlsplit(upstream_url)
        if parts.scheme != "http" or not is_loopback_host(parts.hostname):
            raise ValueError(
                "faultproxy forwards only to a plain-http loopback node (like anvil on 127.0.0.1); "
                "point it at a local node"
            )
        self._upstream = urllib.parse.urlunsplit(("http", parts.netloc, parts.path or "/", parts.query, ""))
        self.upstream_timeout = float(upstream_timeout)
        self.seed = seed
        self._rules = [_RuleState(Fault.from_spec(f), seed, i) for i, f in enumerate(plan)]
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self.events: collections.deque[tuple[int, str]] = collections.deque(maxlen=100_000)
        self._request_no = 0
        self._in_flight = 0
        self.max_in_flight = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1 at a free port and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counts(self) -> dict[str, int]:
        """Faults injected by kind, plus ``requests``, ``calls``, ``upstream_requests``."""
        with self._lock:
            return dict(self._counts)

    # -- bookkeeping -------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _fired(self, request_no: int, kind: str) -> None:
        # caller holds the lock
        self._counts[kind] += 1
        self.events.append((request_no, kind))

    def _pick_request_fault(self, calls: list[dict], is_batch: bool, request_no: int) -> Fault | None:
        methods = {c.get("method") for c in calls}
        with self._lock:
            for rule in self._rules:
                f = rule.fault
                if f.kind in _CALL_KINDS:
                    continue
                if f.methods and not methods.intersection(f.methods):
                    continue
                if f.kind in _BATCH_KINDS and not (is_batch and len(calls) >= (2 if f.kind == "batch_reorder" else 1)):
                    continue
                if f.kind == "batch_limit" and len(calls) <= int(f.option("max_batch")):
                    continue
                if f.kind == "throughput":
                    cost = len(calls) if f.option("per") == "call" else 1
                    if not rule.over_rate(cost, time.monotonic()):
                        continue
                if rule.fire():
                    self._fired(request_no, f.kind)
                    return f
        return None

    def _pick_call_fault(self, call: dict, request_no: int, kinds: set[str], condition) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                f = rule.fault
                if f.kind not in kinds or (f.methods and call.get("method") not in f.methods):
                    continue
                if not condition(f):
                    continue
                if rule.fire():
                    self._fired(request_no, f.kind)
                    return f
        return None

    # -- HTTP --------------------------------------------------------------------------------

    def _send(self, h: _Handler, status: int, body: bytes, content_type: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            h.close_connection = True  # the client gave up (e.g. its timeout); nothing to do

    def _reset(self, h: _Handler) -> None:
        """Close without answering; SO_LINGER 0 makes the close a TCP RST, as a crashed LB does."""
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self, h: _Handler) -> None:
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY_BYTES:
            h.close_connection = True
            self._send(h, 413 if length > MAX_BODY_BYTES else 411, b"a Content-Length up to 32 MiB is required\n", "text/plain")
            return
        raw = h.rfile.read(length)
        with self._lock:
            self._request_no += 1
            request_no = self._request_no
            self._counts["requests"] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._answer(h, raw, request_no)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, h: _Handler, raw: bytes, request_no: int) -> None:
        try:
            payload = json.loads(raw)
        except ValueError:
            self._send(h, 400, _dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}))
            return
        is_batch = isinstance(payload, list)
        calls = payload if is_batch else [payload]
        if not calls or not all(isinstance(c, dict) for c in calls):
            self._send(h, 400, _dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}))
            return
        self._count("calls", len(calls))
        fault = self._pick_request_fault(calls, is_batch, request_no)
        kind = fault.kind if fault else None

        if kind == "reset":
            self._reset(h)
            return
        if kind in ("http_429", "throughput"):
            retry_after = fault.option("retry_after") if kind == "http_429" else None
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            if fault.option("style") == "plain":
                self._send(h, 429, b"Too Many Requests\n", "text/plain", headers)
            else:
                err = {
                    "code": 429,
                    "message": "Your app has exceeded its compute units per second capacity. If you have "
                    "retries enabled, you can safely ignore this message...",
                }
                self._send(h, 429, _dumps(_errors_for(calls, is_batch, err)), headers=headers)
            return
        if kind == "infura_rate":
            headers = {} if fault.option("retry_after") is None else {"Retry-After": str(fault.option("retry_after"))}
            err = {
                "code": -32005,
                "message": "project ID request rate exceeded",
                "data": {"rate": {"allowed_rps": 1, "backoff_seconds": fault.option("backoff_seconds"), "current_rps": 1.1}},
            }
            self._send(h, 429, _dumps(_errors_for(calls, is_batch, err)), headers=headers)
            return
        if kind == "batch_limit":
            # Like geth/Erigon: one error object with a null id for the whole batch.
            n = int(fault.option("max_batch"))
            message = "batch too large" if fault.option("style") == "geth" else f"batch limit {n} exceeded"
            self._send(h, 200, _dumps(_error(None, -32600, message)))
            return
        if kind == "http_error":
            headers = {} if fault.option("retry_after") is None else {"Retry-After": str(fault.option("retry_after"))}
            self._send(h, int(fault.option("status")), str(fault.option("body")).encode(), "text/html", headers)
            return
        if kind == "malformed":
            self._send(h, 200, str(fault.option("body")).encode())
            return
        if kind == "slow":
            if self._stopping.wait(float(fault.option("delay"))):
                self._reset(h)
                return

        try:
            answers, status = self._answers(calls, is_batch, request_no)
        except (OSError, requests.RequestException, http.client.HTTPException, ValueError) as exc:
            self._count("upstream_errors")
            self._send(h, 502, f"upstream node failed: {type(exc).__name__}\n".encode(), "text/plain")
            return

        rng = random.Random(f"faultproxy:{self.seed}:batch:{request_no}")
        if kind == "batch_missing_id":
            answers.pop(rng.randrange(len(answers)))
        elif kind == "batch_bad_item":
            i = rng.randrange(len(answers))
            answers[i] = {"jsonrpc": "2.0", "id": answers[i].get("id")}
        elif kind == "batch_reorder":
            original = list(answers)
            rng.shuffle(answers)
            if answers == original:
                answers.reverse()
        body = _dumps(answers if is_batch else answers[0])

        if kind == "truncate":
            keep = max(1, min(len(body) - 1, int(len(body) * float(fault.option("keep")))))
            try:
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body[:keep])
                h.wfile.flush()
            except OSError:
                pass
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(h, status, body)

    # -- forwarding --------------------------------------------------------------------------

    def _upstream_call(self, payload: Any) -> Any:
        # The project's one JSON-RPC transport (postmortem.jsonrpc), a fresh connection per
        # request as before; the payload goes on as the client sent it, batch or not.
        response = jsonrpc.post(self._upstream, _dumps(payload), timeout=self.upstream_timeout)
        self._count("upstream_requests")
        return json.loads(response.content)

    def _block_number(self, tag: Any, head: list[int]) -> int | None:
        if tag is None or tag in ("latest", "pending", "safe", "finalized"):
            if not head:
                head.append(int(self._upstream_call(jsonrpc.envelope("eth_blockNumber", [], id=0))["result"], 16))
            return head[0]
        if tag == "earliest":
            return 0
        if isinstance(tag, str) and tag.startswith("0x"):
            return int(tag, 16)
        if isinstance(tag, int):
            return tag
        return None

    def _log_range(self, call: dict, head: list[int]) -> tuple[int, int] | None:
        if call.get("method") != "eth_getLogs":
            return None
        params = call.get("params") or [{}]
        flt = params[0] if params and isinstance(params[0], dict) else {}
        if "blockHash" in flt:
            return None
        lo, hi = self._block_number(flt.get("fromBlock"), head), self._block_number(flt.get("toBlock"), head)
        return (lo, hi) if lo is not None and hi is not None and hi >= lo else None

    def _answers(self, calls: list[dict], is_batch: bool, request_no: int) -> tuple[list[dict], int]:
        """Answer every call: injected call-level errors, the rest from the upstream node."""
        answers: list[dict | None] = [None] * len(calls)
        status = 200
        head: list[int] = []
        ranges = [self._log_range(c, head) for c in calls]
        forward = []
        for i, call in enumerate(calls):
            r = ranges[i]
            fault = self._pick_call_fault(
                call, request_no, {"range_cap", "rpc_error", "block_tags"},
                lambda f, r=r, call=call: f.kind == "rpc_error"
                or (f.kind == "block_tags" and bool(_tags_named(call) & set(f.option("tags"))))
                or (f.kind == "range_cap" and r is not None and r[1] - r[0] + 1 > int(f.option("max_range"))),
            )
            if fault is None:
                forward.append(i)
                continue
            if fault.kind == "block_tags" and fault.option("style") == "null":
                answers[i] = {"jsonrpc": "2.0", "id": call.get("id"), "result": None}
                continue
            if fault.kind == "block_tags":
                http_status, code, message, data = 200, fault.option("code"), fault.option("message"), None
            elif fault.kind == "range_cap":
                http_status, code, message, data = range_cap_error(fault.option("style"), fault.option("max_range"), *r)
            else:
                http_status, code, message, data = (
                    int(fault.option("http_status")), fault.option("code"), fault.option("message"), fault.option("data"))
            answers[i] = _error(call.get("id"), code, message, data)
            if not is_batch:
                status = http_status
        if forward:
            sub = [calls[i] for i in forward]
            got = self._upstream_call(sub if is_batch else sub[0])
            got = got if isinstance(got, list) else [got]
            by_id = {json.dumps(a.get("id")): a for a in got if isinstance(a, dict)}
            for pos, i in enumerate(forward):
                key = json.dumps(calls[i].get("id"))
                answer = by_id.get(key) or (got[pos] if pos < len(got) else None)
                answers[i] = answer if isinstance(answer, dict) else _error(calls[i].get("id"), -32603, "upstream gave no answer")
            for i in forward:
                logs = answers[i].get("result") if ranges[i] is not None else None
                if not isinstance(logs, list):
                    continue
                width = ranges[i][1] - ranges[i][0] + 1
                fault = self._pick_call_fault(
                    calls[i], request_no, {"result_cap", "provider_logs"},
                    lambda f, n=len(logs): n > int(f.option("max_results"))
                    and (f.kind == "result_cap" or width > int(f.option("max_range"))),
                )
                if fault is None:
                    continue
                n = int(fault.option("max_results"))
                lo = ranges[i][0]
                # The (n+1)-th log's block is the first block that cannot fit: everything
                # before it holds at most n logs. If it is the first block, no range fits.
                first_over = sorted(int(entry["blockNumber"], 16) for entry in logs)[n]
                suggested_to = max(lo, first_over - 1)
                http_status, code, message, data = result_cap_error(fault.option("style"), n, lo, suggested_to)
                answers[i] = _error(calls[i].get("id"), code, message, data)
                if not is_batch:
                    status = http_status
        return [a for a in answers if a is not None], status


def _tags_named(call: dict) -> set[str]:
    """The named block tags ("latest", "finalized", ...) among a call's parameters."""
    params = call.get("params")
    return {p for p in params if isinstance(p, str) and not p.startswith("0x")} if isinstance(params, list) else set()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(call_id: Any, code: int, message: str, data: Any = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": call_id, "error": err}


def _errors_for(calls: list[dict], is_batch: bool, err: dict) -> Any:
    answers = [{"jsonrpc": "2.0", "id": c.get("id"), "error": err} for c in calls]
    return answers if is_batch else answers[0]
