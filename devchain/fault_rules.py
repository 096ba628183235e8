"""The fault proxy's plan: what a rule is (``Fault``), the state that decides when it fires, and
the plan of a hosted provider.

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
* ``block_tags``: a call naming one of the block tags ``tags`` ("finalized" and "safe" by
  default), as a node from before the Merge or a minimal one would: ``style`` "error" gives
  JSON-RPC ``code``/``message`` (-32000 "finalized block not found"), "null" answers ``null``.
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
Determinism: each rule has its own ``random.Random`` seeded from (seed, rule index), and the
proxy evaluates the rules under one lock, in plan order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from postmortem.devchain.provider_errors import RANGE_CAP_STYLES, RESULT_CAP_STYLES

__all__ = ["Fault", "MAX_SLOW_SECONDS", "hosted_provider_plan"]

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
    "block_tags": {"tags": ("finalized", "safe"), "style": "error", "code": -32000,
                   "message": "finalized block not found"},
    "provider_logs": {"max_range": 2000, "max_results": 10000, "style": "alchemy"},
    "throughput": {"requests_per_second": 25.0, "per": "call", "style": "alchemy"},
}
_CALL_KINDS = {"range_cap", "result_cap", "rpc_error", "provider_logs", "block_tags"}
_BATCH_KINDS = {"batch_missing_id", "batch_bad_item", "batch_reorder", "batch_limit"}
MAX_SLOW_SECONDS = 60.0


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
