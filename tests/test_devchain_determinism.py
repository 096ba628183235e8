"""The same scenario gives the same chain, to the wei, every time (issue 16).

Each scenario is started twice on fresh anvil nodes, seconds apart (so a different wall-clock
time), and every block from genesis to the scenario's end must have the same hash: the hash
commits to the timestamp, the transactions, the receipts (every log) and the state root (every
balance and storage slot). The ground truth and the manifest must be equal too, apart from
where and when the node runs.
"""

from __future__ import annotations

import pytest
import requests

from conftest import _start

pytestmark = pytest.mark.chain

# Manifest fields that say where and when this node runs, not what is on the chain.
RUNTIME_FIELDS = {"pid", "port", "rpc_url", "started_at"}


def _blocks(url: str, end: int) -> list[dict]:
    """Every header from 0 to ``end`` in JSON-RPC batches (hash, timestamp, roots, ...)."""
    out: list[dict] = []
    session = requests.Session()
    session.trust_env = False
    for start in range(0, end + 1, 200):
        body = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(n), False]}
                for n in range(start, min(end, start + 199) + 1)]
        answers = sorted(session.post(url, json=body, timeout=60).json(), key=lambda a: a["id"])
        out += [a["result"] for a in answers]
    return out


def _first_difference(a: list[dict], b: list[dict]) -> str:
    for x, y in zip(a, b):
        if x["hash"] != y["hash"]:
            fields = sorted(k for k in x if k not in ("hash", "parentHash") and x.get(k) != y.get(k))
            return (f"block {int(x['number'], 16)} differs first, in {fields} "
                    f"(timestamps {int(x['timestamp'], 16)} vs {int(y['timestamp'], 16)})")
    return f"the chains have {len(a)} and {len(b)} blocks"


def _manifest_content(m: dict) -> dict:
    summary = {k: v for k, v in m["summary"].items() if k != "seconds"}  # set-up's wall time
    return {**{k: v for k, v in m.items() if k not in RUNTIME_FIELDS}, "summary": summary}


def _assert_same_chain(one, two) -> None:
    end = one.manifest["summary"]["end_block"]
    assert two.manifest["summary"]["end_block"] == end
    a, b = _blocks(one.url, end), _blocks(two.url, end)
    assert len(a) == len(b) == end + 1
    assert [x["hash"] for x in a] == [y["hash"] for y in b], _first_difference(a, b)
    assert one.ground_truth == two.ground_truth
    assert _manifest_content(one.manifest) == _manifest_content(two.manifest)


def test_small_is_the_same_chain_every_time(small_chain, tmp_path_factory):
    again = _start(tmp_path_factory, "small")
    try:
        _assert_same_chain(small_chain, again)
    finally:
        again.node.stop()


def test_mixed_v30_is_the_same_chain_every_time(tmp_path_factory):
    one = _start(tmp_path_factory, "mixed-v30")
    try:
        two = _start(tmp_path_factory, "mixed-v30")
        try:
            _assert_same_chain(one, two)
        finally:
            two.node.stop()
    finally:
        one.node.stop()


def test_incident_is_the_same_chain_every_time(incident_chain, tmp_path_factory):
    again = _start(tmp_path_factory, "wsteth-capo-2026-03-10")
    try:
        _assert_same_chain(incident_chain, again)
        # The symptom, checked directly: every LiquidationCall amount to the wei.
        amounts = [(x["block"], x["debt_to_cover"], x["liquidated_collateral_amount"])
                   for x in again.ground_truth["liquidations"]]
        assert amounts == [(x["block"], x["debt_to_cover"], x["liquidated_collateral_amount"])
                           for x in incident_chain.ground_truth["liquidations"]]
    finally:
        again.node.stop()


def test_scale_is_the_same_chain_every_time(tmp_path_factory):
    """The generated scenario, whose set-up sends JSON-RPC batches of many senders at once."""
    from postmortem.devchain import manager
    from postmortem.devchain.node import free_port

    from conftest import Devchain

    runs = []
    try:
        for _ in range(2):
            d = tmp_path_factory.mktemp("devchain-scale")
            node, out = manager.start(free_port(), "scale", directory=d, detach=False, borrowers=120)
            runs.append(Devchain(node, d, out))
        _assert_same_chain(*runs)
    finally:
        for dc in runs:
            dc.node.stop()
