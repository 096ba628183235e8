"""The fast log path gives exactly what the plain one gives (issue 13, ingest speed).

The log path reads an answer in one read (``postmortem.jsonrpc.post``), parses it with msgspec
(``postmortem.jsonrpc.loads``) and turns hex into bytes with one ``binascii.unhexlify`` per column
(``ingest.raw_logs``). These tests hold it to a straightforward reference, one log at a time, on
real anvil answers and on hand-made odd cases: every log layout LOG0..LOG4, empty and odd-length
data, topics and addresses with leading zeros, upper-case hex, non-canonical quantities, removed
logs and malformed values. Equivalence only, no timing.
"""

from __future__ import annotations

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from postmortem import jsonrpc
from postmortem.ingest.decode import decode_logs, raw_logs_from_rpc
from postmortem.ingest.events import RAW_LOG_SCHEMA, DecodeError
from postmortem.ingest.ranges import fetch_logs
from postmortem.ingest.rpc import RpcClient

# -- the reference: one log at a time, in plain Python -------------------------------------------


def reference_raw_logs(logs: list[dict]) -> pa.Table:
    """The raw-log table as the JSON-RPC spec reads, written the obvious way."""
    rows = []
    for log in logs:
        assert not log.get("removed")
        topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
        for t in topics:
            assert len(t) == 32
        rows.append({
            "block_number": int(log["blockNumber"], 16),
            "block_hash": log["blockHash"].lower(),
            "transaction_hash": log["transactionHash"].lower(),
            "transaction_index": int(log["transactionIndex"], 16),
            "log_index": int(log["logIndex"], 16),
            "address": log["address"].lower(),
            **{f"topic{k}": topics[k] if k < len(topics) else None for k in range(4)},
            "data": bytes.fromhex(log["data"][2:]),
        })
    return pa.Table.from_pylist(rows, schema=RAW_LOG_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def assert_same(fast: pa.Table, reference: pa.Table) -> None:
    assert fast.schema == reference.schema == RAW_LOG_SCHEMA
    assert fast.to_pylist() == reference.to_pylist()
    assert fast.equals(reference)
    assert parquet_bytes(fast) == parquet_bytes(reference)  # byte-identical files


# -- real anvil answers -------------------------------------------------------------------------

# An emitter per topic count k: calldata = [data length][topic 1..4][data]; it copies the data to
# memory and emits LOGk(data, topic 1..k).
def _emitter(k: int) -> str:
    code = "600035" + "60a0" + "6000" + "37"  # CALLDATACOPY(0, 0xa0, len)
    for j in range(k, 0, -1):
        code += f"60{0x20 * j:02x}35"  # topic j
    code += "600035" + "6000" + f"{0xA0 + k:02x}" + "00"  # LOGk(0, len, ...) STOP
    return "0x" + code


# Addresses with leading zero bytes, as real contracts have now and then.
EMITTERS = [f"0x00000000000000000000000000000000000e{k:04x}" for k in range(5)]


def _word(value: int) -> str:
    return f"{value:064x}"


@pytest.fixture(scope="module")
def emitted(node):
    """Logs of every layout on a real anvil: (url, first block, last block)."""
    url = node.url
    sender = jsonrpc.call(url, "eth_accounts")[0]
    for k, address in enumerate(EMITTERS):
        jsonrpc.call(url, "anvil_setCode", [address, _emitter(k)])
    rng = random.Random(13)
    first = int(jsonrpc.call(url, "eth_blockNumber"), 16) + 1
    jsonrpc.call(url, "evm_setAutomine", [False])
    try:
        for block in range(6):
            for i in range(12):
                k = (block + i) % 5
                size = [0, 1, 31, 32, 33, 64, 95, 160][(block * 12 + i) % 8]
                topics = [
                    0,  # all zeros
                    1,  # leading zeros
                    rng.getrandbits(256),
                    (1 << 256) - 1,
                ]
                data = bytes(rng.getrandbits(8) if (j + i) % 3 else 0 for j in range(size))
                calldata = "0x" + _word(size) + "".join(_word(t) for t in topics) + data.hex()
                jsonrpc.call(url, "eth_sendTransaction", [{"from": sender, "to": EMITTERS[k], "data": calldata,
                                                           "gas": hex(200_000)}])
            jsonrpc.call(url, "evm_mine")
    finally:
        jsonrpc.call(url, "evm_setAutomine", [True])
    last = int(jsonrpc.call(url, "eth_blockNumber"), 16)
    return url, first, last


def _answer_body(url: str, first: int, last: int) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
                       "params": [{"fromBlock": hex(first), "toBlock": hex(last), "address": EMITTERS}]})
    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30).content


