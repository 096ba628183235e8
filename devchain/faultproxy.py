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

A rule (a ``Fault`` or a dict with the same keys) has a ``kind``, optional selectors and
kind-specific options:

* ``every`` (fire on every n-th matching request or call; 1 = all), ``probability``
  (then fire with this chance, from the rule's own seeded generator), ``methods`` (only
  requests containing one of these methods), ``skip`` (let the first n matches through),
  ``times`` (fire at most n times).

Request-level kinds (one per HTTP request; the first rule that fires wins):

* ``http_429``: HTTP 429 with ``Retry-After: retry_after`` (if set); ``style`` "alchemy"
  (JSON-RPC 429 "compute units" body) or "plain" (text body).
* ``infura_rate``: HTTP 429, JSON-RPC -32005 "project ID request rate exceeded" with
  ``data.rate.backoff_seconds``.
* ``reset``: close the connection without answering (TCP RST).
* ``truncate``: announce the full Content-Length, send ``keep`` (fraction) of it, close.
* ``slow``: wait ``delay`` seconds, then answer normally.
* ``malformed``: HTTP 200 with ``body`` that is not valid JSON.
* ``http_error``: HTTP ``status`` (default 502) with a non-JSON ``body`` (and
  ``Retry-After: retry_after`` if set).
* ``batch_missing_id`` / ``batch_bad_item`` / ``batch_reorder``: in a batch answer, drop one
  item, replace one with an item that has neither result nor error, or shuffle the order.
* ``batch_limit``: a batch of more than ``max_batch`` calls is refused whole, as geth
  (``style`` "geth": "batch too large") or Erigon ("erigon": "batch limit N exceeded") do.

Call-level kinds (per call inside the request; the first rule that fires wins):

* ``range_cap``: an ``eth_getLogs`` over more than ``max_range`` blocks gets the provider's
  verbatim range error (``style``: infura, alchemy, quicknode, ankr, max_block_range,
  max_is_k, limited_to, larger_than; see ``RANGE_CAP_STYLES``).
* ``result_cap``: an ``eth_getLogs`` whose *real* answer (asked of the upstream) has more
  than ``max_results`` logs gets a result-count error with a correct smaller range
  (``style``: infura, alchemy, alchemy_timeout, ankr, others; see ``RESULT_CAP_STYLES``).
* ``rpc_error``: a JSON-RPC error with ``code``, ``message``, ``data`` (and
  ``http_status`` when the request is a single call), e.g. "missing trie node".
* ``provider_logs``: a hosted provider's ``eth_getLogs`` rule, Alchemy's by default: a range
  of at most ``max_range`` blocks (2,000) is always answered, whatever it holds; a wider one
  is answered when it holds at most ``max_results`` logs (10,000), and refused otherwise with
  the provider's own text and a range that fits (``style``: see ``RESULT_CAP_STYLES``).

Throughput (request-level, checked before the others):

* ``throughput``: at most ``requests_per_second`` on average (a token bucket holding one
  second's worth; ``per`` "call" meters each call inside a batch, as hosted providers do, or
  "request"); a request over it gets HTTP 429 (``style`` as ``http_429``). A batch larger
  than the bucket is let through when the bucket is full and leaves it in debt.

``hosted_provider_plan()`` gives the plan of a hosted provider: Alchemy's log rule, 25
requests/s and random 429s.

Determinism: rules are evaluated under one lock, in plan order, each with its own
``random.Random`` seeded from (seed, rule index); for a client that sends requests one at a
time the fault sequence is a function of the seed. Safety: the proxy listens on 127.0.0.1
only, forwards only to a loopback upstream, bounds request size, idle connections, sleeps
and upstream waits, and ``stop()`` wakes every sleeper.

``build_log_chain`` seeds a local node with a contract that emits logs of varied density,
so the proxy has something realistic to forward.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import ipaddress
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

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

# Options each kind accepts, with defaults.
_OPTIONS: dict[str, dict[str, Any]] = {
    "http_429": {"retry_after": None, "style": "alchemy"},
    "infura_rate": {"backoff_seconds": 1, "retry_after": None},
    "reset": {},
    "truncate": {"keep": 0.5},
    "slow": {"delay": 1.0},
    "malformed": {"body": '{"jsonrpc":"2.0","id":1,"result":"0x'},
    "http_error": {"status": 502, "body": "<html><body><h1>502 Bad Gateway</h1></body></html>", "retry_after": None},
    "batch_missing_id": {},
    "batch_bad_item": {},
    "batch_reorder": {},
    "batch_limit": {"max_batch": 100, "style": "erigon"},
    "range_cap": {"max_range": 1000, "style": "infura"},
    "result_cap": {"max_results": 10000, "style": "infura"},
    "rpc_error": {"code": -32000, "message": "injected error", "data": None, "http_status": 200},
    "provider_logs": {"max_range": 2000, "max_results": 10000, "style": "alchemy"},
    "throughput": {"requests_per_second": 25.0, "per": "call", "style": "alchemy"},
}
_CALL_KINDS = {"range_cap", "result_cap", "rpc_error", "provider_logs"}
_BATCH_KINDS = {"batch_missing_id", "batch_bad_item", "batch_reorder", "batch_limit"}
MAX_SLOW_SECONDS = 60.0
MAX_BODY_BYTES = 32 * 1024 * 1024
IDLE_SECONDS = 10.0  # an idle keep-alive connection is closed after this


