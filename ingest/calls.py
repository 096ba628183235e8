"""Historical ``eth_call`` reads, encoded and decoded with eth_abi: the single entry point of
every state read ingest makes (``run_reads``).

A ``Read`` names a contract, a function signature, its arguments, its output types and the
block. ``run_reads`` groups the reads by block and, where Multicall3 is deployed at that block
(``MULTICALL3``, checked with ``eth_getCode``), sends them a few hundred at a time inside one
``aggregate3`` ``eth_call`` with ``allowFailure`` set; elsewhere (before its deployment, on a
chain without it) each read is its own ``eth_call`` in JSON-RPC batches. Either way the calls
go through ``RpcClient.map_batched`` and the results are the same:

* a call that reverts is ``None`` (probing optional functions is normal: "is this price source
  a capped-ratio adapter?"); in Multicall3 that is a sub-call with ``success = false``;
* an empty answer (no code at the address) is ``None``; so is an answer that does not decode
  as the expected types (a contract answering in another shape: not this function);
* any other failure raises, and missing archive state of the outer call stays an
  ``ArchiveStateError``.

Cost counters: every read adds to the client's ``reads``; reads carried inside a Multicall3
call add to ``multicall_reads`` and each ``aggregate3`` call to ``multicall_calls``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Sequence

from eth_abi import decode, encode
from eth_utils import keccak

from postmortem.ingest.rpc import ArchiveStateError, RpcError

_SELECTORS: dict[str, bytes] = {}

# Multicall3's canonical address (the same on every chain it is on); on Ethereum mainnet it has
# code from block 14,353,601.
MULTICALL3 = "0xca11bde05977b3631167028862be2a173976ca11"
AGGREGATE3 = "aggregate3((address,bool,bytes)[])"
# Reads per aggregate3 call: a few hundred keeps the answer and the gas of one eth_call modest
# (a position read is a few thousand gas; nodes cap an eth_call at 50M gas or more).
DEFAULT_MULTICALL_BATCH = 250


def selector(signature: str) -> bytes:
    sel = _SELECTORS.get(signature)
    if sel is None:
        sel = _SELECTORS[signature] = keccak(text=signature)[:4]
    return sel


def _arg_types(signature: str) -> list[str]:
    """The argument types of ``f(a,(b,c)[],d)``: split at top-level commas only."""
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    out, depth, cur = [], 0, ""
    for ch in inner:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t for t in out if t]


def _block_param(block: int | str) -> str:
    return block if isinstance(block, str) else hex(block)


@dataclass(frozen=True)
class Read:
    to: str
    signature: str
    args: tuple = ()
    out: tuple[str, ...] = ("uint256",)
    block: int | str = "latest"

    def calldata(self) -> bytes:
        return selector(self.signature) + (encode(_arg_types(self.signature), list(self.args)) if self.args else b"")

    def params(self) -> list:
        return [{"to": self.to, "data": "0x" + self.calldata().hex()}, _block_param(self.block)]


def _is_revert(err: RpcError) -> bool:
    msg = (err.message or "").lower()
    return err.code in (3, -32015) or "revert" in msg or "execution reverted" in msg or "invalid opcode" in msg


def _decode(r: Read, raw: bytes) -> Any:
    if not raw:
        return None
    try:
        vals = decode(list(r.out), raw)
    except Exception:  # noqa: BLE001 - a contract answering in another shape: not this function
        return None
    return vals[0] if len(vals) == 1 else tuple(vals)


# -- where Multicall3 is --------------------------------------------------------------------------


class _Deployment:
    """What is known about Multicall3's code on one client's chain, as block bounds: code at
    ``with_code`` implies code at every later block, none at ``without_code`` none before.
    (Multicall3 has no selfdestruct, so its code never leaves.)"""

    def __init__(self) -> None:
        self.with_code: int | None = None  # lowest block seen with code
        self.without_code: int | None = None  # highest block seen without code
        self.checks = 0

    def known(self, block: int) -> bool | None:
        if self.with_code is not None and block >= self.with_code:
            return True
        if self.without_code is not None and block <= self.without_code:
            return False
        return None

    def learn(self, block: int, has_code: bool) -> None:
        if has_code:
            self.with_code = block if self.with_code is None else min(self.with_code, block)
        else:
            self.without_code = block if self.without_code is None else max(self.without_code, block)


_DEPLOYMENTS: "weakref.WeakKeyDictionary[Any, _Deployment]" = weakref.WeakKeyDictionary()


def multicall_batch_of(client) -> int:
    """Reads per ``aggregate3`` call for this client (``client.multicall_batch``; 0 = never use
    Multicall3)."""
    return int(getattr(client, "multicall_batch", DEFAULT_MULTICALL_BATCH))


def _multicall_blocks(client, blocks: list[int]) -> set[int]:
    """The blocks among ``blocks`` at which Multicall3 has code. One ``eth_getCode`` per block
    whose answer is not already implied by what was seen before; the highest, then the lowest
    block is asked first, so a range wholly before the deployment costs one call and one after it two."""
    dep = _DEPLOYMENTS.get(client)
    if dep is None:
        dep = _DEPLOYMENTS[client] = _Deployment()
    ordered = sorted(set(blocks))
    if not ordered:
        return set()
    queue = [ordered[-1], ordered[0]]
    lo, hi = 0, len(ordered) - 1
    # Bisect the blocks still unknown between the two ends.
    while queue:
        for b in queue:
            if dep.known(b) is None:
                code = client.call("eth_getCode", [MULTICALL3, hex(b)])
                dep.checks += 1
                dep.learn(b, bool(code) and code not in ("0x", "0x0"))
        queue = []
        unknown = [i for i in range(lo, hi + 1) if dep.known(ordered[i]) is None]
        if unknown:
            queue = [ordered[unknown[len(unknown) // 2]]]
    return {b for b in ordered if dep.known(b)}


# -- running reads --------------------------------------------------------------------------------


def run_reads(client, reads: Sequence[Read]) -> list[Any]:
    """Decoded results in order; a single output is returned bare, several as a tuple;
    ``None`` where the call reverted, returned nothing (no code at the address) or answered in
    another shape. Through Multicall3 where it is deployed at the block read, else plain
    batched ``eth_call``s; identical results either way."""
    if not reads:
        return []
    out: list[Any] = [None] * len(reads)
    size = multicall_batch_of(client)
    via_multicall: set[int] = set()
    if size > 0:
        numbered = [r.block for r in reads if isinstance(r.block, int)]
        via_multicall = _multicall_blocks(client, numbered)
    plain = [i for i, r in enumerate(reads) if not (isinstance(r.block, int) and r.block in via_multicall)]
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(reads):
        if isinstance(r.block, int) and r.block in via_multicall:
            groups.setdefault(r.block, []).append(i)
    packs: list[tuple[int, list[int]]] = []
    for block, idx in groups.items():
        for k in range(0, len(idx), size):
            packs.append((block, idx[k : k + size]))
    calls = [("eth_call", reads[i].params()) for i in plain]
    calls += [("eth_call", _aggregate3_params(reads, idx, block)) for block, idx in packs]
    answers = client.map_batched(calls, return_errors=True) if calls else []
    client_count = getattr(client, "count", None)
    if client_count is not None:
        client_count(reads=len(reads), multicall_calls=len(packs), multicall_reads=sum(len(i) for _, i in packs))
    for i, ans in zip(plain, answers[: len(plain)]):
        out[i] = _plain_result(reads[i], ans)
    retry: list[int] = []
    for (block, idx), ans in zip(packs, answers[len(plain) :]):
        results = _aggregate3_results(ans, len(idx))
        if results is None:
            retry += idx  # the outer call itself reverted (e.g. out of gas): read these one by one
            continue
        for i, (ok, data) in zip(idx, results):
            out[i] = _decode(reads[i], data) if ok else None
    if retry:
        again = client.map_batched([("eth_call", reads[i].params()) for i in retry], return_errors=True)
        for i, ans in zip(retry, again):
            out[i] = _plain_result(reads[i], ans)
    return out


def _answer_bytes(ans: Any) -> bytes | None:
    """The bytes an ``eth_call`` answered; None when it reverted; any other failure raises
    (missing archive state stays an ``ArchiveStateError``)."""
    if isinstance(ans, ArchiveStateError):
        raise ans
    if isinstance(ans, RpcError):
        if _is_revert(ans):
            return None
        raise ans
    return bytes.fromhex(ans[2:]) if isinstance(ans, str) and ans.startswith("0x") else b""


def _plain_result(r: Read, ans: Any) -> Any:
    raw = _answer_bytes(ans)
    return None if raw is None else _decode(r, raw)


def _aggregate3_params(reads: Sequence[Read], idx: list[int], block: int) -> list:
    payload = [(reads[i].to, True, reads[i].calldata()) for i in idx]
    data = selector(AGGREGATE3) + encode(["(address,bool,bytes)[]"], [payload])
    return [{"to": MULTICALL3, "data": "0x" + data.hex()}, _block_param(block)]


def _aggregate3_results(ans: Any, n: int) -> list[tuple[bool, bytes]] | None:
    """``(success, returnData)`` per sub-call, or None when the outer call reverted; any other
    failure of the outer call raises (missing archive state stays an ``ArchiveStateError``)."""
    raw = _answer_bytes(ans)
    if raw is None:
        return None
    try:
        (results,) = decode(["(bool,bytes)[]"], raw)
    except Exception:  # noqa: BLE001 - not Multicall3's answer: read one by one instead
        return None
    if len(results) != n:
        return None
    return [(bool(ok), bytes(data)) for ok, data in results]
