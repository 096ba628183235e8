"""The Compound-v2-lineage test world (issue 14): a Venus isolated pool from npm on anvil, the
Moonwell-like scenario ``compound-lst-misprice``, its ground truth, and the protocol as judge.

The judge is the Comptroller's own code (``devchain/compound/judge.py``): just before each
liquidation and each borrow, under the reported price and under a state override with the true
price. Its class must agree with the ground truth's expected class for every one of them.
"""

from __future__ import annotations

import json

import pytest
from web3 import Web3

from conftest import _start
from postmortem.devchain.compound import deploy, judge
from postmortem.devchain.compound.deploy import price_units
from postmortem.errors import PostmortemError

SCENARIO = "compound-lst-misprice"


def test_prices_and_factors_are_exact_or_refused():
    assert price_units("1.12", 18) == 112 * 10**16
    assert price_units("70000", 8) == 7 * 10**32 and price_units("1", 6) == 10**30
    with pytest.raises(PostmortemError, match="more digits"):
        price_units("0.0000000001", 30)
    assert deploy.mantissa("0.85") == 85 * 10**16
    with pytest.raises(PostmortemError, match="more than 18 decimals"):
        deploy.mantissa("0.1234567890123456789")


def test_a_missing_venus_package_says_to_run_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(deploy, "NODE_MODULES", tmp_path)
    deploy.venus_artifacts.cache_clear()
    try:
        with pytest.raises(PostmortemError, match=r"@venusprotocol/isolated-pools is not installed .*run `"):
            deploy.venus_artifacts()
    finally:
        deploy.venus_artifacts.cache_clear()


def test_a_scenario_missing_a_field_is_refused_in_one_sentence():
    from postmortem.devchain.compound.runner import check_scenario
    from postmortem.devchain.scenario import load_scenario

    sc = load_scenario(SCENARIO)
    check_scenario(sc)
    del sc["world"]["markets"]["USDC"]["price_usd"]
    del sc["timeline"]
    with pytest.raises(PostmortemError, match=r"lacks timeline, world.markets.USDC.price_usd; add them"):
        check_scenario(sc)


@pytest.fixture(scope="module")
def cchain(tmp_path_factory):
    dc = _start(tmp_path_factory, SCENARIO)
    yield dc
    dc.node.stop()


@pytest.mark.chain
def test_manifest_names_the_protocol_and_every_address(cchain):
    m = cchain.manifest
    assert m["protocol"] == "compound-v2"
    assert m["variant"].startswith("venus-isolated-pools-")
    assert m["chain_id"] == 31337 and m["scenario"] == SCENARIO
    for key in ("tool_version", "rpc_url", "scenario_params", "deploy_block"):
        assert key in m
    s = m["summary"]
    assert s["deploy_block"] < s["setup_end_block"] < s["start_block"] < s["fix_block"] < s["end_block"]
    a = m["addresses"]
    w3 = cchain.w3
    for key in ("comptroller", "oracle", "multicall3"):
        assert w3.eth.get_code(a[key]), key
    assert set(a["markets"]) == {"WETH", "cbETH", "USDC", "cbBTC"}
    comp = w3.eth.contract(address=a["comptroller"], abi=[
        {"name": "getAllMarkets", "type": "function", "stateMutability": "view", "inputs": [],
         "outputs": [{"name": "", "type": "address[]"}]},
        {"name": "oracle", "type": "function", "stateMutability": "view", "inputs": [],
         "outputs": [{"name": "", "type": "address"}]}])
    assert {x.lower() for x in comp.functions.getAllMarkets().call()} == {
        mk["vtoken"].lower() for mk in a["markets"].values()}
    assert comp.functions.oracle().call().lower() == a["oracle"].lower()
    for sym, mk in a["markets"].items():
        assert mk["vtoken_decimals"] == 8 and w3.eth.get_code(mk["underlying"]), sym
    assert m["true_prices"]["cbETH"] == price_units("2464", 18) == 2464 * 10**18
    assert m["true_prices"]["USDC"] == 10**30 and m["true_prices"]["cbBTC"] == 70_000 * 10**28
    assert set(a["accounts"]) >= {"victim-01", "control-01", "overborrower-01", "liquidator-1"}
    # What was written is what start returned.
    assert json.loads((cchain.directory / "manifest.json").read_text())["addresses"] == json.loads(json.dumps(a))
    assert json.loads((cchain.directory / "ground_truth.json").read_text())["borrows"] == cchain.ground_truth["borrows"]