@dataclass(frozen=True)
class Fault:
    """One rule of a plan. See the module docstring for kinds, selectors and options."""

    kind: str
    every: int = 1
    probability: float = 1.0
    methods: tuple[str, ...] = ()
    skip: int = 0
    times: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _OPTIONS:
            raise ValueError(f"unknown fault kind {self.kind!r}; valid kinds: {', '.join(sorted(_OPTIONS))}")
        unknown = set(self.options) - set(_OPTIONS[self.kind])
        if unknown:
            valid = ", ".join(sorted(_OPTIONS[self.kind])) or "none"
            raise ValueError(f"unknown option(s) {sorted(unknown)} for fault {self.kind!r}; valid: {valid}")
        if self.every < 1 or not 0.0 <= self.probability <= 1.0 or self.skip < 0:
            raise ValueError(f"fault {self.kind!r}: every must be >= 1, probability in [0, 1], skip >= 0")
        if self.kind == "range_cap" and self.option("style") not in RANGE_CAP_STYLES:
            raise ValueError(f"range_cap style must be one of {sorted(RANGE_CAP_STYLES)}")
        if self.kind == "throughput" and (float(self.option("requests_per_second")) <= 0
                                          or self.option("per") not in ("call", "request")):
            raise ValueError("throughput needs requests_per_second > 0 and per 'call' or 'request'")
        if self.kind in ("result_cap", "provider_logs") and self.option("style") not in RESULT_CAP_STYLES:
            raise ValueError(f"result_cap style must be one of {sorted(RESULT_CAP_STYLES)}")
        if self.kind == "slow" and not 0 <= float(self.option("delay")) <= MAX_SLOW_SECONDS:
            raise ValueError(f"slow delay must be within [0, {MAX_SLOW_SECONDS}] seconds")

    def option(self, name: str) -> Any:
        return self.options.get(name, _OPTIONS[self.kind][name])

    @classmethod
    def from_spec(cls, spec: Fault | Mapping[str, Any]) -> Fault:
        """A ``Fault`` from a dict like ``{"kind": "slow", "every": 3, "delay": 0.5}``."""
        if isinstance(spec, Fault):
            return spec
        spec = dict(spec)
        if "kind" not in spec:
            raise ValueError(f"a fault rule needs a 'kind': {spec!r}")
        methods = spec.pop("methods", ())
        methods = (methods,) if isinstance(methods, str) else tuple(methods or ())
        return cls(
            kind=spec.pop("kind"),
            every=int(spec.pop("every", 1)),
            probability=float(spec.pop("probability", 1.0)),
            methods=methods,
            skip=int(spec.pop("skip", 0)),
            times=spec.pop("times", None),
            options=spec,
        )


# --------------------------------------------------------------------------------------------
# Provider error texts (verbatim shapes from rpc-providers.md)


def _k(n: int) -> str:
    return f"{n // 1000}K" if n >= 1000 and n % 1000 == 0 else str(n)


def _range_infura(n, lo, hi):
    return 200, -32602, f"range {hi - lo + 1} exceeds limit of {n}", None


def _range_alchemy(n, lo, hi):
    return 200, -32600, (
        f"You can make eth_getLogs requests with up to a {n} block range. Based on your parameters, "
        f"this block range should work: [{hex(lo)}, {hex(lo + n - 1)}]"
    ), None


def _range_quicknode(n, lo, hi):
    return 413, -32614, f"eth_getLogs is limited to a {n:,} range", None


def _range_ankr(n, lo, hi):
    return 200, -32600, "block range is too wide", None


def _range_max_block_range(n, lo, hi):
    return 200, -32000, f"query exceeds max block range {n}", None


def _range_max_is_k(n, lo, hi):
    size = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return 200, -32000, f"eth_getLogs range is too large, max is {size} blocks", None


def _range_limited_to(n, lo, hi):
    return 200, -32000, f"eth_getLogs is limited to {n} block range", None


def _range_larger_than(n, lo, hi):
    return 200, -32000, (
        f"block range is larger than max block range, block range = {hi - lo + 1}, max block range = {n}"
    ), None


