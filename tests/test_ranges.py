"""Adaptive eth_getLogs: every verbatim provider error is classified per the rules, and a walk
through the fault proxy returns exactly the logs of a clean fetch, split the way the node said."""

from __future__ import annotations


import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from postmortem.devchain.faultproxy import FaultProxy, build_log_chain, range_cap_error, result_cap_error
from postmortem.ingest.ranges import (
    FATAL,
    RATE_LIMIT,
    SPLIT,
    TOO_MANY_RESULTS,
    Decision,
    FetchStats,
    LogRange,
    LogsRangeError,
    classify_logs_error,
    fetch_logs,
    iter_logs,
    stated_cap,
    suggested_width,
)
from postmortem.ingest.rpc import ArchiveStateError, RpcClient, RpcError, RpcTransportError
from postmortem.errors import PostmortemError

# -- every verbatim error of rpc-providers.md -------------------------------------------------
# (provider, code, message, data, http status, expected kind, expected width, expected cap, delay)
VERBATIM = [
    ("infura result cap", -32005,
     "query returned more than 10000 results. Try with this block range [0xBDE5F8, 0x102DBCC].",
     {"from": "0xBDE5F8", "limit": 10000, "to": "0x102DBCC"}, 200,
     TOO_MANY_RESULTS, 0x102DBCC - 0xBDE5F8 + 1, None, None),
    ("infura range cap", -32602, "range 1000000 exceeds limit of 10000", None, 200, SPLIT, 10000, 10000, None),
    ("infura rate", -32005, "project ID request rate exceeded",
     {"rate": {"allowed_rps": 1, "backoff_seconds": 29, "current_rps": 1.1}}, 429, RATE_LIMIT, None, None, 29.0),
    ("alchemy response size", -32602,
     "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on "
     "the response size, or you can request any block range with a cap of 10K logs in the response. Based on your "
     "parameters and the response size limit, this block range should work: [0x0, 0xd043b8]",
     None, 200, TOO_MANY_RESULTS, 0xD043B8 + 1, None, None),
    ("alchemy plan range", -32600,
     "You can make eth_getLogs requests with up to a 500 block range. Based on your parameters, this block range "
     "should work: [0x123c9b2, 0x123cba5]", None, 200, SPLIT, 500, 500, None),
    ("alchemy timeout", None,
     "Query timeout exceeded. Consider reducing your block range. Based on your parameters and the response size "
     "limit, this block range should work: [0x42b950f, 0x435784f]", None, None,
     TOO_MANY_RESULTS, 0x435784F - 0x42B950F + 1, None, None),
    ("alchemy rate", 429,
     "Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely "
     "ignore this message...", None, 429, RATE_LIMIT, None, None, None),
    ("quicknode", -32614, "eth_getLogs is limited to a 10,000 range", None, 413, SPLIT, 10000, 10000, None),
    ("quicknode trial", -32614, "eth_getLogs is limited to a 5 range", None, 413, SPLIT, 5, 5, None),
    ("ankr range", -32600, "block range is too wide", None, 200, SPLIT, None, None, None),
    ("ankr results", None, "query exceeds max results", None, None, TOO_MANY_RESULTS, None, None, None),
    ("max block range", None, "query exceeds max block range 100000", None, None, SPLIT, 100000, 100000, None),
    ("max is 1k", None, "eth_getLogs range is too large, max is 1k blocks", None, None, SPLIT, 1000, 1000, None),
    ("limited to 1024", None, "eth_getLogs is limited to 1024 block range", None, None, SPLIT, 1024, 1024, None),
    ("max results with range", None, "query exceeds max results 20000, retry with the range 23879634-23879696",
     None, None, TOO_MANY_RESULTS, 63, None, None),
    ("larger than max", None,
     "block range is larger than max block range, block range = 5120, max block range = 5000",
     None, None, SPLIT, 5000, 5000, None),
]


@pytest.mark.parametrize("case", VERBATIM, ids=[c[0] for c in VERBATIM])
def test_classify_verbatim_as_json_rpc_errors(case):
    _, code, message, data, status, kind, width, cap, delay = case
    decision = classify_logs_error(RpcError(code, message, data, "eth_getLogs", [{}], http_status=status))
    assert (decision.kind, decision.width, decision.cap, decision.delay) == (kind, width, cap, delay)


@pytest.mark.parametrize("case", VERBATIM, ids=[c[0] for c in VERBATIM])
def test_classify_verbatim_as_plain_messages(case):
    """The same texts with no code, no data and no HTTP status, as some clients surface them."""
    _, _, message, _, _, kind, width, _, _ = case
    decision = classify_logs_error(Exception(message))
    assert decision.kind == kind
    if kind != RATE_LIMIT:
        # Infura's structured data is gone, but the message carries the same range.
        assert decision.width == width