@pytest.mark.chain
def test_ground_truth_has_both_failure_classes_and_controls(cchain):
    gt = cchain.ground_truth
    liq = [x["expected"] for x in gt["liquidations"]]
    bor = [x["expected"] for x in gt["borrows"]]
    assert liq.count("wrongly-eligible") >= 5 and liq.count("rightly-eligible") >= 2
    assert bor.count("wrongly-allowed") >= 3 and bor.count("allowed") >= 2
    s = cchain.manifest["summary"]
    mis = gt["mispriced"]
    assert mis["asset"] == "cbETH" and mis["vtoken"] == cchain.manifest["addresses"]["markets"]["cbETH"]["vtoken"]
    assert mis["reported_from_block"] == s["start_block"] and mis["fixed_at_block"] == s["fix_block"]
    for x in gt["liquidations"] + gt["borrows"]:
        assert s["start_block"] < x["block_number"] < s["fix_block"]
    # Bad debt at the true price: the over-borrowed cbETH, and what the wrongly liquidated
    # victims still owe after losing their cbETH (WETH and USDC), as on Moonwell.
    bad = gt["bad_debt_at_end"]
    assert bad["cbETH"] > 2400 * 10**18  # 2,500 cbETH borrowed against about $4,400
    # Victims 01, 03, 04 owe 83 WETH and keep about 20 cbETH and 2,000 USDC ($55k); victims 02
    # and 05 owe 59,000 USDC and keep under 2 cbETH ($4k); the controls stay covered.
    assert 55 * 10**18 < bad["WETH"] < 65 * 10**18
    assert 50_000 * 10**6 < bad["USDC"] < 59_000 * 10**6 and bad["cbBTC"] == 0


@pytest.mark.chain
def test_ground_truth_matches_the_logs_on_chain(cchain):
    w3 = cchain.w3
    topic_liq = Web3.keccak(text="LiquidateBorrow(address,address,uint256,address,uint256)")
    topic_borrow = Web3.keccak(text="Borrow(address,uint256,uint256,uint256)")
    for x in cchain.ground_truth["liquidations"]:
        r = w3.eth.get_transaction_receipt(x["tx_hash"])
        assert r.status == 1 and r.blockNumber == x["block_number"] and r.transactionIndex == x["transaction_index"]
        (lg,) = [lg for lg in r.logs if lg.logIndex == x["log_index"]]
        assert lg.topics[0] == topic_liq and lg.address == x["repay_vtoken"]
        assert int.from_bytes(lg.topics[2][-20:], "big") == int(x["borrower"], 16)
    for x in cchain.ground_truth["borrows"]:
        r = w3.eth.get_transaction_receipt(x["tx_hash"])
        assert r.status == 1 and r.blockNumber == x["block_number"] and r.transactionIndex == x["transaction_index"]
        assert any(lg.topics[0] == topic_borrow and lg.address == x["vtoken"] for lg in r.logs)


@pytest.mark.chain
def test_the_protocol_agrees_with_the_ground_truth_for_every_liquidation_and_borrow(cchain):
    verdicts = judge.judge_all(cchain.w3, cchain.manifest, cchain.ground_truth)
    wrong = [(x["tx_hash"], x.get("borrower_label"), x["expected"], j.verdict, j.reported, j.true)
             for kind in ("liquidations", "borrows") for x, j in verdicts[kind] if j.verdict != x["expected"]]
    assert not wrong, wrong
    assert len(verdicts["liquidations"]) == len(cchain.ground_truth["liquidations"]) >= 7
    assert len(verdicts["borrows"]) == len(cchain.ground_truth["borrows"]) >= 5


@pytest.mark.chain
def test_the_judge_can_say_no(cchain):
    """The override matters: a wrongly eligible liquidation judged without it (true price = the
    reported one) comes out rightly eligible, so the judge is not a constant."""
    gt = cchain.ground_truth
    victim = next(x for x in gt["liquidations"] if x["expected"] == "wrongly-eligible")
    false_truth = {**cchain.manifest, "true_prices": {**cchain.manifest["true_prices"],
                                                        "cbETH": price_units("1.12", 18)}}
    assert judge.judge_liquidation(cchain.w3, false_truth, victim).verdict == "rightly-eligible"
    over = next(x for x in gt["borrows"] if x["expected"] == "wrongly-allowed")
    assert judge.judge_borrow(cchain.w3, false_truth, over).verdict == "allowed"


@pytest.mark.chain
def test_two_starts_give_the_same_chain(cchain, tmp_path_factory):
    again = _start(tmp_path_factory, SCENARIO)
    try:
        end = cchain.manifest["summary"]["end_block"]
        assert again.manifest["summary"]["end_block"] == end
        for n in (0, cchain.manifest["summary"]["deploy_block"], cchain.manifest["summary"]["start_block"], end):
            assert cchain.w3.eth.get_block(n).hash == again.w3.eth.get_block(n).hash, n
        assert again.ground_truth == cchain.ground_truth
    finally:
        again.node.stop()