def test_anvil_answers_parse_to_the_standard_librarys_values(emitted):
    url, first, last = emitted
    body = _answer_body(url, first, last)
    assert jsonrpc.loads(body) == json.loads(body)
    logs = json.loads(body)["result"]
    assert len(logs) == 72
    assert {len(lg["topics"]) for lg in logs} == {0, 1, 2, 3, 4}
    assert {len(lg["data"]) for lg in logs} >= {2, 4, 66, 322}  # empty, one byte, one word, five words


def test_post_reads_the_same_body_as_requests_does(emitted):
    url, first, last = emitted
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
                       "params": [{"fromBlock": hex(first), "toBlock": hex(last)}]}).encode()
    ours = jsonrpc.post(url, body, timeout=30)
    with requests.Session() as session:
        ours_in_session = jsonrpc.post(url, body, timeout=30, session=session)
        again = jsonrpc.post(url, body, timeout=30, session=session)  # the connection went back to the pool
    theirs = requests.post(url, data=body, headers=jsonrpc.HEADERS, timeout=30)
    assert ours.content == ours_in_session.content == again.content == theirs.content
    assert len(ours.content) > 10_000 and ours.status_code == 200
    assert jsonrpc.loads(ours.content) == theirs.json()


def test_the_fetched_raw_table_equals_the_reference_on_anvil_logs(emitted):
    url, first, last = emitted
    reference = reference_raw_logs(json.loads(_answer_body(url, first, last))["result"])
    client = RpcClient(url)
    try:
        got = fetch_logs(client, addresses=EMITTERS, topics=None, from_block=first, to_block=last, initial_width=2)
    finally:
        client.close()
    logs = [lg for r in got for lg in r.logs]
    table = raw_logs_from_rpc(logs)
    assert_same(table, reference)
    assert {k: t.to_pylist() for k, t in decode_logs(table, strict=False).items()} == {
        k: t.to_pylist() for k, t in decode_logs(reference, strict=False).items()}


def _shout(log: dict, rng: random.Random) -> dict:
    """The same log in upper-case hex digits (the ``0x`` prefix stays lower-case, as the spec writes it)."""
    def up(text: str) -> str:
        return "0x" + text[2:].upper() if rng.random() < 0.5 else text
    return dict(log, blockHash=up(log["blockHash"]), transactionHash=up(log["transactionHash"]),
                address=up(log["address"]), data=up(log["data"]), topics=[up(t) for t in log["topics"]],
                blockNumber="0x" + log["blockNumber"][2:].upper(), logIndex="0x000" + log["logIndex"][2:])


def test_upper_case_hex_and_leading_zeros_give_the_same_table(emitted):
    url, first, last = emitted
    logs = json.loads(_answer_body(url, first, last))["result"]
    rng = random.Random(3)
    odd = [_shout(lg, rng) for lg in logs]
    assert_same(raw_logs_from_rpc(odd), reference_raw_logs(logs))


# -- malformed and refused logs: each is named with its position, block and log index --------

BASE = {
    "address": "0x" + "ab" * 20, "blockHash": "0x" + "cd" * 32, "blockNumber": "0x1b4", "data": "0x" + "01" * 40,
    "logIndex": "0x3", "removed": False, "topics": ["0x" + "ef" * 32, "0x" + "00" * 31 + "07"],
    "transactionHash": "0x" + "12" * 32, "transactionIndex": "0x1",
}

