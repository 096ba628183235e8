"""The replay judged by the protocol on a second scenario, ``mixed-v30``: a v3.6 market next to a
v3.0.x market deployed from the ``@aave/core-v3`` 1.19.3 artifacts (whose rounding and close
factor differ).

It exercises what the incident scenario does not: three liquidations of one borrower in one block
on the v3.0 market, aToken transfers, repays and supplies between liquidations, non-eMode
positions, a 6-decimal debt asset (USDC), a price change by a feed update (rightly liquidating)
and by cap parameters (wrongly liquidating). The ground truth is first checked with the protocol
itself; then, for 100% of liquidations, the replayed health factors under both prices equal
``getUserAccountData`` (the pre-state rebuilt with ``eth_simulateV1``, the true price by a state
override) and the verdicts equal the ground truth.
"""

from __future__ import annotations

from collections import Counter

import pytest
from web3 import Web3

from conftest import _start
from postmortem.devchain.prestate import account_data_at, health_before_liquidation, price_override, true_wsteth_price
from postmortem.replay.engine import resolve_true_models, run_replay
from postmortem.replay.inputs import load_inputs
from helpers.replay_judge import _view, judge_by_protocol, scaled_balance_mismatches

pytestmark = pytest.mark.chain
WAD = 10**18


@pytest.fixture(scope="module")
def mixed_chain(tmp_path_factory):
    dc = _start(tmp_path_factory, "mixed-v30")
    yield dc
    dc.node.stop()


@pytest.fixture(scope="module")
def replayed(mixed_chain, tmp_path_factory):
    """Both markets ingested by pool address over the scenario's window, then replayed."""
    from postmortem.ingest.pipeline import ingest

    dc = mixed_chain
    s = dc.manifest["summary"]
    pools = [m["pool"] for m in dc.addresses["markets"].values()]
    a, b = s["setup_end_block"] + 1, s["end_block"]
    root = tmp_path_factory.mktemp("warehouse-mixed-v30")
    ingest(dc.url, pools=pools, from_block=a, to_block=b, warehouse=root, progress=False, allow_unfinalized=True)
    inputs = load_inputs(root, chain_id=dc.manifest["chain_id"], pools=pools, from_block=a, to_block=b)
    result = run_replay(inputs, resolve_true_models(None, ["wstETH=uncapped"]))
    verdicts = {(v["transaction_hash"], v["log_index"]): v for v in result.tables["verdicts"]}
    return {"inputs": inputs, "result": result, "verdicts": verdicts, "window": (a, b), "pools": pools}


def test_scenario_shape(mixed_chain):
    dc = mixed_chain
    m = dc.manifest
    markets = m["addresses"]["markets"]
    assert {k: v["revision"] for k, v in markets.items()} == {"core": "3.6", "legacy": "3.0"}
    assert m["aave_revision"] == "3.0,3.6"
    revision = dc.w3.eth.contract(address=markets["legacy"]["pool"], abi=_view("POOL_REVISION"))
    assert revision.functions.POOL_REVISION().call() == 1  # @aave/core-v3 1.19.3, math "3.0"
    assert m["summary"]["seconds"] < 30
    gt = dc.ground_truth
    liqs, txs = gt["liquidations"], gt["transactions"]
    per_block_user = Counter((x["block"], x["market"], x["user"]) for x in liqs)
    assert any(n >= 3 and mk == "legacy" for (_, mk, _), n in per_block_user.items())
    assert {x["market"] for x in liqs} == {"core", "legacy"}
    assert {"victim", "rightly_liquidated"} == {x["role"] for x in liqs}
    assert any(x["debt_asset"] == "USDC" for x in liqs) and any(x["receive_a_token"] for x in liqs)
    first_liq, last_liq = min(x["block"] for x in liqs), max(x["block"] for x in liqs)
    in_window = Counter(t["do"] for t in txs if first_liq <= t["block"] <= last_liq)
    assert in_window["transfer_a_token"] >= 2 and in_window["repay"] >= 2 and in_window["supply"] >= 2
    # A feed update before any liquidation, a cap-parameter update in the block of the wrongful ones.
    feed_block = min(t["block"] for t in txs if t["do"] == "set_feed")
    cap_block = min(t["block"] for t in txs if t["do"] == "set_cap_parameters")
    assert feed_block < first_liq < cap_block <= last_liq
    assert all(x["role"] == "rightly_liquidated" for x in liqs if x["block"] < cap_block)
    # Non-eMode positions are liquidated on both markets.
    outside = {x["market"] for x in liqs if x["role"] == "rightly_liquidated"}
    assert outside == {"core", "legacy"}
    for x in liqs:
        pool = dc.w3.eth.contract(address=markets[x["market"]]["pool"], abi=_view("getUserEMode", ["address"]))
        emode = pool.functions.getUserEMode(Web3.to_checksum_address(x["user"])).call()
        assert emode == (0 if x["role"] == "rightly_liquidated" else 1), x["user_label"]


