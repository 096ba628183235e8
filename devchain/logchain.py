"""A local chain with logs to fetch: ``build_log_chain`` puts a contract that emits logs of varied
density on a local anvil node and mines them, so the fault proxy and the range splitter have
something realistic to forward and to split.
"""

from __future__ import annotations

import collections
import random
import urllib.parse
from dataclasses import dataclass
from typing import Any

from postmortem import jsonrpc
from postmortem.devchain.node import is_loopback_host

__all__ = ["EMITTER_ADDRESS", "EMITTER_TOPIC", "LogChain", "build_log_chain"]


# A runtime that emits n = calldata word 0 logs: LOG1(topic=EMITTER_TOPIC, data=counter), n..1.
EMITTER_TOPIC = "0x" + "fa017" * 12 + "fa01"
_EMITTER_RUNTIME = (
    "600035"  # PUSH1 0 CALLDATALOAD            -> [n]
    "5b"  # 0x03 JUMPDEST loop
    "801560" "3a" "57"  # DUP1 ISZERO PUSH1 end JUMPI  -> [n]
    "80600052"  # DUP1 PUSH1 0 MSTORE                 mem[0:32] = n
    "7f" + EMITTER_TOPIC[2:] +  # PUSH32 topic
    "60206000a1"  # PUSH1 32 PUSH1 0 LOG1
    "60019003"  # PUSH1 1 SWAP1 SUB                  -> [n - 1]
    "600356"  # PUSH1 loop JUMP
    "5b00"  # 0x3a JUMPDEST end, STOP
)
EMITTER_ADDRESS = "0x00000000000000000000000000000000000fa017"


@dataclass(frozen=True)
class LogChain:
    """Where ``build_log_chain`` put its logs: blocks ``from_block``..``to_block`` inclusive."""

    address: str
    topic: str
    from_block: int
    to_block: int
    log_count: int
    logs_per_block: dict[int, int]


def _rpc(url: str, method: str, params: list) -> Any:
    try:
        return jsonrpc.call(url, method, params, timeout=30)
    except jsonrpc.JsonRpcRefused as exc:
        raise RuntimeError(f"{method} failed on the local node: {exc.error}") from None


def build_log_chain(
    url: str,
    *,
    seed: int = 0,
    txs: int = 60,
    max_logs_per_tx: int = 5,
    max_gap: int = 4,
    dense_logs: int = 12,
) -> LogChain:
    """Put the log emitter on a local anvil node and mine ``txs`` blocks of logs among empty ones.

    Each transaction is its own block (anvil automines) with 0..``max_logs_per_tx`` logs; one
    block in the middle has ``dense_logs`` logs (for result-cap tests); between them come
    0..``max_gap`` empty blocks (``anvil_mine``). Deterministic for a given ``seed`` and a
    fresh node; requests are sent one by one so the order of blocks is exact.
    """
    parts = urllib.parse.urlsplit(url)
    if not is_loopback_host(parts.hostname):
        raise ValueError("build_log_chain writes to a local node only")
    rng = random.Random(seed)
    _rpc(url, "anvil_setCode", [EMITTER_ADDRESS, "0x" + _EMITTER_RUNTIME])
    sender = _rpc(url, "eth_accounts", [])[0]
    # Automine answers eth_sendTransaction before the block exists; mining by hand makes the
    # block of every transaction exact.
    _rpc(url, "evm_setAutomine", [False])
    try:
        first = int(_rpc(url, "eth_blockNumber", []), 16) + 1
        for i in range(txs):
            gap = rng.randint(0, max_gap)
            if gap:
                _rpc(url, "anvil_mine", [hex(gap)])
            n = dense_logs if i == txs // 2 else rng.randint(0, max_logs_per_tx)
            tx = {"from": sender, "to": EMITTER_ADDRESS, "data": "0x" + f"{n:064x}", "gas": hex(1_000_000)}
            _rpc(url, "eth_sendTransaction", [tx])
            _rpc(url, "evm_mine", [])
        last = int(_rpc(url, "eth_blockNumber", []), 16)
    finally:
        _rpc(url, "evm_setAutomine", [True])
    logs = _rpc(url, "eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last), "address": EMITTER_ADDRESS}])
    per_block = collections.Counter(int(entry["blockNumber"], 16) for entry in logs)
    return LogChain(EMITTER_ADDRESS, EMITTER_TOPIC, first, last, len(logs), dict(per_block))