MALFORMED = [
    ("upper-case 0X prefix", dict(BASE, address="0X" + "ab" * 20)),
    ("upper-case 0X prefix on data", dict(BASE, data="0X" + "01" * 40)),
    ("space in a hash", dict(BASE, blockHash="0x" + "cd" * 31 + " c")),
    ("space in data", dict(BASE, data="0x" + "01" * 39 + " 1")),
    ("data with two prefixes", dict(BASE, data="0x01" + "0x" + "01" * 39)),
    ("a hash one digit short, the next one long", dict(BASE, transactionHash="0x" + "12" * 32 + "1")),
    ("odd data", dict(BASE, data="0x012")),
    ("non-ascii digit", dict(BASE, data="0x" + "01" * 39 + "٠١")),
    ("x inside a topic", dict(BASE, topics=["0x" + "ef" * 31 + "x0"])),
    ("quantity without 0x", dict(BASE, logIndex="3")),
    ("quantity too big", dict(BASE, transactionIndex="0x" + "f" * 9)),
    ("quantity as a number", dict(BASE, blockNumber=436)),
    ("topic as bytes", dict(BASE, topics=[b"\xef" * 32])),
    ("five topics", dict(BASE, topics=BASE["topics"] * 3)),
    ("topics not a list", dict(BASE, topics="0x" + "ef" * 32)),
    ("data as a list", dict(BASE, data=["0x00"])),
    ("removed by a reorg", dict(BASE, removed=True)),
]


@pytest.mark.parametrize("name,bad", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_log_is_named(name, bad):
    logs = [dict(BASE, logIndex=hex(i)) for i in range(4)] + [bad]
    with pytest.raises(DecodeError, match=r"eth_getLogs result #4 \(block ('0x1b4'|436)") as info:
        raw_logs_from_rpc(logs)
    assert "the node returned a malformed log" in str(info.value) or "removed" in str(info.value)
    with pytest.raises(DecodeError):
        raw_logs_from_rpc([bad])  # alone, too


def test_a_hash_one_digit_short_beside_one_a_digit_long_is_refused():
    """Two wrong lengths that add up to the right total must not pass as two good values."""
    logs = [dict(BASE, blockHash="0x" + "cd" * 32 + "c"), dict(BASE, blockHash="0x" + "cd" * 31 + "c")]
    with pytest.raises(DecodeError, match="blockHash"):
        raw_logs_from_rpc(logs)


def test_synthetic_market_logs_match_the_reference():
    """20,000 logs with the event mix of an Aave market, some of them upper-cased."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_decode import synthetic_raw_logs, to_rpc

    table = synthetic_raw_logs(20_000, seed=11)
    logs = to_rpc(table)
    rng = random.Random(5)
    logs = [_shout(lg, rng) if rng.random() < 0.1 else lg for lg in logs]
    got = raw_logs_from_rpc(logs)
    assert_same(got, table)
    assert_same(got, reference_raw_logs(logs))
    assert {k: t.num_rows for k, t in decode_logs(got).items()} == {k: t.num_rows for k, t in decode_logs(table).items()}


# -- the JSON parser ---------------------------------------------------------------------------

ODD_BODIES = [
    b'{"jsonrpc":"2.0","id":1,"result":"0x1"}',
    b'{"id": 123456789012345678901234567890, "result": [1.5, -0.0, 1e-7, 12345678901234567890123]}',
    b'{"a": NaN, "b": Infinity}',  # not JSON, but Python's parser reads it: so do we
    b'{"a": 1e400}',
    b'\xef\xbb\xbf{"a": 1}',  # a byte-order mark
    '{"a": "\u00e9\u4e2d"}'.encode("utf-16"),
    b'{"a": "\\ud800"}',  # a lone surrogate
    b'{"a": 1, "a": 2}',
    b'{"a": "\\u0041\\n\\"", "b": [true, false, null, {}]}',
    b'  [ {"id": 1, "result": null} ] \n',
]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_loads_reads_what_json_loads_reads(body):
    expected = json.loads(body)
    got = jsonrpc.loads(body)
    assert repr(got) == repr(expected)  # repr: nan != nan, and -0.0 == 0.0


@pytest.mark.parametrize("body", [b"", b"{", b"[1,]", b"<html>", b"\xff\xfe\x00", b'{"a": 1} x'])
def test_loads_refuses_what_json_loads_refuses(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        jsonrpc.loads(body)
