"""The one way this project speaks JSON-RPC over HTTP: build a request, post it, read the answer.

Every stage stands on it: ingest's ``RpcClient`` (which adds batches, retries, a rate limit and
errors that say what to do on top of ``post``), and the local chain's tools in ``devchain``
(``Chain.rpc``, anvil's readiness probe, the log-chain builder) that call a loopback node
plainly with ``call`` and ``call_batch``. It lives in the foundation because a stage may not
import another stage; a second hand-rolled client would be a bug waiting for the first fix.

``post`` is the transport only (no retries: the caller owns its policy). ``call`` and
``call_batch`` are a plain request and answer: an error answer raises ``JsonRpcRefused``, a
body that is not JSON-RPC raises ``JsonRpcBadAnswer``; transport failures (refused, timed out)
are the HTTP library's own exceptions, ``requests.RequestException``.
"""

from __future__ import annotations

import gc
import itertools
import json
from typing import Any, Iterable, Sequence

import msgspec
import requests

from postmortem.errors import PostmortemError, RuntimeFailure

__all__ = ["JsonRpcBadAnswer", "JsonRpcRefused", "call", "call_batch", "envelope", "loads", "post"]

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

_ids = itertools.count(1)


class JsonRpcRefused(PostmortemError):
    """The node answered the call with a JSON-RPC error; ``method`` and ``error`` (the node's
    error object, a dict) say which and why."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.error = error
        message = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"node refused {method}: {message}")


class JsonRpcBadAnswer(RuntimeFailure):
    """The node's answer was not a JSON-RPC answer (not JSON, or neither result nor error)."""


def envelope(method: str, params: Sequence[Any] | None = None, id: int | None = None) -> dict[str, Any]:
    """One JSON-RPC 2.0 request object (``id``: a fresh one when None)."""
    return {"jsonrpc": "2.0", "id": next(_ids) if id is None else id, "method": method, "params": list(params or [])}


def post(
    url: str,
    body: bytes,
    *,
    timeout: float | tuple[float, float],
    session: requests.Session | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST an encoded JSON-RPC ``body`` to ``url`` and return the HTTP response as it came.

    ``timeout`` [s]: one number, or (connect, read). ``session`` keeps connections alive between
    calls, with its own settings (ingest's client honours the environment's proxy settings, as
    a user behind a proxy needs). Without one, a fresh connection that ignores them: the plain
    calls go to a local node, which no proxy should stand in front of.
    """
    if session is None:
        with requests.Session() as fresh:
            fresh.trust_env = False
            return _read_whole(fresh.post(url, data=body, headers=headers or HEADERS, timeout=timeout, stream=True))
    return _read_whole(session.post(url, data=body, headers=headers or HEADERS, timeout=timeout, stream=True))


def _read_whole(response: requests.Response) -> requests.Response:
    """Read the body in one go and keep it as the response's ``content``.

    ``requests`` reads a body it was not asked to stream in 10 KB pieces, which costs about
    0.3 s of CPU for a 70 MB ``eth_getLogs`` answer; asked for the stream, with no piece size it
    reads a body of known length in one call (a chunked one chunk by chunk), with the same
    exceptions for a body cut short or a read timeout. The body is stored where ``requests``
    itself keeps it, so ``response.content`` is the same bytes for every caller.
    """
    try:
        content = b"".join(response.iter_content(chunk_size=None))
    except BaseException:
        response.close()
        raise
    response._content = content
    response._content_consumed = True
    return response


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# Above this many bytes an answer is parsed with the cyclic garbage collector paused: a 70 MB
# ``eth_getLogs`` answer is about a million new containers, which would otherwise trigger
# collections that walk every one of them again and find nothing to free.
_PAUSE_GC_ABOVE = 1 << 20


def loads(body: bytes | str) -> Any:
    """Parse a JSON answer body, exactly as ``json.loads`` would.

    msgspec's parser (about 1.7x the standard library's speed on ``eth_getLogs`` answers)
    takes what it accepts, and gives the same values for it: arbitrary-size integers, the same
    floats, the last of duplicate keys. What it refuses (NaN, a byte-order mark, UTF-16, a lone
    surrogate, malformed JSON) goes to ``json.loads``, which answers or raises its own
    ``ValueError`` as before. ``tests/test_ingest_speed_equivalence.py`` holds both to the same
    values on the odd cases.
    """
    paused = len(body) > _PAUSE_GC_ABOVE and gc.isenabled()
    if paused:
        gc.disable()
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:  # a ValueError: refused by msgspec, judged by the standard library
        return json.loads(body)
    finally:
        if paused:
            gc.enable()


def _parse(response: requests.Response, what: str) -> Any:
    try:
        return loads(response.content)
    except ValueError:
        snippet = response.content[:120].decode("utf-8", "replace").strip()
        raise JsonRpcBadAnswer(
            f"the node answered {what} with HTTP {response.status_code} and a body that is not JSON "
            f"({snippet!r}); check that the URL is a JSON-RPC node"
        ) from None


def call(
    url: str,
    method: str,
    params: Sequence[Any] | None = None,
    *,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> Any:
    """Send one call and return its ``result``; raises ``JsonRpcRefused`` on an error answer."""
    response = post(url, _encode(envelope(method, params)), timeout=timeout, session=session)
    answer = _parse(response, method)
    if not isinstance(answer, dict):
        raise JsonRpcBadAnswer(f"the node answered {method} with {type(answer).__name__}, not a JSON-RPC object")
    if "error" in answer:
        raise JsonRpcRefused(method, answer["error"])
    return answer.get("result")


def call_batch(
    url: str,
    calls: Iterable[tuple[str, Sequence[Any]]],
    *,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> list[dict[str, Any]]:
    """Send calls as one JSON-RPC batch; returns each call's answer object, in the order of
    ``calls`` (matched by id, since a node may reorder them). A call the node did not answer
    gets ``{}``; the caller reads ``result`` or ``error`` from each."""
    requests_ = [envelope(m, p, id=k) for k, (m, p) in enumerate(calls)]
    if not requests_:
        return []
    response = post(url, _encode(requests_), timeout=timeout, session=session)
    answers = _parse(response, f"a batch of {len(requests_)} calls")
    if not isinstance(answers, list):
        raise JsonRpcBadAnswer(
            f"the node answered a batch of {len(requests_)} calls with "
            f"{answers.get('error') if isinstance(answers, dict) else type(answers).__name__} instead of a list"
        )
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    return [by_id.get(k, {}) for k in range(len(requests_))]
