"""The test world itself: the incident scenario on anvil, judged by the protocol's own code.

For every liquidation the ground truth calls wrongly eligible, ``Pool.getUserAccountData`` at
the state just before it (earlier transactions of its block replayed at the block's timestamp)
must say HF < 1 under the reported price and HF >= 1 when the wstETH price source is swapped,
by an ``eth_call`` state override, for one that returns the true price (live ratio x base feed).
"""

from __future__ import annotations

import pytest
import requests
from web3 import Web3

from postmortem.devchain.chain import Artifacts
from postmortem.devchain.prestate import account_data_at, health_before_liquidation, price_override, true_wsteth_price

WAD = 10**18
pytestmark = pytest.mark.chain


def test_manifest_names_every_address(incident_chain):
    m = incident_chain.manifest
    assert m["chain_id"] == 31337 and m["aave_revision"] == "3.6"
    w3 = incident_chain.w3
    for name in ("core", "prime"):
        market = m["addresses"]["markets"][name]
        for key in ("pool", "pool_addresses_provider", "pool_configurator", "oracle", "acl_manager", "data_provider"):
            assert w3.eth.get_code(market[key]), f"{name}.{key} has no code"
        assert set(market["reserves"]) == {"WETH", "wstETH", "cbETH", "USDC"}
        for r in market["reserves"].values():
            for key in ("underlying", "a_token", "variable_debt_token", "price_source"):
                assert w3.eth.get_code(r[key]), f"{name} reserve {key} has no code"
    # One wstETH price adapter shared by both markets, as on mainnet.
    assert (m["addresses"]["markets"]["core"]["reserves"]["wstETH"]["price_source"]
            == m["addresses"]["markets"]["prime"]["reserves"]["wstETH"]["price_source"]
            == m["addresses"]["feeds"]["wsteth_capo"])


def test_incident_shape(incident_chain):
    gt = incident_chain.ground_truth
    liqs = gt["liquidations"]
    victims = [x for x in liqs if x["role"] == "victim"]
    assert len(victims) == 49  # as on mainnet
    assert len({x["user"] for x in victims}) == 35
    assert {x["market"] for x in victims} == {"core", "prime"}
    blocks = sorted({x["block"] for x in liqs})
    update_block = next(t["block"] for t in gt["transactions"] if t["do"] == "set_cap_parameters")
    in_update_block = [x for x in liqs if x["block"] == update_block]
    assert len(in_update_block) >= 2, "several liquidations land in the block of the parameter update"
    assert all(x["transaction_index"] > 0 for x in in_update_block)  # after the update in that block
    assert len(blocks) >= 6
    # Several liquidations of one borrower inside one block, partial liquidations, receiveAToken.
    per_block_user = {}
    for x in liqs:
        per_block_user[(x["block"], x["user"])] = per_block_user.get((x["block"], x["user"]), 0) + 1
    assert max(per_block_user.values()) >= 3
    assert any(x["receive_a_token"] for x in liqs)
    assert any(x["debt_asset"] == "cbETH" for x in liqs)
    # LiquidationCall logs on chain equal the ground truth.
    topic = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
    logs = incident_chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "topics": [topic]})
    assert len(logs) == len(liqs)


def test_every_liquidation_judged_by_the_protocol(incident_chain):
    """100% of liquidations: the ground truth agrees with getUserAccountData before each."""
    wrong = []
    for liq in incident_chain.ground_truth["liquidations"]:
        hf_reported, hf_true = health_before_liquidation(incident_chain.w3, incident_chain.addresses, liq)
        assert hf_reported < WAD, f"liquidation {liq['transaction_hash']} was not eligible even as reported"
        wrongly = hf_true >= WAD
        if wrongly != liq["wrongly_eligible"]:
            wrong.append((liq["user_label"], liq["block"], hf_reported, hf_true))
    assert not wrong, f"ground truth disagrees with the protocol for: {wrong}"


def test_controls_are_what_they_claim(incident_chain):
    dc = incident_chain
    gt = dc.ground_truth
    liquidated = {(x["market"], x["user"]) for x in gt["liquidations"]}
    update_block = next(t["block"] for t in gt["transactions"] if t["do"] == "set_cap_parameters")
    last_liq_block = max(x["block"] for x in gt["liquidations"])
    seen_roles = set()
    for c in gt["controls"]:
        market = dc.addresses["markets"][c["market"]]
        pool, source = market["pool"], market["reserves"]["wstETH"]["price_source"]
        user = Web3.to_checksum_address(c["user"])
        seen_roles.add(c["role"])
        for block in range(update_block, last_liq_block + 1):
            reported = account_data_at(dc.w3, block, pool, user)
            true = account_data_at(dc.w3, block, pool, user, price_override(source, true_wsteth_price(dc.w3, dc.addresses, block)))
            if c["role"] == "healthy":
                assert reported.health_factor >= WAD and true.health_factor >= WAD, c
            elif c["role"] == "eligible_not_liquidated":
                assert reported.health_factor < WAD <= true.health_factor, c
        if c["role"] == "rightly_liquidated":
            liq = next(x for x in gt["liquidations"] if x["user"] == c["user"])
            hf_reported, hf_true = health_before_liquidation(dc.w3, dc.addresses, liq)
            assert hf_true < WAD and not liq["wrongly_eligible"]
        if c["role"] in ("healthy", "eligible_not_liquidated"):
            assert (c["market"], c["user"]) not in liquidated
    assert seen_roles == {"healthy", "eligible_not_liquidated", "rightly_liquidated"}
    # At least one control outside eMode, checked on chain.
    pool = dc.w3.eth.contract(address=dc.addresses["markets"]["core"]["pool"], abi=Artifacts.load().abi("PoolInstance"))
    outside = [c for c in gt["controls"] if c["emode"] == 0]
    assert outside and all(pool.functions.getUserEMode(Web3.to_checksum_address(c["user"])).call() == 0 for c in outside)


def test_snapshot_fixed_after_window(incident_chain):
    dc = incident_chain
    art = Artifacts.load()
    adapter = dc.w3.eth.contract(address=dc.addresses["feeds"]["wsteth_capo"], abi=art.abi("CappedRatioAdapter"))
    update_block = next(t["block"] for t in dc.ground_truth["transactions"] if t["do"] == "set_cap_parameters")
    assert adapter.functions.isCapped().call(block_identifier=update_block)
    assert not adapter.functions.isCapped().call(block_identifier=update_block - 1)
    assert not adapter.functions.isCapped().call()
    cap = adapter.functions.getMaxRatio().call(block_identifier=update_block)
    assert abs(cap - 1_193_946_876 * 10**9) < 10**14  # about 1.1939, as on mainnet


def test_anvil_block_states_on_disk_are_removed_when_the_node_stops(tmp_path, monkeypatch):
    """anvil spills old block states to $HOME/.foundry/anvil/tmp and never deletes them (about 5 GB
    for the mainnet twin): every node keeps them in a folder of its own, removed on stop."""
    from postmortem.devchain.node import start_anvil

    node = start_anvil(state_home=tmp_path / "anvil-home")
    try:
        requests.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x258"]},
                      timeout=60).raise_for_status()
        spilled = list((tmp_path / "anvil-home").rglob("anvil-state-*"))
        assert spilled, "anvil wrote no block states where it was told to (the test could not fail)"
    finally:
        node.stop()
    assert not (tmp_path / "anvil-home").exists()
