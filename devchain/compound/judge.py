"""The protocol as judge: the Venus Comptroller's own liquidity, just before each liquidation and
each borrow of a compound-v2 devchain, under the reported price and under the true price.

For a liquidation: ``getAccountLiquidity(borrower)`` (liquidation thresholds), as
``preLiquidateHook`` asks it. Shortfall under the reported price and none under the true price
is *wrongly eligible*; shortfall under both is *rightly eligible*.

For a borrow: ``getHypotheticalAccountLiquidity(borrower, vToken, 0, amount)`` (collateral
factors), as ``preBorrowHook`` asks it. No shortfall under the reported price but a shortfall
under the true price is *wrongly allowed*; none under both is *allowed*.

The state is the one the transaction met: ``eth_simulateV1`` on the parent block replays the
transaction's predecessors in its block at its timestamp (``devchain.prestate``), then does what
the transaction does before the Comptroller's check (accrue interest in the markets it touches;
for a borrow, enter the borrowed market, which ``preBorrowHook`` does for a borrower not yet in
it) and reads. The true price enters through a state override of the oracle's storage
(``SteerableVenusOracle`` slot 0: ``underlyingPrice[vToken]``), so the protocol's own code values
the account.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from postmortem.devchain.prestate import simulate_calls_before

GET_ACCOUNT_LIQUIDITY = keccak(text="getAccountLiquidity(address)")[:4]
GET_HYPOTHETICAL = keccak(text="getHypotheticalAccountLiquidity(address,address,uint256,uint256)")[:4]
ACCRUE_INTEREST = keccak(text="accrueInterest()")[:4]
ENTER_MARKETS = keccak(text="enterMarkets(address[])")[:4]
# SteerableVenusOracle's storage: slot 0 underlyingPrice[vToken], slot 1 assetPrice[asset].
UNDERLYING_PRICE_SLOT = 0


@dataclass(frozen=True)
class Liquidity:
    liquidity: int
    shortfall: int


@dataclass(frozen=True)
class Judgement:
    reported: Liquidity
    true: Liquidity
    verdict: str


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def oracle_price_override(oracle: str, vtoken: str, price: int) -> dict:
    """A state override making ``SteerableVenusOracle`` at ``oracle`` answer ``price`` for ``vtoken``."""
    slot = keccak(encode(["address", "uint256"], [to_checksum_address(vtoken), UNDERLYING_PRICE_SLOT]))
    return {to_checksum_address(oracle): {"stateDiff": {_hex(slot): _hex(price.to_bytes(32, "big"))}}}


def _liquidity_before(w3: Web3, tx_hash: str, prep: list[dict], read: dict, overrides: dict | None) -> Liquidity:
    raw = simulate_calls_before(w3, tx_hash, prep + [read], overrides)[-1]
    _err, liquidity, shortfall = decode(["uint256", "uint256", "uint256"], raw)
    return Liquidity(liquidity, shortfall)


def judge_liquidation(w3: Web3, manifest: dict, liq: dict) -> Judgement:
    """The protocol's answer for one ground-truth liquidation record."""
    a = manifest["addresses"]
    touched = dict.fromkeys([liq["repay_vtoken"], liq["collateral_vtoken"]])  # both accrue, in this order
    prep = [{"to": v, "input": _hex(ACCRUE_INTEREST)} for v in touched]
    read = {"to": a["comptroller"], "input": _hex(GET_ACCOUNT_LIQUIDITY + encode(["address"], [liq["borrower"]]))}
    reported = _liquidity_before(w3, liq["tx_hash"], prep, read, None)
    true = _liquidity_before(w3, liq["tx_hash"], prep, read, true_price_override(manifest))
    if reported.shortfall == 0:
        verdict = "not-eligible"  # the protocol would have refused it: the scenario is broken
    else:
        verdict = "rightly-eligible" if true.shortfall > 0 else "wrongly-eligible"
    return Judgement(reported, true, verdict)


def judge_borrow(w3: Web3, manifest: dict, borrow: dict) -> Judgement:
    """The protocol's answer for one ground-truth borrow record."""
    a = manifest["addresses"]
    prep = [
        {"to": borrow["vtoken"], "input": _hex(ACCRUE_INTEREST)},
        {"from": borrow["borrower"], "to": a["comptroller"],
         "input": _hex(ENTER_MARKETS + encode(["address[]"], [[borrow["vtoken"]]]))},
    ]
    args = [borrow["borrower"], borrow["vtoken"], 0, int(borrow["amount"])]
    read = {"to": a["comptroller"],
            "input": _hex(GET_HYPOTHETICAL + encode(["address", "address", "uint256", "uint256"], args))}
    reported = _liquidity_before(w3, borrow["tx_hash"], prep, read, None)
    true = _liquidity_before(w3, borrow["tx_hash"], prep, read, true_price_override(manifest))
    if reported.shortfall > 0:
        verdict = "refused"  # the protocol would have refused it: the scenario is broken
    else:
        verdict = "wrongly-allowed" if true.shortfall > 0 else "allowed"
    return Judgement(reported, true, verdict)


def true_price_override(manifest: dict) -> dict:
    """A state override making the oracle answer the manifest's ``true_prices`` for every market
    (the mispriced one differs; for the others it is the price the oracle reports anyway)."""
    a = manifest["addresses"]
    diff: dict = {}
    for sym, m in a["markets"].items():
        diff.update(oracle_price_override(a["oracle"], m["vtoken"], int(manifest["true_prices"][sym]))[
            to_checksum_address(a["oracle"])]["stateDiff"])
    return {to_checksum_address(a["oracle"]): {"stateDiff": diff}}


def judge_all(w3: Web3, manifest: dict, ground_truth: dict) -> dict[str, list[tuple[dict, Judgement]]]:
    """Every liquidation and borrow of the ground truth with the protocol's judgement."""
    return {
        "liquidations": [(x, judge_liquidation(w3, manifest, x)) for x in ground_truth["liquidations"]],
        "borrows": [(x, judge_borrow(w3, manifest, x)) for x in ground_truth["borrows"]],
    }
