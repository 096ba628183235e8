"""What a JSON-RPC node's failure means: the error classes ingest raises, and the rules that sort a
node's answer into "slow down" (rate limit), "no such state here" (not an archive node) or "this
request is wrong" (never retried).

Kept apart from the client (``ingest.rpc``) because the log-range splitter (``ingest.ranges``)
reads the same words in a provider's refusal, and because every stage's caller catches these
classes without needing the HTTP machinery. Exit codes: ``PostmortemError`` subclasses are usage
errors (2, the URL or node is wrong), ``RuntimeFailure`` ones may work later (1).
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from typing import Any

from postmortem.errors import PostmortemError, RuntimeFailure

__all__ = [
    "ArchiveStateError",
    "RpcError",
    "RpcHttpError",
    "RpcProtocolError",
    "RpcRateLimitedError",
    "RpcTransportError",
    "RpcUnreachableError",
    "backoff_hint_seconds",
    "block_of_call",
    "final_error",
    "is_archive_state_error",
    "is_rate_limit",
    "url_error",
]


class RpcError(Exception):
    """A JSON-RPC call failed and retrying it will not help (or retries did not).

    Attributes: ``code`` (JSON-RPC error code, or None for non-JSON answers), ``message``
    (the node's text), ``data`` (the error's ``data`` member), ``method``, ``params``,
    ``http_status`` (None when no HTTP answer), ``retry_after`` (seconds the node asked to
    wait, if any) and ``index`` (the call's position in a ``batch``, else None).
    """

    def __init__(
        self,
        code: int | None,
        message: str,
        data: Any = None,
        method: str | None = None,
        params: Any = None,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        text: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        self.params = params
        self.http_status = http_status
        self.retry_after = retry_after
        self.index: int | None = None
        super().__init__(text or self._describe())

    def _describe(self) -> str:
        what = self.method or "the JSON-RPC call"
        code = f" {self.code}" if self.code is not None else ""
        http = f" (HTTP {self.http_status})" if self.http_status not in (None, 200) else ""
        return f"{what} failed with JSON-RPC error{code}{http}: {self.message}"


class ArchiveStateError(RpcError, PostmortemError):
    """The node has no state for the block asked about: it is not an archive node.

    ``block`` is the block number (int), a tag such as ``"latest"``, or None if unknown.
    """

    def __init__(self, code, message, data=None, method=None, params=None, *, block=None, **kw) -> None:
        self.block = block
        label = _block_label(block)
        text = (
            f"the node has no state for {label} ({method or 'call'}: {message}); it is not an archive "
            "node, so point the RPC URL at an archive node (one that keeps historical state that far back)"
        )
        super().__init__(code, message, data, method, params, text=text, **kw)


class RpcTransportError(RpcError, RuntimeFailure):
    """The node kept failing at the HTTP level (resets, timeouts, 5xx, broken JSON) after
    retries: a runtime failure (exit code 1); the same command may work later."""


class RpcUnreachableError(RpcTransportError):
    """The URL does not lead to a listening node (refused, unknown host, connect timeout):
    the URL given is wrong, a usage error (exit code 2)."""

    exit_code = PostmortemError.exit_code


class RpcHttpError(RpcError, PostmortemError):
    """The URL answers, but not as a JSON-RPC node will: HTTP 401/403 (the key was refused),
    404 (wrong path), 405 (not a JSON-RPC endpoint) or an HTML page. Never retried; the URL
    or its key is wrong, a usage error (exit code 2)."""


class RpcRateLimitedError(RpcError, RuntimeFailure):
    """The node kept rate-limiting after every retry (exit code 1)."""


class RpcProtocolError(RpcError, RuntimeFailure):
    """The node kept answering a call badly: its answer missing from a batch, or malformed
    (exit code 1)."""

# --------------------------------------------------------------------------------------------
# Classification helpers (shared with ingest.ranges and the client)

_RATE_WORDS = re.compile(r"\brate\b|compute units|capacity|throughput", re.IGNORECASE)
_RATE_PHRASES = re.compile(
    r"rate[ -]?limit|request rate|too many requests|compute units per second|exceeded .*capacity", re.IGNORECASE
)
_REVERTED = re.compile(r"execution reverted|revert", re.IGNORECASE)
_ARCHIVE = re.compile(
    r"missing trie node|header not found|state not available|state unavailable|state is not available"
    r"|historical state|state (?:for|at) .*(?:is )?not available|required historical state"
    r"|old data not available|pruned|pruning|world state .*unavailable",
    re.IGNORECASE,
)
_BATCH_TOO_LARGE = re.compile(r"batch.*(?:limit|too large|too big|exceed|too many|maximum)", re.IGNORECASE)
# Error codes that say "your request is wrong": never retried even under HTTP 5xx.
_DETERMINISTIC_CODES = {-32700, -32600, -32601, -32602, 3, -32614}


def is_rate_limit(code: int | None, message: str | None, http_status: int | None = None) -> bool:
    """True when an answer means "slow down" rather than "this request is wrong".

    HTTP 429 always is; JSON-RPC 429 or -32005 are when the message speaks of a rate,
    compute units or capacity (Infura reuses -32005 for "query returned more than 10000
    results", which is not a rate limit); any code is when the message says "rate limit",
    "request rate" or "too many requests". A revert reason never is, whatever it says.
    """
    text = message or ""
    if _REVERTED.search(text):
        return False
    if http_status == 429:
        return True
    if code in (429, -32005) and _RATE_WORDS.search(text):
        return True
    return bool(_RATE_PHRASES.search(text))


def is_archive_state_error(message: str | None) -> bool:
    """True when a node's message says it lacks historical state (pruned, non-archive node)."""
    return bool(message) and bool(_ARCHIVE.search(message))


def backoff_hint_seconds(data: Any) -> float | None:
    """Seconds to wait that a provider put in an error's ``data`` (Infura ``rate.backoff_seconds``)."""
    if not isinstance(data, dict):
        return None
    candidates = []
    rate = data.get("rate")
    if isinstance(rate, dict):
        candidates.append(rate.get("backoff_seconds"))
    candidates += [data.get("backoff_seconds"), data.get("retry_after"), data.get("retryAfter")]
    for value in candidates:
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


def _parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """``Retry-After`` in seconds: either delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now_wall)


# Where the block tag sits in the params of state-reading methods.
_BLOCK_PARAM_INDEX = {
    "eth_call": 1,
    "eth_estimateGas": 1,
    "eth_createAccessList": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
    "eth_getProof": 2,
    "eth_getBlockByNumber": 0,
    "eth_getBlockReceipts": 0,
    "debug_traceCall": 1,
}


def block_of_call(method: str | None, params: Any) -> int | str | None:
    """The block a state-reading call asks about: an int, a tag ("latest", a hash), or None."""
    if not isinstance(params, (list, tuple)):
        return None
    index = _BLOCK_PARAM_INDEX.get(method or "")
    if index is None:
        return None
    value = params[index] if index < len(params) else "latest"
    if isinstance(value, dict):
        value = value.get("blockNumber") or value.get("blockHash")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"0x[0-9a-fA-F]{1,16}", value):
            return int(value, 16)
        return value
    return None


def _block_label(block: int | str | None) -> str:
    if isinstance(block, int):
        return f"block {block} ({hex(block)})"
    if block:
        return f"block {block}"
    return "the requested block"


# --------------------------------------------------------------------------------------------
# Final errors: what failed and what to change


@dataclass
class _Problem:
    """Why an attempt did not finish every call: decides the wait and the final error."""

    kind: str  # "transport" | "unreachable" | "rate_limit" | "protocol"
    detail: str
    hint: float | None = None  # seconds the node asked us to wait
    code: int | None = None
    message: str | None = None
    data: Any = None
    http_status: int | None = None
    timed_out: bool = False  # a transport problem that was a timeout: --timeout may help


def final_error(problem: _Problem, *, display_url: str, timeout: float, label: str, first: tuple[str, Any],
                attempts: int) -> RpcError:
    """The error a client raises when ``problem`` outlasted its retries: what failed, on which
    call (``label``; ``first`` is the first call still pending), and what to change. The
    problem's words must already be scrubbed of the URL's key."""
    if problem.kind == "unreachable":
        return RpcUnreachableError(
            None, problem.detail, None, first[0], first[1],
            text=f"cannot reach the JSON-RPC node at {display_url} ({problem.detail}); "
            "check the RPC URL and that the node is running",
        )
    if problem.kind == "transport":
        if problem.timed_out:
            fix = (f"the node is slow or overloaded: raise --timeout (now {timeout:g} s), lower "
                   "--batch-size or --max-concurrency, or try again later (a re-run resumes)")
        elif problem.http_status is not None and problem.http_status >= 500:
            fix = "the node or its gateway is failing: try again later (a re-run resumes) or use another --rpc-url"
        else:
            fix = ("check that the node is healthy and try again (a re-run resumes), or use another --rpc-url; "
                   "if it is only slow, raise --timeout")
        return RpcTransportError(
            None, problem.detail, None, first[0], first[1], http_status=problem.http_status,
            text=f"the JSON-RPC node at {display_url} kept failing on {label} ({problem.detail}) "
            f"after {attempts} attempts; {fix}",
        )
    if problem.kind == "rate_limit":
        return RpcRateLimitedError(
            problem.code, problem.message or problem.detail, problem.data, first[0], first[1],
            http_status=problem.http_status, retry_after=problem.hint,
            text=f"the JSON-RPC node at {display_url} kept rate-limiting {label} after {attempts} "
            "attempts; lower --requests-per-second or --max-concurrency, or use a plan with more capacity",
        )
    return RpcProtocolError(
        None, problem.detail, None, first[0], first[1], http_status=problem.http_status,
        text=f"the JSON-RPC node at {display_url} did not answer {label} properly ({problem.detail}) "
        f"after {attempts} attempts; lower --batch-size (max_batch), as some nodes drop calls from large batches",
    )


def url_error(status: int, reason: str | None, words: str, html: bool, call, *, display_url: str) -> RpcHttpError:
    """The error for an answer that says the URL or its key is wrong (see ``RpcHttpError``);
    ``words`` are the node's, already scrubbed of the URL's key and shortened."""
    status_text = f"HTTP {status} {reason or ''}".rstrip()
    said = f" ({words})" if words and words.lower() != (reason or "").lower() else ""
    where = f"the JSON-RPC node at {display_url}"
    if html:
        text = (f"{display_url} answered with an HTML page ({status_text}) instead of JSON-RPC; "
                "--rpc-url points at a web page, not at a node's JSON-RPC endpoint: check the URL")
    elif status in (401, 403):
        text = (f"{where} refused the key: {status_text}{said}; "
                "check the key in --rpc-url (or $POSTMORTEM_RPC_URL)")
    elif status == 404:
        text = (f"{where} answered {status_text}{said}: nothing serves JSON-RPC at that path; check the path "
                "in --rpc-url (for example https://mainnet.infura.io/v3/KEY)")
    elif status == 405:
        text = (f"{display_url} refused a JSON-RPC POST: {status_text}{said}; it is not a JSON-RPC "
                "endpoint, so check --rpc-url (a node's HTTP JSON-RPC address)")
    else:
        text = f"{where} answered {status_text}{said}; check --rpc-url"
    return RpcHttpError(None, f"{status_text}{said}", None, call[0], call[1], http_status=status, text=text)
