"""The JSON-RPC engine of ingest: batches, bounded concurrency, a requests-per-second limit,
retries with backoff, and errors that say what to do.

Policy, in short (see ``/work/shared/reference/rpc-providers.md`` for the provider zoo):

* **Retried** with exponential backoff and jitter: transport faults (connection reset or
  refused after a first success, timeouts, a body cut short, a body that is not JSON,
  HTTP 5xx) and rate limits (HTTP 429; JSON-RPC 429 or -32005 whose message speaks of a
  rate or of compute units). A rate limit honours ``Retry-After`` and Infura's
  ``data.rate.backoff_seconds`` and pauses *every* thread of the client, because a provider
  meters the key, not the connection. A 5xx ``Retry-After`` is honoured too.
* **Not retried**: answers that will be the same next time (invalid params, execution
  reverted, ``eth_getLogs`` range caps, missing archive state). They raise ``RpcError``
  (``ArchiveStateError`` for missing historical state) at once.
* **Batches**: at most ``max_batch`` calls per HTTP request; answers are matched by id, so a
  node may reorder them. A call whose answer is missing or malformed is sent again; if that
  persists it is an ``RpcProtocolError``. A node that refuses the batch size ("batch limit
  exceeded") makes the client halve its batch size for the rest of its life.
* **Rate limit**: a token bucket shared by all threads; *a batch counts as its number of
  calls*, because hosted providers meter every call inside a batch.
* **Errors per call**: ``call`` raises; ``batch`` and ``map_batched`` raise the first failing
  call's ``RpcError`` (with ``.index``), or with ``return_errors=True`` put the ``RpcError``
  in that call's slot and return everything.

The URL may carry an API key, so it never appears raw in a message, a log line or an
exception (``postmortem.redact``); transport exceptions are re-raised ``from None`` so the
HTTP library's own text, which quotes the URL, is not chained either.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import itertools
import json
import logging
import random
import threading
import time
from typing import Any, Callable, Iterable, Sequence

import requests
import urllib3

from postmortem import jsonrpc
from postmortem.errors import PostmortemError
from postmortem.ingest.rate_limit import RateLimiter
from postmortem.ingest.rpc_errors import (
    _BATCH_TOO_LARGE,
    _DETERMINISTIC_CODES,
    ArchiveStateError,
    RpcError,
    RpcHttpError,
    RpcProtocolError,
    RpcRateLimitedError,
    RpcTransportError,
    RpcUnreachableError,
    _parse_retry_after,
    _Problem,
    backoff_hint_seconds,
    block_of_call,
    final_error,
    is_archive_state_error,
    is_rate_limit,
    url_error,
)
from postmortem.redact import install_log_redaction, redact_text, redact_url

log = logging.getLogger(__name__)

# The error classes and answer rules live in ``ingest.rpc_errors`` and the token bucket in
# ``ingest.rate_limit``; they are re-exported here so ``from postmortem.ingest.rpc import RpcError``
# keeps working for every caller.
__all__ = [
    "ArchiveStateError",
    "RateLimiter",
    "RpcClient",
    "RpcError",
    "RpcHttpError",
    "RpcProtocolError",
    "RpcRateLimitedError",
    "RpcTransportError",
    "RpcUnreachableError",
    "backoff_hint_seconds",
    "block_of_call",
    "client_defaults",
    "is_archive_state_error",
    "is_rate_limit",
]



# Client


_MISSING = object()

# Defaults for clients built without an explicit timeout/retries, set by the CLI for one
# command (``client_defaults``) so that ``--timeout`` and ``--retries`` reach every client a
# stage builds without each stage taking those options.
_DEFAULTS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("rpc_client_defaults", default={})
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 8


@contextlib.contextmanager
def client_defaults(*, timeout: float | None = None, retries: int | None = None):
    """Within the block, an ``RpcClient`` built without ``timeout``/``retries`` uses these
    (seconds per HTTP request; retries after the first attempt). None keeps the default."""
    if timeout is not None and timeout <= 0:
        raise PostmortemError(f"--timeout {timeout:g} is not a positive number of seconds; give e.g. --timeout 60")
    if retries is not None and retries < 0:
        raise PostmortemError(f"--retries {retries} is negative; give 0 or more")
    values = {k: v for k, v in (("timeout", timeout), ("retries", retries)) if v is not None}
    token = _DEFAULTS.set({**_DEFAULTS.get(), **values})
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


class _BatchTooLarge(Exception):
    """The node refused the batch size; ``batch`` lowers its size and re-splits."""


class RpcClient:
    """A JSON-RPC client over HTTP(S) that is polite to the node and honest about failures.

    Parameters (units in brackets):

    * ``requests_per_second`` [calls/s]: average call rate, shared by all threads; None = no
      limit. A batch of n calls spends n tokens.
    * ``max_concurrency``: HTTP requests in flight at once, across all threads; also the
      thread-pool size of ``map_batched``.
    * ``max_batch``: calls per HTTP request in ``batch``/``map_batched`` (Erigon caps at 100).
    * ``retries``: retries after the first attempt, for transport faults and rate limits
      (default 8, or what ``client_defaults`` set).
    * ``timeout`` [s]: per HTTP request (connect and read; default 30, or ``client_defaults``).
    * ``backoff_base``/``backoff_max`` [s]: retry k waits between half and all of
      ``min(backoff_max, backoff_base * 2**k)`` ("equal jitter": never zero, never in step
      with other clients). A node's own ``Retry-After``/``backoff_seconds`` wins, capped at
      ``max_retry_after``.
    * ``connect_retries``: retries for a URL that has never answered (refused, unknown host),
      kept small so a typo fails in about a second instead of after the full backoff.
    * ``headers``: extra HTTP headers (e.g. an ``Authorization`` some providers want).
    * ``sleep``/``clock``/``seed``: injectable for tests (seconds; ``seed`` fixes the jitter).
    """

    def __init__(
        self,
        url: str,
        *,
        requests_per_second: float | None = None,
        max_concurrency: int = 4,
        max_batch: int = 100,
        retries: int | None = None,
        timeout: float | None = None,
        backoff_base: float = 0.25,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        connect_retries: int = 2,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self.display_url = redact_url(url)
        install_log_redaction(url)
        scheme = str(url).split("://", 1)[0].lower() if "://" in str(url) else ""
        if scheme not in ("http", "https"):
            raise PostmortemError(
                f"the RPC URL {self.display_url or '(empty)'} is not an http(s) URL; "
                "pass one like https://host/path (websocket URLs are not supported)"
            )
        defaults = _DEFAULTS.get()
        retries = defaults.get("retries", DEFAULT_RETRIES) if retries is None else retries
        timeout = defaults.get("timeout", DEFAULT_TIMEOUT) if timeout is None else timeout
        if max_concurrency < 1 or max_batch < 1 or retries < 0 or timeout <= 0:
            raise ValueError("max_concurrency and max_batch must be >= 1, retries >= 0 and timeout > 0")
        self._url = url
        self.max_concurrency = int(max_concurrency)
        self.max_batch = int(max_batch)
        self.retries = int(retries)
        self.timeout = float(timeout)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.connect_retries = int(connect_retries)
        self.sleep = sleep
        self.clock = clock
        self.limiter = RateLimiter(requests_per_second, clock=clock, sleep=sleep)
        self._headers = {**jsonrpc.HEADERS, **(headers or {})}
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._inflight = threading.BoundedSemaphore(self.max_concurrency)
        self._rng = random.Random(seed)
        self._batch_cap = self.max_batch
        self._answered_once = False
        self._counters = {
            "requests": 0,  # HTTP requests sent
            "calls": 0,  # JSON-RPC calls sent, retries included
            "retries": 0,  # retry rounds (each waits a backoff)
            "rate_limited": 0,  # answers that said "slow down"
            "transport_errors": 0,  # resets, timeouts, 5xx, broken bodies
            "bytes_sent": 0,
            "bytes_received": 0,
            # Cost records (see ``stats``): retries by cause, log ranges answered and logs received.
            "retries_rate_limit": 0,
            "retries_transport": 0,
            "retries_protocol": 0,
            "retries_unreachable": 0,
            "getlogs_ranges": 0,  # eth_getLogs calls answered with a list of logs
            "logs_received": 0,
        }
        self._by_method: dict[str, int] = {}  # calls sent per JSON-RPC method, retries included

    # -- public API ---------------------------------------------------------------------------

    def call(self, method: str, params: Sequence[Any] | None = None) -> Any:
        """Send one JSON-RPC call and return its ``result``; raises ``RpcError`` on failure."""
        result = self._execute([(method, list(params or []))], as_batch=False)[0]
        if isinstance(result, RpcError):
            raise result
        return result

    def batch(self, calls: Iterable[tuple[str, Sequence[Any]]], *, return_errors: bool = False) -> list[Any]:
        """Send calls as JSON-RPC batches of at most ``max_batch``, one after another.

        Returns the results in the order of ``calls``. A call that failed raises its
        ``RpcError`` (the first failing one, ``.index`` set), or with ``return_errors=True``
        its ``RpcError`` takes its place in the list.
        """
        calls = [(m, list(p or [])) for m, p in calls]
        out: list[Any] = []
        start = 0
        while start < len(calls):
            chunk = calls[start : start + self._batch_cap]
            try:
                out.extend(self._execute(chunk, as_batch=True))
            except _BatchTooLarge:
                continue  # the cap was lowered; re-split from the same place
            start += len(chunk)
        return self._finish(out, return_errors)

    def map_batched(self, calls: Iterable[tuple[str, Sequence[Any]]], *, return_errors: bool = False) -> list[Any]:
        """Like ``batch``, but sends up to ``max_concurrency`` batches at once on a thread pool.

        Results come back in the order of ``calls``. A batch that fails outright (transport
        or rate limit after retries) cancels the batches not yet started and is raised; a
        failing call is raised after all batches are done (or returned, with ``return_errors``).
        """
        calls = [(m, list(p or [])) for m, p in calls]
        size = self._batch_cap
        chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
        if len(chunks) <= 1:
            return self.batch(calls, return_errors=return_errors)
        results: list[list[Any]] = [[] for _ in chunks]
        workers = min(self.max_concurrency, len(chunks))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc")
        try:
            futures = {pool.submit(self.batch, chunk, return_errors=True): i for i, chunk in enumerate(chunks)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C: do not wait for the requests in flight (up to the timeout each).
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        else:
            pool.shutdown(wait=True)
        return self._finish([r for chunk in results for r in chunk], return_errors)

    def count(self, **deltas: int) -> None:
        """Add to the cost counters (callers count what only they know, e.g. the reads a
        Multicall3 ``eth_call`` carried); unknown names start at 0."""
        with self._lock:
            for key, value in deltas.items():
                self._counters[key] = self._counters.get(key, 0) + value

    def stats(self) -> dict[str, float]:
        """Counters for a run summary: requests (HTTP posts), calls (JSON-RPC calls, those
        inside batches included), calls_by_method, retries and retries_<cause> (rate_limit,
        transport, protocol, unreachable), rate_limited, transport_errors, getlogs_ranges and
        logs_received, bytes_sent, bytes_received, what callers added with ``count`` (e.g.
        reads), waited_seconds (rate limiter) and batch_cap (the batch size in use, lowered
        if the node refused larger ones)."""
        with self._lock:
            out: dict[str, float] = dict(self._counters)
            out["calls_by_method"] = dict(sorted(self._by_method.items()))
        out["waited_seconds"] = round(self.limiter.waited_seconds, 6)
        out["batch_cap"] = self._batch_cap
        return out

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), with jitter."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 60)))
        with self._lock:
            return cap / 2 + self._rng.uniform(0, cap / 2)

    def close(self) -> None:
        """Close the HTTP sessions of every thread that used this client."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RpcClient({self.display_url!r})"

    # -- internals ----------------------------------------------------------------------------

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                self._counters[key] += value

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # No retries inside urllib3: this class owns the retry policy and counts it.
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=self.max_concurrency, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _finish(self, results: list[Any], return_errors: bool) -> list[Any]:
        for i, result in enumerate(results):
            if isinstance(result, RpcError):
                result.index = i
        if not return_errors:
            for result in results:
                if isinstance(result, RpcError):
                    raise result
        return results

    def _scrub(self, text: str) -> str:
        return redact_text(str(text), self._url)

    def _post(self, body: bytes, n_calls: int) -> requests.Response:
        self.limiter.acquire(n_calls)
        with self._inflight:
            self._count(requests=1, calls=n_calls, bytes_sent=len(body))
            response = jsonrpc.post(self._url, body, session=self._session(), headers=self._headers,
                                    timeout=(min(self.timeout, 10.0), self.timeout))
        self._count(bytes_received=len(response.content))
        return response

    def _describe_transport(self, exc: BaseException) -> str:
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return f"no connection within {min(self.timeout, 10.0):g} s"
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return "the answer was cut short"
        reason = _root_reason(exc)
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            return "the host name does not resolve"
        text = str(reason if reason is not None else exc)
        if "refused" in text.lower():
            return "connection refused"
        if "reset" in text.lower() or "aborted" in text.lower() or "closed" in text.lower():
            return "connection reset or closed without an answer"
        return self._scrub(f"{type(exc).__name__}: {text}")[:200]

    def _is_connect_failure(self, exc: BaseException) -> bool:
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return True
        return isinstance(exc, requests.exceptions.ConnectionError) and isinstance(
            _root_reason(exc), urllib3.exceptions.NewConnectionError
        )

    def _make_error(self, code, message, data, call, http_status, retry_after=None) -> RpcError:
        method, params = call
        message = self._scrub(message if isinstance(message, str) else json.dumps(message))
        if is_archive_state_error(message):
            return ArchiveStateError(
                code, message, data, method, params, block=block_of_call(method, params), http_status=http_status
            )
        return RpcError(code, message, data, method, params, http_status=http_status, retry_after=retry_after)

    def _next_ids(self, n: int) -> list[int]:
        with self._lock:
            return [next(self._ids) for _ in range(n)]

    def _execute(self, calls: list[tuple[str, list]], as_batch: bool) -> list[Any]:
        """Send ``calls`` until each has a result or a final error; the retry loop lives here."""
        ids = self._next_ids(len(calls))
        pending = dict(zip(ids, range(len(calls))))
        results: list[Any] = [_MISSING] * len(calls)
        attempt = 0
        while True:
            problem = self._attempt(calls, pending, results, as_batch)
            if not pending:
                return results
            assert problem is not None
            budget = min(self.retries, self.connect_retries) if problem.kind == "unreachable" else self.retries
            if attempt >= budget:
                raise self._give_up(problem, calls, pending, attempt + 1) from None
            if problem.hint:
                delay = min(problem.hint, self.max_retry_after)
                with self._lock:  # a little jitter on top, so paused clients do not return in step
                    delay += self._rng.uniform(0, min(1.0, delay * 0.1))
            else:
                delay = self.backoff_delay(attempt)
            attempt += 1
            self._count(retries=1, **{f"retries_{problem.kind}": 1})
            log.info(
                "JSON-RPC %s at %s: %s; retry %d of %d in %.2f s",
                self._label(calls, pending), self.display_url, self._scrub(problem.detail), attempt, budget, delay,
            )
            if problem.kind == "rate_limit":
                self.limiter.pause(delay)  # everybody waits: the provider meters the key
            else:
                self.sleep(delay)

    def _label(self, calls, pending=None) -> str:
        idx = sorted(pending.values()) if pending else range(len(calls))
        methods = sorted({calls[i][0] for i in idx})
        if len(calls) == 1:
            return methods[0]
        return f"batch of {len(calls)} calls ({', '.join(methods[:3])}{', ...' if len(methods) > 3 else ''})"

    def _give_up(self, problem: _Problem, calls, pending, attempts: int) -> RpcError:
        # The node's own words go into the error: scrub them like anything else we print.
        problem.detail = self._scrub(problem.detail)
        problem.message = self._scrub(problem.message) if problem.message else problem.message
        return final_error(problem, display_url=self.display_url, timeout=self.timeout,
                           label=self._label(calls, pending), first=calls[min(pending.values())], attempts=attempts)

    def _attempt(self, calls, pending, results, as_batch) -> _Problem | None:
        """One HTTP round trip for the calls still pending; returns why some remain, if any."""
        send = list(pending)
        objs = [jsonrpc.envelope(calls[pending[i]][0], calls[pending[i]][1], id=i) for i in send]
        with self._lock:
            for obj in objs:
                self._by_method[obj["method"]] = self._by_method.get(obj["method"], 0) + 1
        body = json.dumps(objs if as_batch else objs[0], separators=(",", ":")).encode()
        try:
            response = self._post(body, len(send))
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
            raise PostmortemError(
                f"the RPC URL {self.display_url} is not a valid http(s) URL; pass one like https://host/path"
            ) from None
        except requests.exceptions.RequestException as exc:
            self._count(transport_errors=1)
            unreachable = self._is_connect_failure(exc) and not self._answered_once
            return _Problem("unreachable" if unreachable else "transport", self._describe_transport(exc),
                            timed_out=isinstance(exc, requests.exceptions.Timeout))
        self._answered_once = True
        status = response.status_code
        hint = _parse_retry_after(response.headers.get("Retry-After"), time.time())
        content = response.content
        try:
            parsed = jsonrpc.loads(content)
        except ValueError:
            parsed = _MISSING
        html = _is_html(response, content)
        if status in _URL_STATUSES or (html and status < 500 and status != 429):
            err = _first_error(parsed) if parsed is not _MISSING else None
            words = str(err.get("message", "")) if err else ("" if html else content[:200].decode("utf-8", "replace"))
            if not (err and is_rate_limit(err.get("code"), words, status)):
                first = calls[pending[send[0]]]
                raise url_error(status, response.reason, " ".join(self._scrub(words).split())[:120], html, first,
                                display_url=self.display_url) from None

        if status == 429:
            self._count(rate_limited=1)
            err = _first_error(parsed)
            if hint is None and err:
                hint = backoff_hint_seconds(err.get("data"))
            return _Problem(
                "rate_limit", f"HTTP 429{' ' + str(err.get('message', ''))[:120] if err else ''}", hint,
                code=err.get("code") if err else 429, message=str(err.get("message", "")) if err else "HTTP 429",
                data=err.get("data") if err else None, http_status=429,
            )
        if parsed is _MISSING or not isinstance(parsed, (list, dict)):
            snippet = self._scrub(content[:120].decode("utf-8", "replace")).strip()
            if status >= 500 or status < 300:
                self._count(transport_errors=1)
                if html:
                    detail = f"HTTP {status} {response.reason or ''}".rstrip() + " with an HTML error page"
                else:
                    detail = f"HTTP {status} with a body that is not JSON-RPC: {snippet!r}"
                return _Problem("transport", detail, hint, http_status=status)
            # A 4xx without JSON (401 Unauthorized, 413 from a proxy...) will not change on retry.
            for i in send:
                results[pending[i]] = self._make_error(None, f"HTTP {status}: {snippet}", None, calls[pending[i]], status)
            pending.clear()
            return None

        # A lone error object not addressed to one of our ids is about the whole request.
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) and _norm_id(parsed.get("id")) not in pending:
            err = parsed["error"]
            code, message, data = err.get("code"), str(err.get("message", "")), err.get("data")
            if is_rate_limit(code, message, status):
                self._count(rate_limited=1)
                return _Problem("rate_limit", message[:120], hint or backoff_hint_seconds(data), code, message, data, status)
            if as_batch and len(send) > 1 and _BATCH_TOO_LARGE.search(message):
                with self._lock:
                    self._batch_cap = max(1, min(self._batch_cap, len(send)) // 2)
                log.info("node at %s refused a batch of %d calls; using batches of %d", self.display_url, len(send), self._batch_cap)
                raise _BatchTooLarge()
            if status >= 500 and code not in _DETERMINISTIC_CODES:
                self._count(transport_errors=1)
                return _Problem("transport", f"HTTP {status}: {message[:120]}", hint, http_status=status)
            for i in send:
                results[pending[i]] = self._make_error(code, message, data, calls[pending[i]], status, hint)
            pending.clear()
            return None

        answers = parsed if isinstance(parsed, list) else [parsed]
        malformed = 0
        rate_problem: _Problem | None = None
        transient = False
        for answer in answers:
            if not isinstance(answer, dict):
                malformed += 1
                continue
            aid = _norm_id(answer.get("id"))
            if aid not in pending:
                continue  # unknown or duplicate id: ignore, the call stays pending if unanswered
            index = pending[aid]
            if "error" in answer and answer["error"] is not None:
                err = answer["error"]
                if not isinstance(err, dict):
                    malformed += 1
                    continue
                code, message, data = err.get("code"), str(err.get("message", "")), err.get("data")
                if is_rate_limit(code, message, status):
                    rate_problem = _Problem("rate_limit", message[:120], hint or backoff_hint_seconds(data), code, message, data, status)
                    continue
                if status >= 500 and code not in _DETERMINISTIC_CODES and not is_archive_state_error(message):
                    transient = True
                    continue
                results[index] = self._make_error(code, message, data, calls[index], status, hint)
                del pending[aid]
            elif "result" in answer:
                results[index] = answer["result"]
                del pending[aid]
                if calls[index][0] == "eth_getLogs" and isinstance(answer["result"], list):
                    self._count(getlogs_ranges=1, logs_received=len(answer["result"]))
            else:
                malformed += 1
        if not pending:
            return None
        if rate_problem is not None:
            self._count(rate_limited=1)
            return rate_problem
        if transient or status >= 500:
            self._count(transport_errors=1)
            return _Problem("transport", f"HTTP {status}", hint, http_status=status)
        missing = [i for i in send if i in pending]
        detail = f"{len(missing)} of {len(send)} answers missing or malformed (ids {missing[:5]}{'...' if len(missing) > 5 else ''})"
        return _Problem("protocol", detail, http_status=status)


# Statuses that say the URL or its key is wrong, whatever the body: never retried.
_URL_STATUSES = frozenset({401, 403, 404, 405})


def _is_html(response: requests.Response, content: bytes) -> bool:
    """True when the answer is a web page (a wrong URL, a login page, a gateway's error page)."""
    ctype = response.headers.get("Content-Type", "").lower()
    if "html" in ctype:
        return True
    head = content[:200].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _norm_id(value: Any) -> Any:
    """Ids go out as ints; some nodes echo them as strings."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _first_error(parsed: Any) -> dict | None:
    items = parsed if isinstance(parsed, list) else [parsed]
    for item in items:
        if isinstance(item, dict):
            if isinstance(item.get("error"), dict):
                return item["error"]
            if "code" in item and "message" in item:  # a bare error object without envelope
                return item
    return None


def _root_reason(exc: BaseException) -> BaseException | None:
    """The urllib3 reason inside a requests exception (MaxRetryError.reason), if any."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None)
    return reason if isinstance(reason, BaseException) else (inner if isinstance(inner, BaseException) else None)