def test_ground_truth_judged_by_the_protocol(mixed_chain):
    """Every liquidation eligible as reported; wrongly eligible exactly when the true price says HF >= 1."""
    dc = mixed_chain
    wrong = []
    for liq in dc.ground_truth["liquidations"]:
        hf_reported, hf_true = health_before_liquidation(dc.w3, dc.addresses, liq)
        assert hf_reported < WAD, liq
        if (hf_true >= WAD) != liq["wrongly_eligible"]:
            wrong.append((liq["user_label"], liq["block"], hf_reported, hf_true))
    assert not wrong


def test_controls_are_what_they_claim(mixed_chain):
    dc = mixed_chain
    gt = dc.ground_truth
    liquidated = {(x["market"], x["user"]) for x in gt["liquidations"]}
    cap_block = min(t["block"] for t in gt["transactions"] if t["do"] == "set_cap_parameters")
    last_liq = max(x["block"] for x in gt["liquidations"])
    seen = set()
    for c in gt["controls"]:
        market = dc.addresses["markets"][c["market"]]
        source = market["reserves"]["wstETH"]["price_source"]
        user = Web3.to_checksum_address(c["user"])
        seen.add((c["role"], c["market"]))
        if c["role"] == "rightly_liquidated":
            assert (c["market"], c["user"]) in liquidated
            continue
        assert (c["market"], c["user"]) not in liquidated
        for block in range(cap_block, last_liq + 1):
            reported = account_data_at(dc.w3, block, market["pool"], user).health_factor
            true = account_data_at(dc.w3, block, market["pool"], user,
                                   price_override(source, true_wsteth_price(dc.w3, dc.addresses, block))).health_factor
            if c["role"] == "healthy":
                assert reported >= WAD and true >= WAD, c
            else:
                assert reported < WAD <= true, c
    assert {r for r, _ in seen} == {"healthy", "eligible_not_liquidated", "rightly_liquidated"}
    assert ("eligible_not_liquidated", "legacy") in seen and ("healthy", "legacy") in seen
    assert any(c["emode"] == 0 and c["role"] == "healthy" and c["market"] == "legacy" for c in gt["controls"])


def test_every_liquidation_equals_the_protocol_under_both_prices(mixed_chain, replayed):
    liqs = mixed_chain.ground_truth["liquidations"]
    assert len(replayed["verdicts"]) == len(liqs) == 11
    assert judge_by_protocol(mixed_chain, liqs, replayed["verdicts"]) == []
    s = replayed["result"].summary
    assert {v["revision"] for v in s["markets"].values()} == {"3.0", "3.6"}
    assert s["reported_price_mismatches"] == 0 and s["price_state_drift"] == 0 and s["replay_mismatches"] == 0


def test_verdicts_match_the_ground_truth(mixed_chain, replayed):
    dc = mixed_chain
    verdicts = replayed["verdicts"]
    for liq in dc.ground_truth["liquidations"]:
        v = verdicts[(liq["transaction_hash"], liq["log_index"])]
        assert v["verdict"] == ("wrongly_eligible" if liq["wrongly_eligible"] else "eligible_anyway"), liq
        assert (v["user"], v["liquidator"], v["debt_to_cover"], v["liquidated_collateral_amount"]) == (
            liq["user"], liq["liquidator"], int(liq["debt_to_cover"]), int(liq["liquidated_collateral_amount"]))
        assert v["pool"] == dc.addresses["markets"][liq["market"]]["pool"].lower()
    assert replayed["result"].summary["verdicts"] == {"wrongly_eligible": 8, "eligible_anyway": 3, "anomaly": 0}
    # The one eligible-but-not-liquidated control is the at-risk row, on the v3.0 market.
    controls = {(dc.addresses["markets"][c["market"]]["pool"].lower(), c["user"])
                for c in dc.ground_truth["controls"] if c["role"] == "eligible_not_liquidated"}
    assert {(r["pool"], r["user"]) for r in replayed["result"].tables["at_risk"]} == controls


def test_v36_math_would_not_match_the_v30_market(mixed_chain, replayed):
    """The scenario tells the revisions apart: replaying the v3.0 market with v3.6 math gets
    every one of its liquidations' health factor wrong."""
    legacy = mixed_chain.addresses["markets"]["legacy"]["pool"].lower()
    inputs = replayed["inputs"]
    saved = [dict(m) for m in inputs.markets]
    try:
        for m in inputs.markets:
            if m["pool"] == legacy:
                m.update(aave_revision="3.6", pool_revision=10)
        wrong_math = run_replay(inputs, resolve_true_models(None, ["wstETH=uncapped"]))
    finally:
        for m, old in zip(inputs.markets, saved):
            m.clear()
            m.update(old)
    theirs = {(v["transaction_hash"], v["log_index"]): v for v in wrong_math.tables["verdicts"]}
    legacy_keys = [k for k, v in replayed["verdicts"].items() if v["pool"] == legacy]
    assert len(legacy_keys) == 7
    assert all(theirs[k]["hf_reported"] != replayed["verdicts"][k]["hf_reported"] for k in legacy_keys)


def test_positions_replay_to_the_chain_balances(mixed_chain, replayed):
    _, b = replayed["window"]
    checked, mismatched = scaled_balance_mismatches(mixed_chain, replayed["result"].book, b)
    assert mismatched == []
    assert checked > 100