def test_classify_bare_http_statuses():
    assert classify_logs_error(RpcError(None, "HTTP 429: Too Many Requests", http_status=429)).kind == RATE_LIMIT
    assert classify_logs_error(RpcError(None, "HTTP 413: Payload Too Large", http_status=413)) == Decision(
        SPLIT, None, None, None, "HTTP 413: Payload Too Large")
    rate = classify_logs_error(RpcError(429, "Too Many Requests", http_status=429, retry_after=3.0))
    assert (rate.kind, rate.delay) == (RATE_LIMIT, 3.0)


@pytest.mark.parametrize(
    "exc",
    [
        RpcError(-32602, "invalid argument 0: hex string without 0x prefix"),
        RpcError(3, "execution reverted: max rate exceeded"),
        RpcError(-32000, "invalid block range params"),
        RpcError(-32000, "filter not found"),
        ArchiveStateError(-32000, "header not found", method="eth_getLogs", block=5),
        RpcTransportError(None, "connection reset", text="gave up"),
        ValueError("something else entirely"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(getattr(e, "message", e))[:30],
)
def test_classify_fatal(exc):
    assert classify_logs_error(exc).kind == FATAL


def test_width_and_cap_parsers():
    assert suggested_width("Try with this block range [0x10, 0x1f].") == 16
    assert suggested_width("retry with the range 100-199") == 100
    assert suggested_width("no range here") is None
    assert suggested_width("x", {"from": "0x1", "to": "0x1"}) == 1
    assert stated_cap("max is 2K blocks") == 2000
    assert stated_cap("limit of 1_000") == 1000
    assert stated_cap("nothing") is None


# -- the walk, through a real proxy over a real node ------------------------------------------


@pytest.fixture(scope="module")
def chain(node):
    return build_log_chain(node.url, seed=9, txs=50, max_logs_per_tx=5, dense_logs=12)


@pytest.fixture(scope="module")
def clean_logs(node, chain):
    """The truth: one unfiltered-by-range eth_getLogs straight to anvil, no code of ours."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
            "params": [{"fromBlock": hex(chain.from_block), "toBlock": hex(chain.to_block), "address": chain.address}]}
    logs = requests.post(node.url, json=body, timeout=10).json()["result"]
    assert len(logs) == chain.log_count > 100
    return logs


def walk(url, chain, **kw):
    client = kw.pop("client", None) or RpcClient(url, backoff_base=0.001, backoff_max=0.01, timeout=0.5)
    stats = FetchStats()
    seen: list[LogRange] = []
    kw.setdefault("initial_width", 64)
    kw.setdefault("max_width", 64)
    ranges = fetch_logs(client, addresses=[chain.address], topics=[chain.topic], from_block=chain.from_block,
                        to_block=chain.to_block, on_range=seen.append, stats=stats, **kw)
    assert seen == ranges
    return ranges, stats


def assert_exact_cover(ranges, chain, clean_logs):
    """Every block once, in order, none skipped, and the same logs as the clean fetch."""
    assert ranges[0].from_block == chain.from_block and ranges[-1].to_block == chain.to_block
    for a, b in zip(ranges, ranges[1:]):
        assert b.from_block == a.to_block + 1
    assert [entry for r in ranges for entry in r.logs] == clean_logs


def test_clean_walk_and_aimd_growth(node, chain, clean_logs):
    assert chain.to_block - chain.from_block + 1 > 120
    ranges, stats = walk(node.url, chain, initial_width=5, max_width=20, grow_after=2, grow_step=5)
    assert_exact_cover(ranges, chain, clean_logs)
    widths = [r.to_block - r.from_block + 1 for r in ranges][:9]
    assert widths == [5, 5, 10, 10, 15, 15, 20, 20, 20]  # additive increase, then held at the ceiling
    assert stats.splits == 0 and stats.ceiling == 20


@pytest.mark.parametrize(
    # every style states the cap of 16 blocks ("max is 16 blocks" ...) but ankr, which is halved 64 -> 32 -> 16
    "style", ["infura", "alchemy", "quicknode", "max_block_range", "limited_to", "larger_than", "max_is_k", "ankr"],
)
def test_range_caps_split_to_the_stated_width(node, chain, clean_logs, style):
    with FaultProxy(node.url, [{"kind": "range_cap", "style": style, "max_range": 16}]) as proxy:
        ranges, stats = walk(proxy.url, chain, initial_width=64, max_width=64, grow_after=1, grow_step=8)
    assert_exact_cover(ranges, chain, clean_logs)
    widths = [r.to_block - r.from_block + 1 for r in ranges]
    assert max(widths) <= 16
    first_failure = stats.failures[0][2]
    assert first_failure.kind == SPLIT
    if style == "ankr":
        assert widths[0] == 16 and [f[1] - f[0] + 1 for f in stats.failures[:2]] == [64, 32]
    else:
        assert first_failure.width == 16 and first_failure.cap == 16
        assert widths[0] == 16 and stats.ceiling == 16
        # a stated cap is learnt once: growth never goes above it, so no further failures
        assert len(stats.failures) == 1 == proxy.counts()["range_cap"]


@pytest.mark.parametrize("style", ["infura", "alchemy", "alchemy_timeout", "others", "ankr"])
def test_result_caps_follow_the_suggested_range(node, chain, clean_logs, style):
    cap = 12  # the dense block has exactly 12 logs, so every block fits alone
    with FaultProxy(node.url, [{"kind": "result_cap", "style": style, "max_results": cap}]) as proxy:
        ranges, stats = walk(proxy.url, chain, initial_width=64, max_width=64, grow_after=2, grow_step=16)
    assert_exact_cover(ranges, chain, clean_logs)
    assert all(len(r.logs) <= cap for r in ranges)
    assert stats.failures and all(f[2].kind == TOO_MANY_RESULTS for f in stats.failures)
    assert proxy.counts()["result_cap"] == len(stats.failures)
    by_start = {r.from_block: r for r in ranges}
    for lo, hi, decision in stats.failures:
        nxt = by_start.get(lo)
        if style == "ankr":
            assert decision.width is None  # no suggestion: halve
        else:
            # The next request is exactly the node's suggestion (when it was a success).
            assert decision.width is not None and decision.width < hi - lo + 1
            if nxt is not None:
                assert nxt.to_block - nxt.from_block + 1 == decision.width
    # Too many results is local density, not a cap: the window grows back past the narrow spot.
    assert stats.ceiling == 64


def test_rate_limit_never_splits_and_waits_as_told(node, chain, clean_logs):
    slept: list[float] = []
    with FaultProxy(node.url, [{"kind": "http_429", "retry_after": 3, "every": 2}]) as proxy:
        # retries=0: the client gives up at once, so the walk's own rate-limit rule is exercised.
        client = RpcClient(proxy.url, retries=0)
        ranges, stats = walk(proxy.url, chain, client=client, sleep=slept.append)
    assert_exact_cover(ranges, chain, clean_logs)
    assert stats.splits == 0 and all(r.to_block - r.from_block + 1 == 64 for r in ranges[:-1])
    assert stats.rate_limit_waits == proxy.counts()["http_429"] >= 1
    assert slept == [3.0] * stats.rate_limit_waits  # Retry-After, exactly


def test_rate_limit_that_persists_is_raised(node, chain):
    with FaultProxy(node.url, [{"kind": "infura_rate", "backoff_seconds": 1}]) as proxy:
        client = RpcClient(proxy.url, retries=0)
        with pytest.raises(RpcError) as info:
            walk(proxy.url, chain, client=client, sleep=lambda s: None, rate_limit_retries=2)
    assert info.value.code == -32005
    assert proxy.counts()["requests"] == 3


@pytest.mark.parametrize("kind", ["reset", "truncate", "malformed", "batch_missing_id", "http_error"])
def test_transport_faults_under_the_walk(node, chain, clean_logs, kind):
    plan = [{"kind": kind, "every": 3}, {"kind": "range_cap", "style": "alchemy", "max_range": 20}]
    with FaultProxy(node.url, plan, seed=1) as proxy:
        ranges, _ = walk(proxy.url, chain)
    assert_exact_cover(ranges, chain, clean_logs)


def test_single_block_that_still_fails_is_a_clear_error(node, chain):
    dense = max(chain.logs_per_block, key=chain.logs_per_block.get)
    with FaultProxy(node.url, [{"kind": "result_cap", "style": "infura", "max_results": 8}]) as proxy:
        with pytest.raises(LogsRangeError) as info:
            walk(proxy.url, chain)
    err = info.value
    assert isinstance(err, PostmortemError)
    text = str(err)
    assert f"single block {dense} still fails" in text and "more than 8 results" in text and "\n" not in text


def test_range_cap_of_zero_cannot_be_satisfied(node, chain):
    with FaultProxy(node.url, [{"kind": "range_cap", "style": "quicknode", "max_range": 0}]) as proxy:
        with pytest.raises(LogsRangeError, match=f"single block {chain.from_block} still fails"):
            walk(proxy.url, chain)
        # 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1: the loop is bounded by halving
        assert proxy.counts()["requests"] == 7


def test_fatal_errors_are_raised_as_is(node, chain):
    plan = [{"kind": "rpc_error", "methods": ["eth_getLogs"], "code": -32602, "message": "invalid argument 0"}]
    with FaultProxy(node.url, plan) as proxy:
        with pytest.raises(RpcError) as info:
            walk(proxy.url, chain)
    assert not isinstance(info.value, LogsRangeError) and info.value.code == -32602
    assert proxy.counts()["requests"] == 1


def test_caller_owned_chunks_give_the_same_logs(node, chain, clean_logs):
    client = RpcClient(node.url)
    got = []
    for lo in range(chain.from_block, chain.to_block + 1, 37):
        hi = min(chain.to_block, lo + 36)
        for piece in iter_logs(client, addresses=chain.address, topics=None, from_block=lo, to_block=hi,
                               initial_width=10, max_width=20):
            assert lo <= piece.from_block <= piece.to_block <= hi
            got.extend(piece.logs)
    assert got == clean_logs


def test_argument_checks(node):
    client = RpcClient(node.url)
    with pytest.raises(ValueError, match="addresses is empty"):
        fetch_logs(client, addresses=[], topics=None, from_block=1, to_block=2)
    with pytest.raises(ValueError, match="bad block range"):
        fetch_logs(client, addresses=None, topics=None, from_block=5, to_block=4)
    with pytest.raises(ValueError):
        fetch_logs(client, addresses=None, topics=None, from_block=1, to_block=2, initial_width=0)


# -- the walk's logic against an in-memory node, many shapes (hypothesis) --------------------


class MemoryNode:
    """A node kept in a dict, with provider-style caps; only for the splitting logic's properties.

    It answers with the same error texts the proxy uses, so the classifier is exercised too.
    """

    def __init__(self, logs_per_block, range_cap, range_style, result_cap, result_style, rogue_block=None):
        self.logs_per_block = logs_per_block
        self.range_cap, self.range_style = range_cap, range_style
        self.result_cap, self.result_style = result_cap, result_style
        self.rogue_block = rogue_block
        self.requests = []
        self.sleep = lambda s: None

    def call(self, method, params):
        flt = params[0]
        lo, hi = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
        self.requests.append((lo, hi))
        if self.range_cap and hi - lo + 1 > self.range_cap:
            status, code, message, data = range_cap_error(self.range_style, self.range_cap, lo, hi)
            raise RpcError(code, message, data, method, params, http_status=status)
        logs = [{"blockNumber": hex(b), "logIndex": hex(i)} for b in range(lo, hi + 1)
                for i in range(self.logs_per_block.get(b, 0))]
        if self.rogue_block is not None and lo <= self.rogue_block + 3 <= hi:
            logs.append({"blockNumber": hex(self.rogue_block), "logIndex": "0x0"})
        if self.result_cap and len(logs) > self.result_cap:
            first_over = int(logs[self.result_cap]["blockNumber"], 16)
            status, code, message, data = result_cap_error(self.result_style, self.result_cap, lo, max(lo, first_over - 1))
            raise RpcError(code, message, data, method, params, http_status=status)
        return logs


@settings(max_examples=150, deadline=None)
@given(
    span=st.integers(1, 400),
    start=st.integers(0, 10**7),
    density=st.dictionaries(st.integers(0, 399), st.integers(0, 6), max_size=120),
    range_cap=st.one_of(st.none(), st.integers(1, 120)),
    range_style=st.sampled_from(["infura", "alchemy", "quicknode", "ankr", "max_block_range", "larger_than"]),
    result_style=st.sampled_from(["infura", "alchemy", "alchemy_timeout", "ankr", "others"]),
    initial=st.integers(1, 300),
    grow_after=st.integers(1, 5),
)
def test_walk_covers_every_block_exactly_once(span, start, density, range_cap, range_style, result_style, initial,
                                              grow_after):
    per_block = {start + b: n for b, n in density.items() if b < span}
    node = MemoryNode(per_block, range_cap, range_style, 6, result_style)  # no block has more than 6 logs
    ranges = fetch_logs(node, addresses=None, topics=None, from_block=start, to_block=start + span - 1,
                        initial_width=initial, max_width=max(initial, 50), grow_after=grow_after)
    assert ranges[0].from_block == start and ranges[-1].to_block == start + span - 1
    for a, b in zip(ranges, ranges[1:]):
        assert b.from_block == a.to_block + 1
    got = [(int(e["blockNumber"], 16), int(e["logIndex"], 16)) for r in ranges for e in r.logs]
    assert got == [(b, i) for b in sorted(per_block) for i in range(per_block[b])]
    # Bounded effort: each success costs at most a few failed probes.
    assert len(node.requests) <= 12 * len(ranges) + 12


def test_log_outside_the_range_is_refused():
    node = MemoryNode({}, None, "infura", None, "infura", rogue_block=50)
    with pytest.raises(LogsRangeError, match="returned a log of block 50"):
        fetch_logs(node, addresses=None, topics=None, from_block=52, to_block=60, initial_width=100)
