"""The JSON-RPC client against a real node (anvil), directly and through the fault proxy."""

from __future__ import annotations

import email.utils
import logging
import threading
import time

import pytest

from postmortem.devchain.faultproxy import FaultProxy, build_log_chain
from postmortem.devchain.node import free_port
from postmortem.ingest.rpc import (
    ArchiveStateError,
    RateLimiter,
    RpcClient,
    RpcError,
    RpcProtocolError,
    RpcRateLimitedError,
    RpcTransportError,
    RpcUnreachableError,
    _parse_retry_after,
    block_of_call,
    is_rate_limit,
)
from postmortem.errors import PostmortemError

KEY = "0123456789abcdef0123456789abcdef"
REVERTER = "0x000000000000000000000000000000000000dead"


class FakeTime:
    """A clock whose sleep advances it and is recorded: waits are checked, not waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture(scope="module")
def chain(node):
    c = build_log_chain(node.url, seed=5, txs=30)
    # A contract that always reverts, for deterministic-error tests: PUSH1 0 PUSH1 0 REVERT.
    RpcClient(node.url).call("anvil_setCode", [REVERTER, "0x60006000fd"])
    return c


def fast_client(url, **kw):
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.01)
    return RpcClient(url, **kw)


def calls_for(chain, n):
    """n distinct read calls with known answers: eth_getBlockByNumber over the log chain."""
    return [("eth_getBlockByNumber", [hex(chain.from_block + i % (chain.to_block - chain.from_block)), False]) for i in range(n)]


# -- the happy path --------------------------------------------------------------------------


def test_call_and_batch_direct(node, chain):
    client = RpcClient(node.url)
    assert client.call("eth_chainId") == "0x7a69"
    assert int(client.call("eth_blockNumber", []), 16) >= chain.to_block
    calls = calls_for(chain, 7)
    results = client.batch(calls)
    assert [r["number"] for r in results] == [c[1][0] for c in calls]
    stats = client.stats()
    assert stats["requests"] == 3 and stats["calls"] == 9 and stats["retries"] == 0
    assert stats["bytes_sent"] > 0 and stats["bytes_received"] > stats["bytes_sent"]


def test_batch_splits_at_max_batch(node, chain):
    client = RpcClient(node.url, max_batch=4)
    calls = calls_for(chain, 10)
    results = client.batch(calls)
    assert [r["number"] for r in results] == [c[1][0] for c in calls]
    assert client.stats()["requests"] == 3  # 4 + 4 + 2


def test_map_batched_is_concurrent_but_bounded(node, chain):
    calls = calls_for(chain, 40)
    expected = RpcClient(node.url).batch(calls)
    with FaultProxy(node.url, [{"kind": "slow", "delay": 0.15}]) as proxy:
        client = RpcClient(proxy.url, max_batch=5, max_concurrency=3)
        start = time.monotonic()
        assert client.map_batched(calls) == expected
        elapsed = time.monotonic() - start
    assert proxy.max_in_flight == 3  # 8 batches on 3 workers, never more at once
    assert client.stats()["requests"] == 8
    assert elapsed < 8 * 0.15  # faster than one after another


def test_in_flight_bound_holds_across_caller_threads(node):
    with FaultProxy(node.url, [{"kind": "slow", "delay": 0.1}]) as proxy:
        client = RpcClient(proxy.url, max_concurrency=2)
        threads = [threading.Thread(target=client.call, args=("eth_chainId",)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert proxy.max_in_flight == 2


# -- deterministic errors: raised at once, never retried -------------------------------------


def test_revert_is_raised_not_retried(node, chain):
    client = fast_client(node.url)
    with pytest.raises(RpcError) as info:
        client.call("eth_call", [{"to": REVERTER, "data": "0x"}, "latest"])
    assert info.value.code == 3 and "revert" in info.value.message
    assert info.value.method == "eth_call"
    assert client.stats()["retries"] == 0


def test_unknown_method_and_invalid_params_not_retried(node):
    with FaultProxy(node.url, [{"kind": "rpc_error", "methods": ["eth_getLogs"], "code": -32602,
                                "message": "invalid argument 0: hex string without 0x prefix"}]) as proxy:
        client = fast_client(proxy.url)
        with pytest.raises(RpcError) as info:
            client.call("eth_getLogs", [{"fromBlock": "1"}])
        assert info.value.code == -32602 and info.value.params == [{"fromBlock": "1"}]
        with pytest.raises(RpcError) as info:
            client.call("eth_noSuchMethod", [])
        assert info.value.code == -32601
        assert proxy.counts()["requests"] == 2 and client.stats()["retries"] == 0


def test_batch_item_errors_raise_first_or_return(node, chain):
    client = RpcClient(node.url)
    calls = [("eth_chainId", []), ("eth_call", [{"to": REVERTER}, "latest"]), ("eth_chainId", [])]
    with pytest.raises(RpcError) as info:
        client.batch(calls)
    assert info.value.index == 1
    results = client.batch(calls, return_errors=True)
    assert results[0] == results[2] == "0x7a69"
    assert isinstance(results[1], RpcError) and results[1].index == 1


def test_http_4xx_without_json_is_not_retried(node):
    with FaultProxy(node.url, [{"kind": "http_error", "status": 401, "body": "Unauthorized"}]) as proxy:
        client = fast_client(proxy.url)
        with pytest.raises(RpcError) as info:
            client.call("eth_chainId")
    assert info.value.http_status == 401 and "Unauthorized" in str(info.value)
    assert proxy.counts()["requests"] == 1


@pytest.mark.parametrize(
    "method, params, message, block",
    [
        ("eth_call", [{"to": REVERTER}, "0x10"], "missing trie node 6e5f0b1c (path )", 16),
        ("eth_getBalance", ["0x" + "11" * 20, "0x12d687"], "header not found", 1234567),
        ("eth_getStorageAt", ["0x" + "11" * 20, "0x0", "0x3e8"], "historical state 0xabc is not available", 1000),
        ("eth_call", [{"to": REVERTER}, {"blockNumber": "0x20"}], "required historical state unavailable (reexec=128)", 32),
        ("eth_getCode", ["0x" + "11" * 20, "0x5"], "state not available", 5),
    ],
)
def test_archive_state_errors_name_the_block(node, method, params, message, block):
    plan = [{"kind": "rpc_error", "methods": [method], "code": -32000, "message": message}]
    with FaultProxy(node.url, plan) as proxy:
        client = fast_client(proxy.url)
        with pytest.raises(ArchiveStateError) as info:
            client.call(method, params)
    err = info.value
    assert isinstance(err, PostmortemError) and isinstance(err, RpcError)
    assert err.block == block
    text = str(err)
    assert f"block {block}" in text and "archive node" in text and "\n" not in text
    assert proxy.counts()["requests"] == 1  # not retried


def test_block_of_call():
    assert block_of_call("eth_call", [{}, "0x10"]) == 16
    assert block_of_call("eth_call", [{}]) == "latest"
    assert block_of_call("eth_getBalance", ["0xab", "finalized"]) == "finalized"
    assert block_of_call("eth_getLogs", [{}]) is None


# -- transport faults: retried until the answer is right -------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "reset", "every": 2},
        {"kind": "truncate", "every": 2},
        {"kind": "malformed", "every": 2},
        {"kind": "http_error", "status": 502, "every": 2},
        {"kind": "http_error", "status": 503, "body": "", "every": 3},
        {"kind": "slow", "delay": 1.5, "every": 3},
        {"kind": "batch_missing_id", "every": 2},
        {"kind": "batch_bad_item", "every": 2},
        {"kind": "batch_reorder"},
        {"kind": "http_429", "every": 2},
        {"kind": "infura_rate", "backoff_seconds": 0, "every": 2},
    ],
    ids=lambda r: r["kind"] + str(r.get("status", "")),
)
def test_faults_are_survived(node, chain, rule):
    calls = calls_for(chain, 12)
    expected = RpcClient(node.url).batch(calls)
    with FaultProxy(node.url, [rule], seed=2) as proxy:
        client = fast_client(proxy.url, max_batch=4, timeout=0.5)
        assert client.batch(calls) == expected
        assert client.call("eth_getBlockByNumber", calls[0][1]) == expected[0]
        assert client.map_batched(calls) == expected
    assert proxy.counts()[rule["kind"]] >= 1
    if rule["kind"] != "batch_reorder":  # reordering is legal JSON-RPC: nothing to retry
        assert client.stats()["retries"] >= 1


def test_retry_after_is_honoured_fake_clock(node):
    t = FakeTime()
    with FaultProxy(node.url, [{"kind": "http_429", "retry_after": 7, "times": 2}]) as proxy:
        client = RpcClient(proxy.url, clock=t.clock, sleep=t.sleep, seed=1)
        assert client.call("eth_chainId") == "0x7a69"
    waits = [s for s in t.sleeps if s > 0.01]
    assert len(waits) == 2
    assert all(7 <= w <= 8 for w in waits)  # the node's 7 s, plus at most 10 % jitter
    assert client.stats()["rate_limited"] == 2


def test_infura_backoff_seconds_is_honoured(node):
    t = FakeTime()
    with FaultProxy(node.url, [{"kind": "infura_rate", "backoff_seconds": 29, "times": 1}]) as proxy:
        client = RpcClient(proxy.url, clock=t.clock, sleep=t.sleep, seed=1)
        assert client.call("eth_chainId") == "0x7a69"
    assert any(29 <= s <= 30 for s in t.sleeps)


def test_retry_after_on_503_is_honoured(node):
    t = FakeTime()
    with FaultProxy(node.url, [{"kind": "http_error", "status": 503, "retry_after": 4, "times": 1}]) as proxy:
        client = RpcClient(proxy.url, clock=t.clock, sleep=t.sleep)
        assert client.call("eth_chainId") == "0x7a69"
    assert len(t.sleeps) == 1 and 4 <= t.sleeps[0] <= 4.4
    assert client.stats()["transport_errors"] == 1


def test_retry_after_is_honoured_real_clock(node):
    with FaultProxy(node.url, [{"kind": "http_429", "retry_after": 1, "times": 1}]) as proxy:
        client = RpcClient(proxy.url, backoff_base=0.001)
        start = time.monotonic()
        assert client.call("eth_chainId") == "0x7a69"
        assert time.monotonic() - start >= 1.0


def test_retry_after_capped(node):
    t = FakeTime()
    with FaultProxy(node.url, [{"kind": "http_429", "retry_after": 3600, "times": 1}]) as proxy:
        client = RpcClient(proxy.url, clock=t.clock, sleep=t.sleep, max_retry_after=60)
        client.call("eth_chainId")
    assert max(t.sleeps) <= 66


def test_parse_retry_after_forms():
    now = time.time()
    assert _parse_retry_after("3", now) == 3.0
    assert _parse_retry_after("1.5", now) == 1.5
    assert _parse_retry_after(None, now) is None
    assert _parse_retry_after("soon", now) is None
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert 18 <= _parse_retry_after(date, now) <= 21
    assert _parse_retry_after(email.utils.formatdate(now - 50, usegmt=True), now) == 0.0


def test_rate_limit_gives_up_clearly(node):
    t = FakeTime()
    with FaultProxy(node.url, [{"kind": "infura_rate", "backoff_seconds": 2}]) as proxy:
        client = RpcClient(proxy.url + f"/v3/{KEY}", retries=3, clock=t.clock, sleep=t.sleep)
        with pytest.raises(RpcRateLimitedError) as info:
            client.call("eth_getLogs", [{}])
    err = info.value
    assert isinstance(err, PostmortemError)
    assert err.code == -32005 and err.http_status == 429 and err.retry_after == 2
    assert "after 4 attempts" in str(err) and "requests-per-second" in str(err)
    assert KEY not in str(err) and "/v3/***" in str(err)
    assert proxy.counts()["requests"] == 4


def test_transport_gives_up_clearly(node, caplog):
    caplog.set_level(logging.DEBUG)
    with FaultProxy(node.url, [{"kind": "reset"}]) as proxy:
        client = fast_client(proxy.url + f"/v3/{KEY}?apikey=s3cretvalue", retries=2)
        with pytest.raises(RpcTransportError) as info:
            client.call("eth_chainId")
    err = info.value
    text = str(err)
    assert "after 3 attempts" in text and "connection reset" in text and "\n" not in text
    assert proxy.counts()["requests"] == 3
    for leak in (KEY, "s3cretvalue"):
        assert leak not in text and leak not in repr(err) and leak not in caplog.text
    assert err.__cause__ is None and err.__suppress_context__  # the HTTP library's text is not chained
    assert "retry 1 of 2" in caplog.text


def test_missing_id_that_persists_is_a_protocol_error(node, chain):
    with FaultProxy(node.url, [{"kind": "batch_missing_id"}]) as proxy:
        client = fast_client(proxy.url, retries=2)
        with pytest.raises(RpcProtocolError) as info:
            client.batch(calls_for(chain, 3))
    assert "answers missing or malformed" in str(info.value) and "max_batch" in str(info.value)
    # each round re-sends only what is still missing: 3 calls, then 1, then 1
    assert proxy.counts()["calls"] == 5


def test_node_batch_limit_lowers_batch_size(node, chain):
    calls = calls_for(chain, 30)
    expected = RpcClient(node.url).batch(calls)
    with FaultProxy(node.url, [{"kind": "batch_limit", "max_batch": 8}]) as proxy:
        client = fast_client(proxy.url, max_batch=30)
        assert client.batch(calls) == expected
        assert client.stats()["batch_cap"] == 7  # 30 -> 15 -> 7
        assert client.map_batched(calls) == expected
    assert proxy.counts()["batch_limit"] == 2


# -- unreachable and invalid URLs ------------------------------------------------------------


def test_unreachable_url_is_one_clear_sentence():
    port = free_port()  # nothing listens there
    client = RpcClient(f"http://127.0.0.1:{port}/v3/{KEY}")
    start = time.monotonic()
    with pytest.raises(RpcUnreachableError) as info:
        client.call("eth_chainId")
    assert time.monotonic() - start < 5  # a typo fails fast, not after the full backoff
    err = info.value
    assert isinstance(err, PostmortemError)
    text = str(err)
    assert text == (
        f"cannot reach the JSON-RPC node at http://127.0.0.1:{port}/v3/*** (connection refused); "
        "check the RPC URL and that the node is running"
    )
    assert err.__cause__ is None


def test_non_http_url_is_refused():
    with pytest.raises(PostmortemError, match="not an http"):
        RpcClient(f"wss://mainnet.infura.io/ws/v3/{KEY}")
    try:
        RpcClient(f"wss://mainnet.infura.io/ws/v3/{KEY}")
    except PostmortemError as exc:
        assert KEY not in str(exc)
    assert KEY not in repr(RpcClient(f"https://mainnet.infura.io/v3/{KEY}"))


# -- classification helpers ------------------------------------------------------------------


def test_is_rate_limit():
    assert is_rate_limit(-32005, "project ID request rate exceeded", 429)
    assert is_rate_limit(-32005, "project ID request rate exceeded")
    assert is_rate_limit(429, "Your app has exceeded its compute units per second capacity.")
    assert is_rate_limit(None, "", 429)
    assert not is_rate_limit(-32005, "query returned more than 10000 results. Try with this block range [0x1, 0x2].")
    assert not is_rate_limit(3, "execution reverted: rate limit of the oracle exceeded")
    assert not is_rate_limit(-32602, "range 1000000 exceeds limit of 10000")


# -- the token bucket ------------------------------------------------------------------------


def test_rate_limiter_average_rate():
    t = FakeTime()
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    start = t.now
    for _ in range(30):
        limiter.acquire()
    # 10 in the first burst, 20 more at 10 per second
    assert t.now - start == pytest.approx(2.0, abs=0.01)


def test_rate_limiter_big_batches_go_into_debt():
    t = FakeTime()
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    limiter.acquire(25)  # bucket full: allowed, leaves 15 tokens of debt
    assert t.now == 1000.0
    limiter.acquire(1)  # waits out the debt: (15 + 1) / 10 s
    assert t.now - 1000.0 == pytest.approx(1.6, abs=0.01)


def test_rate_limiter_pause_holds_everybody():
    t = FakeTime()
    limiter = RateLimiter(None, clock=t.clock, sleep=t.sleep)
    limiter.pause(5)
    limiter.pause(2)  # never shortens
    limiter.acquire()
    assert t.now - 1000.0 == pytest.approx(5.0, abs=0.01)


def test_rate_limiter_threads_real_clock():
    limiter = RateLimiter(100)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(50)]) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 3.0  # 200 tokens: 100 burst + 100 at 100 per second


def test_client_counts_a_batch_as_its_calls(node, chain):
    t = FakeTime()
    client = RpcClient(node.url, requests_per_second=20, max_batch=5, clock=t.clock, sleep=t.sleep)
    client.batch(calls_for(chain, 30))  # 30 calls: 20 from the burst, 10 more at 20 per second
    assert client.stats()["waited_seconds"] == pytest.approx(0.5, abs=0.05)


def test_backoff_delay_bounds():
    client = RpcClient("http://127.0.0.1:1", backoff_base=0.25, backoff_max=30, seed=0)
    for attempt in range(12):
        cap = min(30, 0.25 * 2**attempt)
        assert cap / 2 <= client.backoff_delay(attempt) <= cap
    assert client.backoff_delay(500) <= 30
