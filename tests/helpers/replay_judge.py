"""The replay held to the protocol on a devchain: view ABIs, scaled balances against
``scaledBalanceOf`` and health factors against ``getUserAccountData`` under both prices."""

from __future__ import annotations

from eth_abi import decode, encode
from web3 import Web3

from postmortem.devchain.prestate import (
    GET_ASSET_PRICE, GET_USER_ACCOUNT_DATA, price_override, simulate_calls_before, true_wsteth_price,
)


def _view(name, inputs=()):
    return [{"name": name, "type": "function", "stateMutability": "view",
             "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(inputs)],
             "outputs": [{"name": "", "type": "uint256" if name != "latestAnswer" else "int256"}]}]


def scaled_balance_mismatches(dc, book, block: int) -> tuple[int, list]:
    """Compare every replayed scaled balance with ``scaledBalanceOf`` at ``block``; returns
    (balances checked, mismatches)."""
    balances = book.scaled_balances()
    checked, mismatched = 0, []
    for market in dc.addresses["markets"].values():
        pool = market["pool"].lower()
        for reserve in market["reserves"].values():
            for slot, token in ((0, reserve["a_token"]), (1, reserve["variable_debt_token"])):
                contract = dc.w3.eth.contract(address=token, abi=_view("scaledBalanceOf", ["address"]))
                for (p, user) in book.users:
                    if p != pool:
                        continue
                    on_chain = contract.functions.scaledBalanceOf(Web3.to_checksum_address(user)).call(
                        block_identifier=block)
                    mine = balances.get((pool, user, reserve["underlying"].lower()), (0, 0))[slot]
                    checked += 1
                    if on_chain != mine:
                        mismatched.append((pool, user, token, mine, on_chain))
    return checked, mismatched


def judge_by_protocol(dc, liquidations: list[dict], verdicts: dict) -> list:
    """Differences between replayed verdict rows and the protocol, for every liquidation."""
    problems = []
    for liq in liquidations:
        v = verdicts[(liq["transaction_hash"], liq["log_index"])]
        market = dc.addresses["markets"][liq["market"]]
        pool, oracle = market["pool"], market["oracle"]
        wsteth = market["reserves"]["wstETH"]
        user = Web3.to_checksum_address(liq["user"])
        reads = [{"to": pool, "input": "0x" + (GET_USER_ACCOUNT_DATA + encode(["address"], [user])).hex()},
                 {"to": oracle, "input": "0x" + (GET_ASSET_PRICE + encode(["address"], [wsteth["underlying"]])).hex()}]
        raw_account, raw_price = simulate_calls_before(dc.w3, liq["transaction_hash"], reads)
        reported = decode(["uint256"] * 6, raw_account)
        reported_price = decode(["uint256"], raw_price)[0]
        true_price = true_wsteth_price(dc.w3, dc.addresses, liq["block"] - 1)
        (raw_true,) = simulate_calls_before(dc.w3, liq["transaction_hash"], reads[:1],
                                            price_override(wsteth["price_source"], true_price))
        true = decode(["uint256"] * 6, raw_true)
        got = {
            "hf_reported": v["hf_reported"], "hf_true": v["hf_true"],
            "collateral_price_reported": v["collateral_price_reported"],
            "collateral_price_true": v["collateral_price_true"],
            "wrongly_eligible": v["verdict"] == "wrongly_eligible",
            "replay_matches_log": v["replay_matches_log"],
        }
        want = {
            "hf_reported": reported[5], "hf_true": true[5], "collateral_price_reported": reported_price,
            "collateral_price_true": true_price, "wrongly_eligible": liq["wrongly_eligible"],
            "replay_matches_log": True,
        }
        if got != want:
            problems.append((liq["block"], liq["transaction_index"], liq["user_label"],
                             {k: (got[k], want[k]) for k in got if got[k] != want[k]}))
    return problems
