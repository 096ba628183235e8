"""The fault proxy acting like a hosted provider (issue 12): Alchemy's eth_getLogs rule "up to a
2,000-block range, OR any range with at most 10,000 results" (scaled down here), a requests-per-
second meter counting every call of a batch, and random 429s; the RPC client and the adaptive
log walk get exactly the node's logs through all of it."""

from __future__ import annotations

import time

import pytest

from postmortem.devchain.faultproxy import Fault, FaultProxy, build_log_chain, hosted_provider_plan
from postmortem.ingest.ranges import classify_logs_error, fetch_logs
from postmortem.ingest.rpc import RpcClient, RpcError


@pytest.fixture(scope="module")
def chain(node):
    return build_log_chain(node.url, seed=12, txs=60, dense_logs=12)


def _direct(node, chain, lo, hi):
    c = RpcClient(node.url)
    try:
        return c.call("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi), "address": chain.address}])
    finally:
        c.close()


def _ask(client, chain, lo, hi):
    return client.call("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi), "address": chain.address}])


def test_alchemy_rule_range_or_result_count(node, chain):
    max_range, max_results = 20, 10
    dense = max(chain.logs_per_block, key=chain.logs_per_block.get)
    assert chain.logs_per_block[dense] > max_results
    plan = [{"kind": "provider_logs", "max_range": max_range, "max_results": max_results}]
    with FaultProxy(node.url, plan) as proxy:
        client = RpcClient(proxy.url, retries=0)
        try:
            # Within the block-range cap: answered whatever it holds (the dense block is over the count).
            lo = max(chain.from_block, dense - 5)
            assert _ask(client, chain, lo, lo + max_range - 1) == _direct(node, chain, lo, lo + max_range - 1)
            # Wider than the cap but holding few logs: answered.
            wide = max_range + 10
            quiet = [b for b in range(chain.from_block, chain.to_block - wide)
                     if 0 < sum(chain.logs_per_block.get(x, 0) for x in range(b, b + wide)) <= max_results]
            assert quiet, "the log chain has a quiet stretch"
            b = quiet[0]
            assert _ask(client, chain, b, b + wide - 1) == _direct(node, chain, b, b + wide - 1)
            # Wider than the cap and over the count: refused in the provider's own words, with a range that fits.
            with pytest.raises(RpcError) as err:
                _ask(client, chain, chain.from_block, chain.to_block)
            assert "Log response size exceeded" in err.value.message and "up to a 2K block range" in err.value.message
            decision = classify_logs_error(err.value)
            assert decision.width and decision.width < chain.to_block - chain.from_block + 1
            hi = chain.from_block + decision.width - 1
            assert len(_direct(node, chain, chain.from_block, hi)) <= max_results
            assert proxy.counts()["provider_logs"] == 1
        finally:
            client.close()


def test_fetch_logs_through_a_hosted_provider_gets_every_log(node, chain):
    plan = hosted_provider_plan(requests_per_second=50, max_range=20, max_results=10, random_429=0.2, retry_after=0)
    with FaultProxy(node.url, plan, seed=5) as proxy:
        client = RpcClient(proxy.url, backoff_base=0.01, backoff_max=0.05, retries=20)
        try:
            got = fetch_logs(client, addresses=chain.address, topics=None, from_block=chain.from_block,
                             to_block=chain.to_block)
        finally:
            client.close()
        counts = proxy.counts()
    logs = [lg for r in got for lg in r.logs]
    assert logs == _direct(node, chain, chain.from_block, chain.to_block)
    assert counts.get("http_429", 0) > 0 and counts.get("provider_logs", 0) > 0
    assert client.stats()["retries_rate_limit"] >= counts.get("http_429", 0) - counts.get("throughput", 0) - 1


def test_throughput_meters_every_call_of_a_batch(node):
    rate = 10
    with FaultProxy(node.url, [{"kind": "throughput", "requests_per_second": rate}]) as proxy:
        fast = RpcClient(proxy.url, retries=0)
        try:
            refused = 0
            for _ in range(3):  # 3 batches of 10 calls at once: the second is over 10 calls/s
                try:
                    fast.batch([("eth_blockNumber", [])] * rate)
                except RpcError as exc:
                    assert exc.http_status == 429
                    refused += 1
            assert refused >= 1 and proxy.counts()["throughput"] == refused
        finally:
            fast.close()
        time.sleep(1.2)
        before = proxy.counts()["throughput"]
        polite = RpcClient(proxy.url, requests_per_second=rate * 0.8, retries=0)
        try:
            for _ in range(12):
                polite.call("eth_blockNumber", [])
        finally:
            polite.close()
        assert proxy.counts()["throughput"] == before  # a client under the rate is never refused


def test_throughput_options_are_checked():
    with pytest.raises(ValueError):
        Fault("throughput", options={"requests_per_second": 0})
    with pytest.raises(ValueError):
        Fault("throughput", options={"per": "second"})
    with pytest.raises(ValueError):
        Fault("provider_logs", options={"style": "nope"})
