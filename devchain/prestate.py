"""Ask the protocol itself: account data at the state just before a transaction, under the
reported price or under a substituted price.

``eth_simulateV1`` on top of the parent block replays the transaction's predecessors in its
block (same timestamp), then a second simulated block with the same timestamp runs
``Pool.getUserAccountData`` with optional state overrides (e.g. the wstETH price source's code
replaced by one that returns the true price). Interest accrues by timestamp, so keeping the
block's own timestamp makes the answer exact for the pre-transaction state.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode, encode
from eth_utils import keccak
from web3 import Web3

GET_USER_ACCOUNT_DATA = keccak(text="getUserAccountData(address)")[:4]
GET_ASSET_PRICE = keccak(text="getAssetPrice(address)")[:4]


def constant_price_code(price: int) -> str:
    """EVM runtime code that answers every call with ``price`` as one 32-byte word.

    Put at a price source's address (via a state override) it makes ``latestAnswer`` return
    ``price``, so the AaveOracle reports it: the protocol's own code then values positions
    at that price.
    """
    if not 0 <= price < 2**255:
        raise ValueError("price out of range")
    # PUSH32 price; PUSH1 0; MSTORE; PUSH1 32; PUSH1 0; RETURN
    return "0x7f" + price.to_bytes(32, "big").hex() + "600052" + "60206000f3"


@dataclass(frozen=True)
class AccountData:
    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


def _tx_call(tx: dict) -> dict:
    call = {"from": tx["from"], "to": tx["to"], "input": tx["input"] if isinstance(tx["input"], str) else "0x" + bytes(tx["input"]).hex(),
            "gas": hex(tx["gas"]), "value": hex(tx["value"])}
    if not call["input"].startswith("0x"):
        call["input"] = "0x" + call["input"]
    return call


def simulate_calls_before(w3: Web3, tx_hash: str, reads: list[dict], state_overrides: dict | None = None) -> list[bytes]:
    """Return the raw results of ``reads`` (``{"to", "input"}``) evaluated at the state just
    before transaction ``tx_hash``, with ``state_overrides`` applied to the reads only."""
    tx = w3.eth.get_transaction(tx_hash)
    block = w3.eth.get_block(tx["blockNumber"], full_transactions=True)
    earlier = [t for t in block.transactions if t["transactionIndex"] < tx["transactionIndex"]]
    return simulate_reads(w3, block.number, block.timestamp, [_tx_call(t) for t in earlier], reads, state_overrides)


def simulate_reads(w3: Web3, block_number: int, timestamp: int, prior_calls: list[dict], reads: list[dict],
                   state_overrides: dict | None = None) -> list[bytes]:
    """Run ``prior_calls`` as block ``block_number`` (at ``timestamp``) on top of its parent,
    then ``reads`` in a following simulated block with the same timestamp."""
    overrides = {"time": hex(timestamp), "number": hex(block_number)}
    read_block = {"blockOverrides": {"time": hex(timestamp), "number": hex(block_number + 1)},
                  "calls": reads}
    if state_overrides:
        read_block["stateOverrides"] = state_overrides
    payload = {"blockStateCalls": [{"blockOverrides": overrides, "calls": prior_calls}, read_block],
               "validation": False}
    resp = w3.provider.make_request("eth_simulateV1", [payload, hex(block_number - 1)])
    if "error" in resp:
        raise RuntimeError(f"eth_simulateV1 failed: {resp['error']}")
    blocks = resp["result"]
    for i, call in enumerate(blocks[0]["calls"]):
        if call.get("status") not in ("0x1", 1):
            raise RuntimeError(f"replaying transaction {i} of block {block_number} failed: {call.get('error')}")
    out = []
    for call in blocks[1]["calls"]:
        if call.get("status") not in ("0x1", 1):
            raise RuntimeError(f"read failed: {call.get('error')}")
        out.append(bytes.fromhex(call["returnData"][2:]))
    return out


def account_data_before(w3: Web3, tx_hash: str, pool: str, user: str, state_overrides: dict | None = None) -> AccountData:
    data = "0x" + (GET_USER_ACCOUNT_DATA + encode(["address"], [user])).hex()
    (raw,) = simulate_calls_before(w3, tx_hash, [{"to": pool, "input": data}], state_overrides)
    return AccountData(*decode(["uint256"] * 6, raw))


def account_data_at(w3: Web3, block: int | str, pool: str, user: str, state_overrides: dict | None = None) -> AccountData:
    """``getUserAccountData`` at the end of ``block`` (an ``eth_call`` with optional overrides)."""
    data = "0x" + (GET_USER_ACCOUNT_DATA + encode(["address"], [user])).hex()
    params = [{"to": pool, "data": data}, block if isinstance(block, str) else hex(block)]
    if state_overrides:
        params.append(state_overrides)
    resp = w3.provider.make_request("eth_call", params)
    if "error" in resp:
        raise RuntimeError(f"eth_call failed: {resp['error']}")
    return AccountData(*decode(["uint256"] * 6, bytes.fromhex(resp["result"][2:])))


def price_override(source: str, price: int) -> dict:
    """A state override that makes the price source at ``source`` answer ``price``."""
    return {Web3.to_checksum_address(source): {"code": constant_price_code(price)}}


WAD = 10**18
LATEST_ANSWER = keccak(text="latestAnswer()")[:4]
GET_POOLED_ETH_BY_SHARES = keccak(text="getPooledEthByShares(uint256)")[:4]


def _call_uint(w3: Web3, to: str, data: bytes, block: int, signed: bool = False) -> int:
    raw = w3.eth.call({"to": Web3.to_checksum_address(to), "data": "0x" + data.hex()}, block)
    return decode(["int256" if signed else "uint256"], raw)[0]


def true_wsteth_price(w3: Web3, addresses: dict, block: int) -> int:
    """The devchain's true wstETH price at the end of ``block``: live stETH ratio x ETH/USD,
    read from the chain (base units, 1e8 = 1 USD)."""
    base = _call_uint(w3, addresses["feeds"]["eth_usd"], LATEST_ANSWER, block, signed=True)
    ratio = _call_uint(w3, addresses["steth"], GET_POOLED_ETH_BY_SHARES + encode(["uint256"], [WAD]), block)
    return base * ratio // WAD


def health_before_liquidation(w3: Web3, addresses: dict, liq: dict) -> tuple[int, int]:
    """The protocol's health factor of ``liq["user"]`` just before liquidation ``liq`` (a
    ground-truth record), under the reported price and with the true wstETH price swapped in."""
    market = addresses["markets"][liq["market"]]
    source = market["reserves"]["wstETH"]["price_source"]
    user = Web3.to_checksum_address(liq["user"])
    true_price = true_wsteth_price(w3, addresses, liq["block"] - 1)
    reported = account_data_before(w3, liq["transaction_hash"], market["pool"], user)
    true = account_data_before(w3, liq["transaction_hash"], market["pool"], user, price_override(source, true_price))
    return reported.health_factor, true.health_factor