RANGE_CAP_STYLES = {
    "infura": _range_infura,
    "alchemy": _range_alchemy,
    "quicknode": _range_quicknode,
    "ankr": _range_ankr,
    "max_block_range": _range_max_block_range,
    "max_is_k": _range_max_is_k,
    "limited_to": _range_limited_to,
    "larger_than": _range_larger_than,
}


def _result_infura(n, lo, hi):
    message = f"query returned more than {n} results. Try with this block range [0x{lo:X}, 0x{hi:X}]."
    return 200, -32005, message, {"from": f"0x{lo:X}", "limit": n, "to": f"0x{hi:X}"}


def _result_alchemy(n, lo, hi):
    return 200, -32602, (
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no "
        f"limit on the response size, or you can request any block range with a cap of {_k(n)} logs in the "
        "response. Based on your parameters and the response size limit, this block range should work: "
        f"[{hex(lo)}, {hex(hi)}]"
    ), None


def _result_alchemy_timeout(n, lo, hi):
    return 200, -32000, (
        "Query timeout exceeded. Consider reducing your block range. Based on your parameters and the "
        f"response size limit, this block range should work: [{hex(lo)}, {hex(hi)}]"
    ), None


def _result_ankr(n, lo, hi):
    return 200, -32000, "query exceeds max results", None


def _result_others(n, lo, hi):
    return 200, -32000, f"query exceeds max results {n}, retry with the range {lo}-{hi}", None


RESULT_CAP_STYLES = {
    "infura": _result_infura,
    "alchemy": _result_alchemy,
    "alchemy_timeout": _result_alchemy_timeout,
    "ankr": _result_ankr,
    "others": _result_others,
}


def range_cap_error(style: str, max_range: int, from_block: int, to_block: int) -> tuple[int, int, str, Any]:
    """(http_status, code, message, data) a provider of ``style`` answers for a range over its cap."""
    return RANGE_CAP_STYLES[style](int(max_range), from_block, to_block)


def result_cap_error(style: str, max_results: int, from_block: int, suggested_to: int) -> tuple[int, int, str, Any]:
    """(http_status, code, message, data) for too many results; the suggested range is
    ``[from_block, suggested_to]`` (inclusive)."""
    return RESULT_CAP_STYLES[style](int(max_results), from_block, suggested_to)


# --------------------------------------------------------------------------------------------
# The proxy


def hosted_provider_plan(*, requests_per_second: float = 25.0, max_range: int = 2000, max_results: int = 10000,
                         random_429: float = 0.02, retry_after: float | None = None) -> list[dict[str, Any]]:
    """A plan that makes the proxy act like a hosted provider (Alchemy-like): eth_getLogs up to
    ``max_range`` blocks, or any range with at most ``max_results`` logs; ``requests_per_second``
    metered per call; and a 429 at random on ``random_429`` of the requests."""
    plan: list[dict[str, Any]] = [
        {"kind": "throughput", "requests_per_second": requests_per_second, "per": "call"},
        {"kind": "provider_logs", "max_range": max_range, "max_results": max_results, "style": "alchemy"},
    ]
    if random_429:
        plan.insert(1, {"kind": "http_429", "probability": random_429, "retry_after": retry_after})
    return plan


class _RuleState:
    def __init__(self, fault: Fault, seed: int, index: int) -> None:
        self.fault = fault
        self.rng = random.Random(f"faultproxy:{seed}:{index}")
        self.matched = 0
        self.fired = 0
        # throughput: a token bucket of one second's worth
        self.tokens: float | None = None
        self.last = 0.0

    def over_rate(self, cost: float, now: float) -> bool:
        """Spend ``cost`` tokens if the bucket allows (caller holds the lock); True when over."""
        rate = float(self.fault.option("requests_per_second"))
        burst = max(1.0, rate)
        if self.tokens is None:
            self.tokens, self.last = burst, now
        self.tokens = min(burst, self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens >= min(cost, burst):
            self.tokens -= cost  # may go negative: a big batch leaves debt
            return False
        return True

    def fire(self) -> bool:
        """Count one match and decide whether the fault fires on it (caller holds the lock)."""
        f = self.fault
        self.matched += 1
        n = self.matched - f.skip
        if n <= 0 or (f.times is not None and self.fired >= f.times) or n % f.every != 0:
            return False
        if f.probability < 1.0 and self.rng.random() >= f.probability:
            return False
        self.fired += 1
        return True


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


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        if parts.scheme != "http" or not _is_loopback(parts.hostname):
            raise ValueError(
                "faultproxy forwards only to a plain-http loopback node (like anvil on 127.0.0.1); "
                "point it at a local node"
            )
        self._upstream = (parts.hostname, parts.port or 80, parts.path or "/")
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
        except (OSError, http.client.HTTPException, ValueError) as exc:
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
        host, port, path = self._upstream
        conn = http.client.HTTPConnection(host, port, timeout=self.upstream_timeout)
        try:
            conn.request("POST", path, _dumps(payload), {"Content-Type": "application/json"})
            data = conn.getresponse().read()
        finally:
            conn.close()
        self._count("upstream_requests")
        return json.loads(data)

    def _block_number(self, tag: Any, head: list[int]) -> int | None:
        if tag is None or tag in ("latest", "pending", "safe", "finalized"):
            if not head:
                head.append(int(self._upstream_call({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})["result"], 16))
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
                call, request_no, {"range_cap", "rpc_error"},
                lambda f, r=r: f.kind == "rpc_error" or (r is not None and r[1] - r[0] + 1 > int(f.option("max_range"))),
            )
            if fault is None:
                forward.append(i)
                continue
            if fault.kind == "range_cap":
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


