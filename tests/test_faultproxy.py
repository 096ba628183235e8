"""The fault proxy itself, seen from a plain HTTP client: it forwards faithfully, injects each
fault the way providers do, follows its plan deterministically, and stops promptly."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from postmortem.devchain.faultproxy import (
    RANGE_CAP_STYLES,
    RESULT_CAP_STYLES,
    Fault,
    FaultProxy,
    build_log_chain,
    range_cap_error,
    result_cap_error,
)
from postmortem.devchain.node import start_anvil


@pytest.fixture(scope="module")
def chain(node):
    return build_log_chain(node.url, seed=3, txs=40)


def rpc(url, method, params=(), id=1, **kw):
    return requests.post(url, json={"jsonrpc": "2.0", "id": id, "method": method, "params": list(params)}, timeout=10, **kw)


def get_logs_call(lo, hi, id=1, address=None):
    flt = {"fromBlock": hex(lo), "toBlock": hex(hi)}
    if address:
        flt["address"] = address
    return {"jsonrpc": "2.0", "id": id, "method": "eth_getLogs", "params": [flt]}


def direct_logs(node, chain, lo, hi):
    return rpc(node.url, "eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi), "address": chain.address}]).json()["result"]


# -- verbatim provider texts (rpc-providers.md) ---------------------------------------------


def test_range_cap_texts_are_verbatim():
    assert range_cap_error("infura", 10000, 0, 999_999) == (200, -32602, "range 1000000 exceeds limit of 10000", None)
    assert range_cap_error("alchemy", 500, 0x123C9B2, 0x123D000)[2] == (
        "You can make eth_getLogs requests with up to a 500 block range. Based on your parameters, "
        "this block range should work: [0x123c9b2, 0x123cba5]"
    )
    assert range_cap_error("quicknode", 10000, 0, 20000) == (413, -32614, "eth_getLogs is limited to a 10,000 range", None)
    assert range_cap_error("ankr", 3000, 0, 5000)[1:3] == (-32600, "block range is too wide")
    assert range_cap_error("max_block_range", 100000, 0, 200000)[2] == "query exceeds max block range 100000"
    assert range_cap_error("max_is_k", 1000, 0, 5000)[2] == "eth_getLogs range is too large, max is 1k blocks"
    assert range_cap_error("limited_to", 1024, 0, 5000)[2] == "eth_getLogs is limited to 1024 block range"
    assert range_cap_error("larger_than", 5000, 1, 5120)[2] == (
        "block range is larger than max block range, block range = 5120, max block range = 5000"
    )


def test_result_cap_texts_are_verbatim():
    status, code, message, data = result_cap_error("infura", 10000, 0xBDE5F8, 0x102DBCC)
    assert (status, code) == (200, -32005)
    assert message == "query returned more than 10000 results. Try with this block range [0xBDE5F8, 0x102DBCC]."
    assert data == {"from": "0xBDE5F8", "limit": 10000, "to": "0x102DBCC"}
    assert result_cap_error("alchemy", 10000, 0, 0xD043B8)[1:3] == (
        -32602,
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit "
        "on the response size, or you can request any block range with a cap of 10K logs in the response. Based "
        "on your parameters and the response size limit, this block range should work: [0x0, 0xd043b8]",
    )
    assert result_cap_error("alchemy_timeout", 1, 0x42B950F, 0x435784F)[2] == (
        "Query timeout exceeded. Consider reducing your block range. Based on your parameters and the response "
        "size limit, this block range should work: [0x42b950f, 0x435784f]"
    )
    assert result_cap_error("ankr", 200000, 0, 1)[2] == "query exceeds max results"
    assert result_cap_error("others", 20000, 23879634, 23879696)[2] == (
        "query exceeds max results 20000, retry with the range 23879634-23879696"
    )


# -- forwarding ------------------------------------------------------------------------------


def test_forwards_single_and_batch_unchanged(node, chain):
    batch = [get_logs_call(chain.from_block, chain.to_block, id=1, address=chain.address),
             {"jsonrpc": "2.0", "id": "two", "method": "eth_chainId", "params": []}]
    with FaultProxy(node.url, []) as proxy:
        assert proxy.url.startswith("http://127.0.0.1:")
        single = rpc(proxy.url, "eth_blockNumber")
        assert single.status_code == 200
        assert single.json() == rpc(node.url, "eth_blockNumber").json()
        via = requests.post(proxy.url, json=batch, timeout=10).json()
        assert via == requests.post(node.url, json=batch, timeout=10).json()
        assert via[0]["result"] and len(via[0]["result"]) == chain.log_count
        assert proxy.counts() == {"requests": 2, "calls": 3, "upstream_requests": 2}


def test_build_log_chain_is_deterministic_and_dense_somewhere(chain):
    assert chain.log_count == sum(chain.logs_per_block.values())
    assert max(chain.logs_per_block.values()) == 12  # the dense block
    assert chain.to_block - chain.from_block + 1 > len(chain.logs_per_block)  # there are empty blocks
    other = start_anvil()
    try:
        again = build_log_chain(other.url, seed=3, txs=40)
    finally:
        other.stop()
    assert again == chain


# -- request-level faults, seen raw ----------------------------------------------------------


def test_http_429_with_retry_after(node):
    with FaultProxy(node.url, [{"kind": "http_429", "retry_after": 2}]) as proxy:
        r = rpc(proxy.url, "eth_blockNumber", id=5)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    assert r.json()["id"] == 5 and r.json()["error"]["code"] == 429
    assert "compute units per second capacity" in r.json()["error"]["message"]
    assert proxy.counts()["http_429"] == 1 and "upstream_requests" not in proxy.counts()


def test_http_429_plain(node):
    with FaultProxy(node.url, [{"kind": "http_429", "style": "plain"}]) as proxy:
        r = rpc(proxy.url, "eth_blockNumber")
    assert r.status_code == 429 and "Retry-After" not in r.headers and r.text.startswith("Too Many Requests")


def test_infura_rate_limit_body(node):
    with FaultProxy(node.url, [{"kind": "infura_rate", "backoff_seconds": 29}]) as proxy:
        r = requests.post(proxy.url, json=[get_logs_call(1, 2, id=1), get_logs_call(1, 2, id=2)], timeout=10)
    assert r.status_code == 429
    body = r.json()
    assert [b["id"] for b in body] == [1, 2]
    assert body[0]["error"] == {
        "code": -32005,
        "message": "project ID request rate exceeded",
        "data": {"rate": {"allowed_rps": 1, "backoff_seconds": 29, "current_rps": 1.1}},
    }


def test_reset_closes_without_answer(node):
    with FaultProxy(node.url, [{"kind": "reset"}]) as proxy:
        with pytest.raises(requests.exceptions.ConnectionError):
            rpc(proxy.url, "eth_blockNumber")
        assert proxy.counts()["reset"] == 1


def test_truncated_body(node):
    with FaultProxy(node.url, [{"kind": "truncate", "keep": 0.3}]) as proxy:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            rpc(proxy.url, "eth_chainId")


def test_slow_answer(node):
    with FaultProxy(node.url, [{"kind": "slow", "delay": 0.3}]) as proxy:
        start = time.monotonic()
        r = rpc(proxy.url, "eth_chainId")
        assert time.monotonic() - start >= 0.3
    assert r.json()["result"] == "0x7a69"


def test_malformed_and_http_error(node):
    with FaultProxy(node.url, [{"kind": "malformed", "every": 2}, {"kind": "http_error", "status": 503, "every": 2}]) as proxy:
        answers = [rpc(proxy.url, "eth_chainId") for _ in range(4)]
    # request 1: neither (each rule is at 1 of 2); request 2: malformed fires first and wins.
    assert answers[0].json()["result"] == "0x7a69"
    with pytest.raises(ValueError):
        json.loads(answers[1].text)
    assert answers[2].status_code == 503 and "Bad Gateway" in answers[2].text
    assert proxy.counts()["malformed"] == 2 and proxy.counts()["http_error"] == 1


def test_batch_missing_bad_and_reordered(node):
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId", "params": []} for i in range(1, 7)]
    with FaultProxy(node.url, [{"kind": "batch_missing_id", "times": 1}, {"kind": "batch_bad_item", "times": 1},
                               {"kind": "batch_reorder", "times": 1}], seed=4) as proxy:
        missing = requests.post(proxy.url, json=batch, timeout=10).json()
        bad = requests.post(proxy.url, json=batch, timeout=10).json()
        reordered = requests.post(proxy.url, json=batch, timeout=10).json()
        clean = requests.post(proxy.url, json=batch, timeout=10).json()
        single = rpc(proxy.url, "eth_chainId").json()  # batch faults never touch single calls
    assert len(missing) == 5 and {a["id"] for a in missing} < set(range(1, 7))
    assert sum(1 for a in bad if "result" not in a and "error" not in a) == 1
    assert [a["id"] for a in reordered] != list(range(1, 7)) and sorted(a["id"] for a in reordered) == list(range(1, 7))
    assert [a["id"] for a in clean] == list(range(1, 7))
    assert single["result"] == "0x7a69"


def test_batch_limit_like_erigon_and_geth(node):
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId", "params": []} for i in range(5)]
    with FaultProxy(node.url, [{"kind": "batch_limit", "max_batch": 4}]) as proxy:
        r = requests.post(proxy.url, json=batch, timeout=10).json()
        ok = requests.post(proxy.url, json=batch[:4], timeout=10).json()
    assert r == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch limit 4 exceeded"}}
    assert len(ok) == 4
    with FaultProxy(node.url, [{"kind": "batch_limit", "max_batch": 4, "style": "geth"}]) as proxy:
        assert requests.post(proxy.url, json=batch, timeout=10).json()["error"]["message"] == "batch too large"


# -- call-level faults -----------------------------------------------------------------------


@pytest.mark.parametrize("style", sorted(RANGE_CAP_STYLES))
def test_range_cap_styles(node, chain, style):
    cap = 10
    lo = chain.from_block
    with FaultProxy(node.url, [{"kind": "range_cap", "style": style, "max_range": cap}]) as proxy:
        over = requests.post(proxy.url, json=get_logs_call(lo, lo + cap), timeout=10)
        under = requests.post(proxy.url, json=get_logs_call(lo, lo + cap - 1, address=chain.address), timeout=10)
        in_batch = requests.post(proxy.url, json=[get_logs_call(lo, lo + cap, id=1),
                                                  get_logs_call(lo, lo + 1, id=2, address=chain.address)], timeout=10)
    status, code, message, _ = range_cap_error(style, cap, lo, lo + cap)
    assert over.status_code == status
    assert over.json()["error"] == {"code": code, "message": message}
    assert under.json()["result"] == direct_logs(node, chain, lo, lo + cap - 1)
    first, second = in_batch.json()
    assert in_batch.status_code == 200  # per-call errors inside a batch ride on HTTP 200
    assert first["error"]["message"] == message and "result" in second
    assert proxy.counts()["range_cap"] == 2


@pytest.mark.parametrize("style", sorted(RESULT_CAP_STYLES))
def test_result_cap_suggests_a_range_that_fits(node, chain, style):
    cap = 6
    lo, hi = chain.from_block, chain.to_block
    with FaultProxy(node.url, [{"kind": "result_cap", "style": style, "max_results": cap}]) as proxy:
        r = requests.post(proxy.url, json=get_logs_call(lo, hi, address=chain.address), timeout=10).json()
    logs = direct_logs(node, chain, lo, hi)
    blocks = sorted(int(entry["blockNumber"], 16) for entry in logs)
    suggested_to = blocks[cap] - 1
    assert sum(1 for b in blocks if b <= suggested_to) <= cap  # the suggestion fits ...
    assert sum(1 for b in blocks if b <= suggested_to + 1) > cap  # ... and is the widest that does
    assert r["error"]["message"] == result_cap_error(style, cap, lo, suggested_to)[2]


def test_result_cap_under_the_cap_passes(node, chain):
    with FaultProxy(node.url, [{"kind": "result_cap", "max_results": 10_000}]) as proxy:
        r = requests.post(proxy.url, json=get_logs_call(chain.from_block, chain.to_block, address=chain.address), timeout=10)
    assert len(r.json()["result"]) == chain.log_count
    assert "result_cap" not in proxy.counts()


def test_result_cap_resolves_latest(node, chain):
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
            "params": [{"fromBlock": hex(chain.from_block), "toBlock": "latest", "address": chain.address}]}
    with FaultProxy(node.url, [{"kind": "range_cap", "max_range": 5}]) as proxy:
        r = requests.post(proxy.url, json=call, timeout=10).json()
    assert r["error"]["message"] == f"range {chain.to_block - chain.from_block + 1} exceeds limit of 5"


def test_rpc_error_with_http_status(node):
    plan = [{"kind": "rpc_error", "methods": ["eth_call"], "code": -32000, "message": "missing trie node abc",
             "http_status": 500}]
    with FaultProxy(node.url, plan) as proxy:
        r = rpc(proxy.url, "eth_call", [{"to": "0x" + "00" * 20}, "0x1"])
        other = rpc(proxy.url, "eth_chainId")
    assert r.status_code == 500 and r.json()["error"] == {"code": -32000, "message": "missing trie node abc"}
    assert other.json()["result"] == "0x7a69"


# -- the plan: selectors, determinism, counters ----------------------------------------------


def test_every_skip_times():
    rule = Fault.from_spec({"kind": "reset", "every": 2, "skip": 1, "times": 2})
    from postmortem.devchain.faultproxy import _RuleState

    state = _RuleState(rule, seed=0, index=0)
    fired = [state.fire() for _ in range(10)]
    # match 1 skipped; then every 2nd of the rest (matches 3 and 5), at most twice.
    assert fired == [False, False, True, False, True, False, False, False, False, False]


def _events(node, seed):
    plan = [{"kind": "malformed", "probability": 0.3}, {"kind": "http_error", "probability": 0.3}]
    with FaultProxy(node.url, plan, seed=seed) as proxy:
        for _ in range(30):
            rpc(proxy.url, "eth_chainId")
        return list(proxy.events), proxy.counts()


def test_same_seed_same_faults(node):
    first, counts = _events(node, seed=11)
    again, _ = _events(node, seed=11)
    other, _ = _events(node, seed=12)
    assert first == again
    assert first != other
    assert counts["requests"] == 30
    assert 0 < counts.get("malformed", 0) + counts.get("http_error", 0) < 30


def test_methods_selector(node):
    with FaultProxy(node.url, [{"kind": "http_error", "methods": "eth_getLogs"}]) as proxy:
        assert rpc(proxy.url, "eth_chainId").status_code == 200
        assert requests.post(proxy.url, json=get_logs_call(1, 1), timeout=10).status_code == 502


def test_counts_max_in_flight(node):
    with FaultProxy(node.url, [{"kind": "slow", "delay": 0.3}]) as proxy:
        threads = [threading.Thread(target=rpc, args=(proxy.url, "eth_chainId")) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert proxy.max_in_flight == 3
    assert proxy.counts()["slow"] == 3


def test_plan_validation():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_spec({"kind": "meteor"})
    with pytest.raises(ValueError, match="valid: delay"):
        Fault.from_spec({"kind": "slow", "dealy": 1})
    with pytest.raises(ValueError, match="style"):
        Fault.from_spec({"kind": "range_cap", "style": "nobody"})
    with pytest.raises(ValueError):
        Fault.from_spec({"kind": "slow", "delay": 3600})
    with pytest.raises(ValueError):
        Fault.from_spec({"every": 2})


def test_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("http://example.com:8545", [])
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("https://127.0.0.1:8545", [])
    FaultProxy("http://localhost:8545", [])  # constructing does not connect


def test_stop_is_prompt_with_a_slow_request_in_flight(node):
    proxy = FaultProxy(node.url, [{"kind": "slow", "delay": 30}]).start()
    outcome = {}

    def slow_call():
        try:
            outcome["r"] = rpc(proxy.url, "eth_chainId")
        except requests.exceptions.RequestException as exc:
            outcome["exc"] = exc

    t = threading.Thread(target=slow_call)
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    proxy.stop()
    t.join(5)
    assert time.monotonic() - start < 3
    assert not t.is_alive() and "exc" in outcome
    with pytest.raises(requests.exceptions.ConnectionError):
        rpc(proxy.url, "eth_chainId")
