"""A thin web3 layer over the devchain: artifacts, linked deploys, transactions, batched blocks.

Every sender is an impersonated address (``anvil_autoImpersonateAccount``), so scenarios can
use thousands of deterministic accounts without keys. Reverts are decoded through the custom
errors of Aave's ``Errors`` library and of the project's own contracts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from devchain.compile import compile_all
from postmortem.errors import PostmortemError

GAS_PER_TX = 12_000_000


def address_for(label: str) -> str:
    """A deterministic account address for a scenario label (no key: it is impersonated)."""
    return to_checksum_address(keccak(text=f"postmortem-devchain:{label}")[-20:])


class ScenarioTxFailed(PostmortemError):
    pass


@dataclass
class Artifacts:
    contracts: dict[str, dict]

    @classmethod
    def load(cls, path: Path | None = None) -> "Artifacts":
        path = path or compile_all(quiet=True)
        return cls(json.loads(Path(path).read_text())["contracts"])

    def abi(self, name: str) -> list[dict]:
        return self.contracts[name]["abi"]

    @cached_property
    def error_selectors(self) -> dict[str, str]:
        """4-byte selector -> custom error name, across every compiled contract."""
        out: dict[str, str] = {}
        for c in self.contracts.values():
            for item in c["abi"]:
                if item.get("type") == "error":
                    sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                    out["0x" + keccak(text=sig)[:4].hex()] = item["name"]
        return out


@dataclass
class Chain:
    url: str
    artifacts: Artifacts
    w3: Web3 = field(init=False)
    libraries: dict[str, str] = field(default_factory=dict)
    _batching: bool = field(default=False, init=False)
    _pending: list[tuple[str, str]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 120}))
        self.rpc("anvil_autoImpersonateAccount", [True])

    # -- raw RPC -------------------------------------------------------------------------
    def rpc(self, method: str, params: list | None = None) -> Any:
        resp = self.w3.provider.make_request(method, params or [])
        if "error" in resp:
            raise PostmortemError(f"node refused {method}: {resp['error'].get('message')}")
        return resp.get("result")

    def fund(self, address: str, eth: int = 1_000) -> None:
        self.rpc("anvil_setBalance", [address, hex(eth * 10**18)])

    @property
    def block_number(self) -> int:
        return self.w3.eth.block_number

    def set_next_timestamp(self, ts: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", [hex(ts)])

    def increase_time(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [hex(seconds)])

    def mine(self, timestamp: int | None = None) -> None:
        if timestamp is not None:
            self.set_next_timestamp(timestamp)
        self.rpc("evm_mine", [])

    # -- contracts -----------------------------------------------------------------------
    def contract(self, name: str, address: str):
        # Contract objects are costly to build (ABI parsing); scenarios ask for the same ones often.
        key = (name, address.lower())
        cache = self.__dict__.setdefault("_contracts", {})
        if key not in cache:
            cache[key] = self.w3.eth.contract(address=to_checksum_address(address), abi=self.artifacts.abi(name))
        return cache[key]

    def _linked_bytecode(self, name: str) -> str:
        art = self.artifacts.contracts[name]
        code = art["bytecode"]
        for _src, libs in art["linkReferences"].items():
            for lib, refs in libs.items():
                if lib not in self.libraries:
                    self.libraries[lib] = self.deploy(lib, sender=self.deployer).address
                addr = self.libraries[lib][2:].lower()
                for ref in refs:
                    start = ref["start"] * 2
                    code = code[:start] + addr + code[start + ref["length"] * 2 :]
        return code

    deployer: str = ""

    def deploy(self, name: str, *args, sender: str | None = None):
        sender = sender or self.deployer
        factory = self.w3.eth.contract(abi=self.artifacts.abi(name), bytecode=self._linked_bytecode(name))
        tx_hash = factory.constructor(*args).transact({"from": sender, "gas": 30_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt.status != 1:
            raise ScenarioTxFailed(f"deploying {name} reverted")
        return self.contract(name, receipt.contractAddress)

    def explain_revert(self, exc: Exception) -> str:
        data = getattr(exc, "data", None) or getattr(exc, "message", None) or str(exc)
        text = str(data)
        for sel, name in self.artifacts.error_selectors.items():
            if sel[2:] in text:
                return name
        return text[:200]

    def send(self, fn, sender: str, *, gas: int = GAS_PER_TX, value: int = 0, label: str = "") -> str | None:
        """Send a contract call as ``sender``. In a batch, queue it (mined by ``mine_batch``);
        otherwise mine it now and raise a clear error if it reverts."""
        tx = {"from": to_checksum_address(sender), "gas": gas, "value": value}
        if self._batching:
            # Straight to the node: no fee or nonce look-ups per transaction (anvil fills them).
            raw = {"from": tx["from"], "to": fn.address, "data": fn._encode_transaction_data(),
                   "gas": hex(gas), "value": hex(value)}
            tx_hash = self.rpc("eth_sendTransaction", [raw])
            self._pending.append((tx_hash, label))
            return tx_hash
        try:
            tx_hash = fn.transact(tx)
        except (ContractLogicError, ContractCustomError, ValueError) as exc:
            raise ScenarioTxFailed(f"{label or fn.fn_name} reverted: {self.explain_revert(exc)}") from None
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt.status != 1:
            raise ScenarioTxFailed(f"{label or fn.fn_name} reverted")
        return tx_hash

    @staticmethod
    def _hex(value) -> str:
        text = value.hex() if isinstance(value, (bytes, bytearray)) else str(value)
        return (text if text.startswith("0x") else "0x" + text).lower()

    def begin_batch(self) -> None:
        """Queue transactions into one block: automine off, FIFO order (anvil --order fifo)."""
        self.rpc("evm_setAutomine", [False])
        self._batching = True
        self._pending = []

    def mine_batch(self, timestamp: int | None = None) -> list[dict]:
        """Mine the queued transactions into one block; returns their receipts in order."""
        if timestamp is not None:
            self.set_next_timestamp(timestamp)
        self.rpc("evm_mine", [])
        self.rpc("evm_setAutomine", [True])
        self._batching = False
        # One eth_getBlockReceipts per block instead of one receipt request per transaction.
        by_hash: dict[str, Any] = {}
        number = self.block_number
        hashes = {h.lower() for h, _ in self._pending}
        while hashes - set(by_hash) and number >= 0:
            for r in self.w3.eth.get_block_receipts(number):
                by_hash[self._hex(r.transactionHash)] = r
            number -= 1
        missing = [h for h, _ in self._pending if h.lower() not in by_hash]
        if missing:
            raise ScenarioTxFailed(f"{len(missing)} queued transactions were not mined")
        receipts = [by_hash[h.lower()] for h, _ in self._pending]
        blocks = {r.blockNumber for r in receipts}
        if len(blocks) > 1:
            raise ScenarioTxFailed(f"a batch spilled over {len(blocks)} blocks; raise the block gas limit")
        self._pending = []
        return receipts