# --------------------------------------------------------------------------------------------
# A chain with logs to fetch


# A runtime that emits n = calldata word 0 logs: LOG1(topic=EMITTER_TOPIC, data=counter), n..1.
EMITTER_TOPIC = "0x" + "fa017" * 12 + "fa01"
_EMITTER_RUNTIME = (
    "600035"  # PUSH1 0 CALLDATALOAD            -> [n]
    "5b"  # 0x03 JUMPDEST loop
    "801560" "3a" "57"  # DUP1 ISZERO PUSH1 end JUMPI  -> [n]
    "80600052"  # DUP1 PUSH1 0 MSTORE                 mem[0:32] = n
    "7f" + EMITTER_TOPIC[2:] +  # PUSH32 topic
    "60206000a1"  # PUSH1 32 PUSH1 0 LOG1
    "60019003"  # PUSH1 1 SWAP1 SUB                  -> [n - 1]
    "600356"  # PUSH1 loop JUMP
    "5b00"  # 0x3a JUMPDEST end, STOP
)
EMITTER_ADDRESS = "0x00000000000000000000000000000000000fa017"


@dataclass(frozen=True)
class LogChain:
    """Where ``build_log_chain`` put its logs: blocks ``from_block``..``to_block`` inclusive."""

    address: str
    topic: str
    from_block: int
    to_block: int
    log_count: int
    logs_per_block: dict[int, int]


def _rpc(url: str, method: str, params: list) -> Any:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    try:
        conn.request("POST", parts.path or "/", _dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
                     {"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    if "error" in answer:
        raise RuntimeError(f"{method} failed on the local node: {answer['error']}")
    return answer["result"]


def build_log_chain(
    url: str,
    *,
    seed: int = 0,
    txs: int = 60,
    max_logs_per_tx: int = 5,
    max_gap: int = 4,
    dense_logs: int = 12,
) -> LogChain:
    """Put the log emitter on a local anvil node and mine ``txs`` blocks of logs among empty ones.

    Each transaction is its own block (anvil automines) with 0..``max_logs_per_tx`` logs; one
    block in the middle has ``dense_logs`` logs (for result-cap tests); between them come
    0..``max_gap`` empty blocks (``anvil_mine``). Deterministic for a given ``seed`` and a
    fresh node; requests are sent one by one so the order of blocks is exact.
    """
    parts = urllib.parse.urlsplit(url)
    if not _is_loopback(parts.hostname):
        raise ValueError("build_log_chain writes to a local node only")
    rng = random.Random(seed)
    _rpc(url, "anvil_setCode", [EMITTER_ADDRESS, "0x" + _EMITTER_RUNTIME])
    sender = _rpc(url, "eth_accounts", [])[0]
    # Automine answers eth_sendTransaction before the block exists; mining by hand makes the
    # block of every transaction exact.
    _rpc(url, "evm_setAutomine", [False])
    try:
        first = int(_rpc(url, "eth_blockNumber", []), 16) + 1
        for i in range(txs):
            gap = rng.randint(0, max_gap)
            if gap:
                _rpc(url, "anvil_mine", [hex(gap)])
            n = dense_logs if i == txs // 2 else rng.randint(0, max_logs_per_tx)
            tx = {"from": sender, "to": EMITTER_ADDRESS, "data": "0x" + f"{n:064x}", "gas": hex(1_000_000)}
            _rpc(url, "eth_sendTransaction", [tx])
            _rpc(url, "evm_mine", [])
        last = int(_rpc(url, "eth_blockNumber", []), 16)
    finally:
        _rpc(url, "evm_setAutomine", [True])
    logs = _rpc(url, "eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last), "address": EMITTER_ADDRESS}])
    per_block = collections.Counter(int(entry["blockNumber"], 16) for entry in logs)
    return LogChain(EMITTER_ADDRESS, EMITTER_TOPIC, first, last, len(logs), dict(per_block))
