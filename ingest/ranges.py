"""Adaptive ``eth_getLogs``: walk a block range in windows the node accepts.

Every hosted node caps ``eth_getLogs`` (by block range, by result count, by response size
or by time) and says so in its own words. This module turns those words into a decision
(``classify_logs_error``) and walks a range with it (``fetch_logs``), following the rules
that mature indexers converged on (``/work/shared/reference/rpc-providers.md``):

1. If the message suggests a range, use its width; else if it states a cap, use the cap;
   else halve.
2. Split ``[from, to]`` into ``[from, mid]`` and ``[mid + 1, to]``: never fetch a block
   twice (and never skip one).
3. Never split on a rate limit: back off (``Retry-After``/``backoff_seconds``) and retry
   the same range.
4. Grow the window again after a run of successes (additive increase, multiplicative
   decrease), up to a ceiling; a stated range cap lowers the ceiling for good.
5. A split that cannot make the range smaller (a single block still failing) is a hard
   error with a clear message.

The caller owns chunking (one Parquet file per chunk); ``fetch_logs`` makes the requests
within one chunk and may be called for many chunks in parallel with the same client.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from postmortem.ingest.rpc import (
    ArchiveStateError,
    RpcError,
    RpcProtocolError,
    RpcTransportError,
    backoff_hint_seconds,
    is_rate_limit,
)
from postmortem.errors import PostmortemError

log = logging.getLogger(__name__)

RATE_LIMIT = "rate_limit"
SPLIT = "split"
TOO_MANY_RESULTS = "too_many_results"
FATAL = "fatal"


@dataclass(frozen=True)
class Decision:
    """What to do about a failed ``eth_getLogs``.

    * ``kind``: ``rate_limit`` (wait ``delay`` seconds, or a backoff if None, and retry the
      same range), ``split`` (the range is over a block-range cap), ``too_many_results``
      (the range holds too many logs, or took too long: split, but the cap is local), or
      ``fatal`` (raise).
    * ``width``: blocks (inclusive count) for the first piece of the split, from a range
      the node suggested or else a cap it stated; None means halve.
    * ``cap``: a block-range cap the node stated (blocks), which bounds every later window.
    * ``delay``: seconds the node asked to wait (rate limits).
    """

    kind: str
    width: int | None = None
    cap: int | None = None
    delay: float | None = None
    reason: str = ""


# "[0xBDE5F8, 0x102DBCC]" (Infura, Alchemy) and "23879634-23879696" (others).
_NUM = r"(?:0x[0-9a-fA-F]+|\d+)"
_BRACKET_RANGE = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_DASH_RANGE = re.compile(r"(?<![\w.])(\d+)\s*-\s*(\d+)(?![\w.])")
# A count with optional thousands separators and k/m suffix: "10,000", "1k", "2K".
_COUNT = r"(\d[\d,_]*(?:\.\d+)?\s*[kKmM]?)\b"
_CAP_PATTERNS = [
    re.compile(rf"max(?:imum)?\s+block\s+range\s*(?:is|of|=|:)?\s*=?\s*{_COUNT}", re.I),  # "max block range = 5000"
    re.compile(rf"limit\s+of\s+{_COUNT}", re.I),  # "exceeds limit of 10000"
    re.compile(rf"max(?:imum)?\s+is\s+{_COUNT}\s*blocks?", re.I),  # "max is 1k blocks"
    re.compile(rf"limited\s+to\s+(?:an?\s+)?{_COUNT}\s*-?\s*(?:blocks?\s+)?range", re.I),  # "limited to a 10,000 range"
    re.compile(rf"up\s+to\s+an?\s+{_COUNT}\s*-?\s*blocks?\s+range", re.I),  # "up to a 500 block range"
    re.compile(rf"{_COUNT}\s*-?\s*blocks?\b", re.I),  # any other "N blocks"
]
_RESULT_WORDS = re.compile(r"\bresults?\b|\blogs\b", re.I)
_TOO_MUCH = re.compile(r"exceed|more than|\bmax|too many|too (?:large|big)|limit|\bcap\b", re.I)
_HEAVY = re.compile(r"response size|response is too|response too|timeout|timed out|deadline exceeded", re.I)
_RANGE_WORDS = re.compile(r"\brange\b|\bblocks?\b", re.I)
_RANGE_TOO_BIG = re.compile(
    r"too (?:large|wide|big|many)|exceed|limit|\bmax|up to|larger than|should work|reduc|narrow", re.I
)


def _to_int(text: str) -> int:
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _parse_count(text: str) -> int | None:
    t = text.replace(",", "").replace("_", "").strip().lower()
    scale = 1
    if t.endswith("k"):
        scale, t = 1_000, t[:-1].strip()
    elif t.endswith("m"):
        scale, t = 1_000_000, t[:-1].strip()
    try:
        value = int(float(t) * scale)
    except ValueError:
        return None
    return value if value > 0 else None


def suggested_width(message: str, data: Any = None) -> int | None:
    """Width in blocks (inclusive) of a range the node suggested, or None.

    Looks at Infura's structured ``data`` (``from``/``to``) first, then ``[0xA, 0xB]``,
    then ``A-B`` in the message.
    """
    if isinstance(data, dict) and "from" in data and "to" in data:
        try:
            lo, hi = _to_int(str(data["from"])), _to_int(str(data["to"]))
            if hi >= lo:
                return hi - lo + 1
        except ValueError:
            pass
    for pattern in (_BRACKET_RANGE, _DASH_RANGE):
        for m in pattern.finditer(message or ""):
            lo, hi = _to_int(m.group(1)), _to_int(m.group(2))
            if hi >= lo:
                return hi - lo + 1
    return None


def stated_cap(message: str) -> int | None:
    """A block-range cap stated in a message ("limit of 10000", "max is 1k blocks", ...), or None."""
    for pattern in _CAP_PATTERNS:
        m = pattern.search(message or "")
        if m:
            value = _parse_count(m.group(1))
            if value:
                return value
    return None


def _error_parts(exc: BaseException) -> tuple[int | None, str, Any, int | None]:
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        message = str(exc)
    return code, message, getattr(exc, "data", None), getattr(exc, "http_status", None)


def classify_logs_error(exc: BaseException) -> Decision:
    """Decide what a failed ``eth_getLogs`` means. Accepts any exception: an ``RpcError``
    (code, message, data, HTTP status are used) or a plain one (its text is used).

    Order matters: a rate limit is recognised first (Infura uses -32005 for both "rate
    exceeded" and "more than 10000 results"), then result/size/time limits, then block-range
    caps; anything else is fatal (invalid params, missing state, persistent transport faults).
    """
    code, message, data, http_status = _error_parts(exc)
    if isinstance(exc, ArchiveStateError):
        return Decision(FATAL, reason="the node lacks historical state")
    if is_rate_limit(code, message, http_status):
        delay = getattr(exc, "retry_after", None)
        if delay is None:
            delay = backoff_hint_seconds(data)
        return Decision(RATE_LIMIT, delay=delay, reason=message[:200])
    if isinstance(exc, (RpcTransportError, RpcProtocolError)):
        return Decision(FATAL, reason="the node kept failing after retries")
    if (_RESULT_WORDS.search(message) and _TOO_MUCH.search(message)) or _HEAVY.search(message):
        return Decision(TOO_MANY_RESULTS, width=suggested_width(message, data), reason=message[:200])
    is_range = bool(_RANGE_WORDS.search(message) and _RANGE_TOO_BIG.search(message))
    if is_range or http_status == 413 or code == -32614:
        cap = stated_cap(message)
        width = suggested_width(message, data) or cap
        return Decision(SPLIT, width=width, cap=cap, reason=message[:200])
    return Decision(FATAL, reason=message[:200])


# --------------------------------------------------------------------------------------------
# The walk


class LogsRangeError(PostmortemError):
    """eth_getLogs cannot be made to work for a range (a single block still fails, or the
    node answers with logs outside the range asked for)."""


@dataclass(frozen=True)
class LogRange:
    """The logs of blocks ``from_block``..``to_block`` (inclusive), as the node returned them."""

    from_block: int
    to_block: int
    logs: list[dict]


@dataclass
class FetchStats:
    """What a walk did: requests sent, splits, rate-limit waits, the window width and
    ceiling at the end (blocks), and each failure with its decision."""

    requests: int = 0
    splits: int = 0
    rate_limit_waits: int = 0
    width: int = 0
    ceiling: int = 0
    failures: list[tuple[int, int, Decision]] = field(default_factory=list)


def _log_filter(addresses, topics, lo: int, hi: int) -> dict:
    flt: dict[str, Any] = {"fromBlock": hex(lo), "toBlock": hex(hi)}
    if addresses is not None:
        flt["address"] = [addresses] if isinstance(addresses, str) else list(addresses)
    if topics is not None:
        flt["topics"] = list(topics)
    return flt


def iter_logs(
    client,
    *,
    addresses: str | Sequence[str] | None,
    topics: Sequence[Any] | None,
    from_block: int,
    to_block: int,
    initial_width: int = 2_000,
    max_width: int = 10_000,
    on_range: Callable[[LogRange], None] | None = None,
    grow_after: int = 4,
    grow_step: int | None = None,
    rate_limit_retries: int = 3,
    sleep: Callable[[float], None] | None = None,
    stats: FetchStats | None = None,
) -> Iterator[LogRange]:
    """Yield ``LogRange``s covering ``[from_block, to_block]`` exactly once, in block order.

    ``client`` needs ``call(method, params)`` (an ``RpcClient``). Widths are in blocks:
    the walk starts at ``initial_width``, never exceeds ``max_width`` or a cap the node
    stated, and after ``grow_after`` successes in a row grows by ``grow_step`` blocks
    (default: a quarter of ``initial_width``). ``addresses=None``/``topics=None`` mean no
    filter; an empty address list is refused because it would silently mean "every
    contract". ``on_range`` is called with each range as it completes. ``sleep`` (seconds)
    defaults to the client's. Raises ``LogsRangeError`` when a single block cannot be
    fetched, and re-raises fatal ``RpcError``s.
    """
    if from_block < 0 or to_block < from_block:
        raise ValueError(f"bad block range [{from_block}, {to_block}]: need 0 <= from_block <= to_block")
    if initial_width < 1 or max_width < 1 or grow_after < 1:
        raise ValueError("initial_width, max_width and grow_after must be >= 1")
    if addresses is not None and not isinstance(addresses, str) and len(addresses) == 0:
        raise ValueError("addresses is empty; pass None to fetch the logs of every contract")
    sleep = sleep or getattr(client, "sleep", None) or time.sleep
    stats = stats if stats is not None else FetchStats()
    ceiling = max_width
    width = min(initial_width, ceiling)
    step = grow_step or max(1, initial_width // 4)
    streak = 0
    rate_waits = 0
    cursor = from_block
    # Bounded: every pass either advances the cursor, strictly narrows the window at the
    # same cursor, or spends one of ``rate_limit_retries``.
    while cursor <= to_block:
        end = min(to_block, cursor + width - 1)
        stats.requests += 1
        try:
            logs = client.call("eth_getLogs", [_log_filter(addresses, topics, cursor, end)])
        except RpcError as exc:
            decision = classify_logs_error(exc)
            stats.failures.append((cursor, end, decision))
            if decision.kind == RATE_LIMIT:
                if rate_waits >= rate_limit_retries:
                    raise
                delay = decision.delay if decision.delay is not None else min(30.0, 0.5 * 2**rate_waits)
                rate_waits += 1
                stats.rate_limit_waits += 1
                log.info("eth_getLogs [%d, %d] rate-limited; waiting %.2f s", cursor, end, delay)
                sleep(delay)
                continue
            if decision.kind == FATAL:
                raise
            span = end - cursor + 1
            if span <= 1:
                raise LogsRangeError(
                    f"eth_getLogs for the single block {cursor} still fails ({decision.reason}); the node "
                    "cannot return that block's logs in one answer, so use a node with higher limits "
                    "or a narrower address/topic filter"
                ) from exc
            # Rule 1: suggested width, else stated cap (both carried in decision.width), else halve.
            new_width = decision.width if decision.width and decision.width < span else span // 2
            if decision.kind == SPLIT:
                # A range cap is a property of the node: never go above it again. Without a
                # stated cap, the refused span itself is an upper bound.
                ceiling = max(1, min(ceiling, decision.cap if decision.cap and decision.cap < span else span - 1))
            width = max(1, min(new_width, ceiling))
            streak = 0
            stats.splits += 1
            log.debug("eth_getLogs [%d, %d] %s; next window %d blocks", cursor, end, decision.kind, width)
            continue
        if not isinstance(logs, list):
            raise LogsRangeError(
                f"eth_getLogs for blocks [{cursor}, {end}] returned {type(logs).__name__} instead of a list; "
                "the node is misbehaving, so try another node"
            )
        for entry in logs:
            number = entry.get("blockNumber") if isinstance(entry, dict) else None
            if isinstance(number, str) and not cursor <= int(number, 16) <= end:
                raise LogsRangeError(
                    f"eth_getLogs for blocks [{cursor}, {end}] returned a log of block {int(number, 16)}; "
                    "the node is misbehaving, so try another node"
                )
        piece = LogRange(cursor, end, logs)
        if on_range is not None:
            on_range(piece)
        yield piece
        cursor = end + 1
        rate_waits = 0
        streak += 1
        if streak >= grow_after and width < ceiling:
            width = min(ceiling, width + step)  # additive increase
            streak = 0
        stats.width, stats.ceiling = width, ceiling
    stats.width, stats.ceiling = width, ceiling


def fetch_logs(
    client,
    *,
    addresses: str | Sequence[str] | None,
    topics: Sequence[Any] | None,
    from_block: int,
    to_block: int,
    initial_width: int = 2_000,
    max_width: int = 10_000,
    on_range: Callable[[LogRange], None] | None = None,
    grow_after: int = 4,
    grow_step: int | None = None,
    rate_limit_retries: int = 3,
    sleep: Callable[[float], None] | None = None,
    stats: FetchStats | None = None,
) -> list[LogRange]:
    """Fetch every log of ``[from_block, to_block]``: the ``LogRange``s in block order.

    Same arguments as ``iter_logs``; eager, so a caller that forgets to iterate cannot
    silently fetch nothing.
    """
    return list(
        iter_logs(
            client, addresses=addresses, topics=topics, from_block=from_block, to_block=to_block,
            initial_width=initial_width, max_width=max_width, on_range=on_range, grow_after=grow_after,
            grow_step=grow_step, rate_limit_retries=rate_limit_retries, sleep=sleep, stats=stats,
        )
    )
