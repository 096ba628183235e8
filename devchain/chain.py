"""A thin web3 layer over the devchain: artifacts, linked deploys, transactions, batched blocks.

Every sender is an impersonated address (``anvil_autoImpersonateAccount``), so scenarios can
use thousands of deterministic accounts without keys. Reverts are decoded through the custom
errors of Aave's ``Errors`` library and of the project's own contracts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from postmortem.devchain.compile import compile_all
from postmortem import jsonrpc
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


_SIMPLE_TYPE = re.compile(r"^(address|bool|string|bytes\d*|u?int\d*)(\[\])?$")


def _calldata(fn) -> str:
    """Calldata of a web3 contract call; eth_abi directly for plain argument types (web3's own
    encoder costs milliseconds a call, which set-up of thousands of accounts feels)."""
    types = [i["type"] for i in fn.abi["inputs"]]
    if not all(_SIMPLE_TYPE.match(t) for t in types):
        return fn._encode_transaction_data()
    sig = f"{fn.abi['name']}({','.join(types)})"
    sel = _SELECTORS.get(sig)
    if sel is None:
        sel = _SELECTORS[sig] = keccak(text=sig)[:4]
    return "0x" + (sel + abi_encode(types, list(fn.args))).hex()


_SELECTORS: dict[str, bytes] = {}


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple
    data: bytes
    logIndex: int


@dataclass(frozen=True)
class Receipt:
    """The fields of a receipt the scenario engine reads (attribute names as web3's)."""

    transactionHash: str
    blockNumber: int
    transactionIndex: int
    status: int
    logs: tuple

    @classmethod
    def from_rpc(cls, r: dict) -> "Receipt":
        logs = tuple(Log(lg["address"], tuple(HexBytes(t) for t in lg["topics"]), bytes.fromhex(lg["data"][2:]),
                         int(lg["logIndex"], 16)) for lg in r["logs"])
        return cls(r["transactionHash"], int(r["blockNumber"], 16), int(r["transactionIndex"], 16),
                   int(r["status"], 16), logs)


@dataclass
class Chain:
    url: str
    artifacts: Artifacts
    w3: Web3 = field(init=False)
    libraries: dict[str, str] = field(default_factory=dict)
    _batching: bool = field(default=False, init=False)
    _by_sender: dict | None = field(default=None, init=False)
    _pending: list[tuple[str, str]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 120}))
        # Scenarios send thousands of calls: a plain session (no proxy look-up from the
        # environment on every request, no web3 middleware) keeps set-up fast.
        self._session = requests.Session()
        self._session.trust_env = False
        self.rpc("anvil_autoImpersonateAccount", [True])

    # -- raw RPC -------------------------------------------------------------------------
    def rpc(self, method: str, params: list | None = None) -> Any:
        # One JSON-RPC client for the project (postmortem.jsonrpc); an error answer raises
        # JsonRpcRefused, a PostmortemError saying "node refused <method>: <message>".
        return jsonrpc.call(self.url, method, params or [], timeout=120, session=self._session)

    def fund(self, address: str, eth: int = 1_000) -> None:
        self.rpc("anvil_setBalance", [address, hex(eth * 10**18)])

    @property
    def block_number(self) -> int:
        return self.w3.eth.block_number

    def set_next_timestamp(self, ts: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", [hex(ts)])

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
            raw = {"from": tx["from"], "to": fn.address, "data": _calldata(fn),
                   "gas": hex(gas), "value": hex(value)}
            if self._by_sender is not None:
                self._by_sender.setdefault(raw["from"], []).append((raw, label))
                return None
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

    def begin_batch(self, *, independent_senders: bool = False) -> None:
        """Queue transactions into one block: automine off, FIFO order (anvil --order fifo).

        ``independent_senders``: the senders' transactions do not depend on each other (set-up
        of many accounts), so each sender keeps its own order but the senders are interleaved:
        one JSON-RPC batch carries the next transaction of every sender.
        """
        self.rpc("evm_setAutomine", [False])
        self._batching = True
        self._pending = []
        self._by_sender = {} if independent_senders else None

    def _flush_by_sender(self) -> None:
        queues = list((self._by_sender or {}).values())
        self._by_sender = None
        for rnd in range(max((len(q) for q in queues), default=0)):
            wave = [q[rnd] for q in queues if rnd < len(q)]
            for i in range(0, len(wave), 200):
                part = wave[i : i + 200]
                answers = jsonrpc.call_batch(self.url, [("eth_sendTransaction", [raw]) for raw, _label in part],
                                             timeout=300, session=self._session)
                for a, (_raw, label) in zip(answers, part):
                    if "error" in a or "result" not in a:
                        raise ScenarioTxFailed(f"{label or 'transaction'} was refused: {a.get('error')}")
                    self._pending.append((a["result"], label))

    def mine_batch(self, timestamp: int | None = None) -> list[dict]:
        """Mine the queued transactions into one block; returns their receipts in order."""
        self._flush_by_sender()
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
            for r in self.rpc("eth_getBlockReceipts", [hex(number)]) or []:
                by_hash[r["transactionHash"].lower()] = Receipt.from_rpc(r)
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
