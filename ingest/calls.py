"""Historical ``eth_call`` reads in JSON-RPC batches, encoded and decoded with eth_abi.

A ``Read`` names a contract, a function signature, its arguments, its output types and the
block. ``run_reads`` sends them all through ``RpcClient.map_batched`` and decodes the answers;
a call that reverts comes back as ``None`` (probing optional functions is normal: "is this
price source a capped-ratio adapter?"), any other failure raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from eth_abi import decode, encode
from eth_utils import keccak

from postmortem.ingest.rpc import ArchiveStateError, RpcError

_SELECTORS: dict[str, bytes] = {}


def selector(signature: str) -> bytes:
    sel = _SELECTORS.get(signature)
    if sel is None:
        sel = _SELECTORS[signature] = keccak(text=signature)[:4]
    return sel


def _arg_types(signature: str) -> list[str]:
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    return [t for t in inner.split(",") if t]


@dataclass(frozen=True)
class Read:
    to: str
    signature: str
    args: tuple = ()
    out: tuple[str, ...] = ("uint256",)
    block: int | str = "latest"

    def params(self) -> list:
        data = selector(self.signature) + (encode(_arg_types(self.signature), list(self.args)) if self.args else b"")
        block = self.block if isinstance(self.block, str) else hex(self.block)
        return [{"to": self.to, "data": "0x" + data.hex()}, block]


def _is_revert(err: RpcError) -> bool:
    msg = (err.message or "").lower()
    return err.code in (3, -32015) or "revert" in msg or "execution reverted" in msg or "invalid opcode" in msg


def run_reads(client, reads: Sequence[Read]) -> list[Any]:
    """Decoded results in order; a single output is returned bare, several as a tuple;
    ``None`` where the call reverted or returned nothing (no code at the address)."""
    if not reads:
        return []
    answers = client.map_batched([("eth_call", r.params()) for r in reads], return_errors=True)
    out: list[Any] = []
    for r, ans in zip(reads, answers):
        if isinstance(ans, ArchiveStateError):
            raise ans
        if isinstance(ans, RpcError):
            if _is_revert(ans):
                out.append(None)
                continue
            raise ans
        raw = bytes.fromhex(ans[2:]) if isinstance(ans, str) else b""
        if not raw:
            out.append(None)
            continue
        try:
            vals = decode(list(r.out), raw)
        except Exception:  # noqa: BLE001 - a contract answering in another shape: not this function
            out.append(None)
            continue
        out.append(vals[0] if len(vals) == 1 else tuple(vals))
    return out
