"""Historical reads through Multicall3 (aggregate3) and through plain batched eth_call give the
same results, on a real anvil: before Multicall3's deployment block, after it, and on a client
that never uses it; reverting reads, a no-code address and wrong-shape answers included."""

from __future__ import annotations

import json
import time

import pytest

from postmortem.devchain.compile import compile_all
from postmortem.ingest.calls import MULTICALL3, Read, run_reads
from postmortem.ingest.rpc import RpcClient

NO_CODE = "0x00000000000000000000000000000000000b0b00"


def _artifact(name: str) -> dict:
    return json.loads(compile_all(quiet=True).read_text())["contracts"][name]


def _deploy(client: RpcClient, name: str) -> str:
    sender = client.call("eth_accounts", [])[0]
    tx = client.call("eth_sendTransaction", [{"from": sender, "data": "0x" + _artifact(name)["bytecode"],
                                               "gas": hex(3_000_000)}])
    receipt = None
    for _ in range(200):  # automine answers before the receipt is there
        receipt = client.call("eth_getTransactionReceipt", [tx])
        if receipt:
            break
        time.sleep(0.02)
    return receipt["contractAddress"].lower()


@pytest.fixture(scope="module")
def chain(node):
    """A plain anvil: a target contract from block ~1, Multicall3 placed at its canonical
    address only some blocks later."""
    client = RpcClient(node.url)
    target = _deploy(client, "Multicall3Like")  # a contract with a few view functions to read
    client.call("anvil_mine", [hex(5)])
    before = int(client.call("eth_blockNumber", []), 16)
    runtime = client.call("eth_getCode", [target, "latest"])
    client.call("anvil_setCode", [MULTICALL3, runtime])
    client.call("anvil_mine", [hex(3)])
    after = int(client.call("eth_blockNumber", []), 16)
    # anvil_setCode changes the head's state: ask the node where the code starts.
    with_code = [b for b in range(1, after + 1) if client.call("eth_getCode", [MULTICALL3, hex(b)]) not in ("0x", "")]
    client.close()
    assert with_code == list(range(with_code[0], after + 1)) and with_code[0] > 3
    return {"url": node.url, "target": target, "before": with_code[0] - 1, "after": after}


def _reads(target: str, blocks: list[int]) -> list[Read]:
    out = []
    for b in blocks:
        out += [
            Read(target, "getBlockNumber()", block=b),  # a plain uint256
            Read(target, "getChainId()", block=b),
            Read(target, "getEthBalance(address)", (NO_CODE,), block=b),
            Read(target, "getBlockNumber()", out=("string",), block=b),  # wrong shape: None
            Read(target, "getBlockNumber()", out=("uint256", "uint256", "uint256"), block=b),  # too short: None
            Read(target, "noSuchFunction()", block=b),  # reverts (no fallback): None
            Read(target, "aggregate3((address,bool,bytes)[])", ([(target, False, b"\x01\x02\x03\x04")],), block=b),  # reverts
            Read(NO_CODE, "decimals()", out=("uint8",), block=b),  # no code: None
            Read(target, "getCurrentBlockTimestamp()", block=b),
        ]
    return out


def _client(url: str, batch: int) -> RpcClient:
    c = RpcClient(url, max_batch=7)
    c.multicall_batch = batch
    return c


def test_multicall_and_plain_reads_are_identical(chain):
    blocks = list(range(chain["before"] - 2, chain["after"] + 1))
    reads = _reads(chain["target"], blocks)
    plain = _client(chain["url"], 0)
    multi = _client(chain["url"], 4)  # small packs: several aggregate3 calls per block
    try:
        want = run_reads(plain, reads)
        got = run_reads(multi, reads)
        assert got == want
        # The results are real, not a run of Nones.
        per = len(reads) // len(blocks)
        for k, b in enumerate(blocks):
            row = want[k * per : (k + 1) * per]
            assert row[0] == b and row[1] == 31337 and row[2] == 0 and row[8] > 0
            assert row[3:8] == [None] * 5
        s_plain, s_multi = plain.stats(), multi.stats()
        assert s_plain.get("multicall_calls", 0) == 0
        assert s_plain["calls_by_method"]["eth_call"] == len(reads)
        after = [b for b in blocks if b > chain["before"]]
        assert s_multi["multicall_reads"] == per * len(after)  # only blocks where it has code
        assert s_multi["multicall_calls"] == len(after) * -(-per // 4)
        assert s_multi["reads"] == s_plain["reads"] == len(reads)
        # Far fewer eth_calls than reads, and eth_getCode asked once per edge, not per block.
        assert s_multi["calls_by_method"]["eth_call"] == per * (len(blocks) - len(after)) + s_multi["multicall_calls"]
        assert s_multi["calls_by_method"]["eth_getCode"] <= 6
    finally:
        plain.close()
        multi.close()


def test_before_deployment_falls_back_to_plain_calls(chain):
    blocks = list(range(1, chain["before"] + 1))
    reads = _reads(chain["target"], blocks)
    plain, multi = _client(chain["url"], 0), _client(chain["url"], 250)
    try:
        assert run_reads(multi, reads) == run_reads(plain, reads)
        s = multi.stats()
        assert s.get("multicall_calls", 0) == 0
        assert s["calls_by_method"]["eth_getCode"] == 1  # the last block has no code: none before it
    finally:
        plain.close()
        multi.close()


def test_all_after_deployment_one_call_per_block(chain):
    blocks = list(range(chain["before"] + 1, chain["after"] + 1))
    reads = _reads(chain["target"], blocks)
    plain, multi = _client(chain["url"], 0), _client(chain["url"], 250)
    try:
        assert run_reads(multi, reads) == run_reads(plain, reads)
        s = multi.stats()
        assert s["multicall_calls"] == len(blocks)
        assert s["calls_by_method"]["eth_call"] == len(blocks)
        assert s["calls_by_method"]["eth_getCode"] == 2  # the last and the first block: all between too
    finally:
        plain.close()
        multi.close()
