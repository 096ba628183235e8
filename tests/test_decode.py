"""The vectorised log decoder against web3.py's own decoding, and its refusals.

Logs are ABI-encoded with eth_abi, passed through ``raw_logs_from_rpc`` as JSON-RPC
results, decoded by ``decode_logs`` and compared field by field with
``web3._utils.events.get_event_data`` on the same log. Malformed logs must raise a
``DecodeError`` naming the block and log (strict) or be counted in ``undecoded``
(non-strict): never become a wrong row.
"""

from __future__ import annotations

import random
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import eth_abi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3._utils.events import get_event_data

from postmortem.ingest.decode import decode_logs, raw_logs_from_rpc
from postmortem.ingest.events import (
    COMMON_COLUMNS,
    DECIMAL_TYPE,
    EVENTS,
    RAW_LOG_SCHEMA,
    TABLE_SCHEMAS,
    UNDECODED_SCHEMA,
    DecodeError,
    Event,
    event,
    int_bits,
    snake_case,
)

REPO = Path(__file__).resolve().parent.parent
AAVE_SRC = REPO / "node_modules" / "@aave-dao" / "aave-v3-origin" / "src" / "contracts"
CODEC = Web3().codec
BY_NAME = {ev.name: ev for ev in EVENTS}
DEC_MAX = 10**38 - 1

# topic0 values from shared/reference/aave-v3.md (computed there from the signatures).
REFERENCE_TOPIC0 = {
    "Supply": "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61",
    "Withdraw": "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
    "Borrow": "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0",
    "Repay": "0xa534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051",
    "LiquidationCall": "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
    "ReserveDataUpdated": "0x804c9b842b2748a22bb64b345453a3de7ca54a6ca45ce00d415894979e22897a",
    "ReserveUsedAsCollateralEnabled": "0x00058a56ea94653cdf4f152d227ace22d4c00ad99e2a43f58cb7d9e3feb295f2",
    "ReserveUsedAsCollateralDisabled": "0x44c58d81365b66dd4b1a7f36c25aa97b8c71c361ee4937adc1a00000227db5dd",
    "UserEModeSet": "0xd728da875fc88944cbf17638bcbe4af0eedaef63becd1d1c57cc097eb4608d84",
    "DeficitCreated": "0x2bccfb3fad376d59d7accf970515eb77b2f27b082c90ed0fb15583dd5a942699",
    "Mint": "0x458f5fa412d0f69b08dd84872b0215675cc67bc1d5b6fd93300a1c3878b86196",
    "Burn": "0x4cf25bc1d991c17529c25213d3cc0cda295eeaad5f13f361969b12ea48015f90",
    "BalanceTransfer": "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666",
    "Transfer": "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    "AnswerUpdated": "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f",
    "NewRound": "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271",
    "AssetSourceUpdated": "0x22c5b7b2d8561d39f7f210b6b326a1aa69f15311163082308ac4877db6339dc1",
    "CapParametersUpdated": "0x47f15f366dcc3684fc77c4f79eb851bb5befbc095ec7a296a53a27a622964c63",
}

# Where each event's declaration lives (the catalogue must match it parameter by parameter).
SOURCES = {
    "IPool.sol": AAVE_SRC / "interfaces" / "IPool.sol",
    "IScaledBalanceToken.sol": AAVE_SRC / "interfaces" / "IScaledBalanceToken.sol",
    "IAToken.sol": AAVE_SRC / "interfaces" / "IAToken.sol",
    "IPoolConfigurator.sol": AAVE_SRC / "interfaces" / "IPoolConfigurator.sol",
    "IAaveOracle.sol": AAVE_SRC / "interfaces" / "IAaveOracle.sol",
    "AggregatorInterface.sol": AAVE_SRC / "dependencies" / "chainlink" / "AggregatorInterface.sol",
    "IERC20.sol": AAVE_SRC / "dependencies" / "openzeppelin" / "contracts" / "IERC20.sol",
    "CappedRatioAdapter.sol": REPO / "devchain" / "contracts" / "CappedRatioAdapter.sol",
}
# Solidity types that are not ABI types: enums are uint8 on the wire.
SOLIDITY_TO_ABI = {"DataTypes.InterestRateMode": "uint8"}


# ======================================================================================
# Building logs
# ======================================================================================


def word(abi_type: str, value) -> bytes:
    return eth_abi.encode([abi_type], [value])


def rpc_log(ev: Event, values: dict, *, block: int = 1, index: int = 0, emitter: str | None = None) -> dict:
    """An eth_getLogs JSON result for ``ev`` with ``values`` (Solidity names -> Python values)."""
    topics = [ev.topic0] + [word(p.abi_type, values[p.name]) for p in ev.indexed]
    data = eth_abi.encode([p.abi_type for p in ev.non_indexed], [values[p.name] for p in ev.non_indexed])
    return {
        "address": emitter or "0x" + (b"\xaa" * 20).hex(),
        "blockHash": "0x" + block.to_bytes(32, "big").hex(),
        "blockNumber": hex(block),
        "data": "0x" + data.hex(),
        "logIndex": hex(index),
        "removed": False,
        "topics": ["0x" + t.hex() for t in topics],
        "transactionHash": "0x" + (block * 1000 + index).to_bytes(32, "big").hex(),
        "transactionIndex": hex(index // 2),
    }


def web3_log(rpc: dict) -> dict:
    """The same log in the shape web3.py's get_event_data takes."""
    return {
        "address": Web3.to_checksum_address(rpc["address"]),
        "blockHash": bytes.fromhex(rpc["blockHash"][2:]),
        "blockNumber": int(rpc["blockNumber"], 16),
        "logIndex": int(rpc["logIndex"], 16),
        "transactionHash": bytes.fromhex(rpc["transactionHash"][2:]),
        "transactionIndex": int(rpc["transactionIndex"], 16),
        "topics": [bytes.fromhex(t[2:]) for t in rpc["topics"]],
        "data": bytes.fromhex(rpc["data"][2:]),
    }


def as_python(value):
    """A decoded Arrow value in the form web3 returns it."""
    if isinstance(value, Decimal):
        assert value == value.to_integral_value()
        return int(value)
    return value


def web3_expected(ev: Event, rpc: dict):
    """web3.py's decoding, normalised to the decoder's conventions (lowercase addresses)."""
    args = get_event_data(CODEC, ev.abi(), web3_log(rpc))["args"]
    out = {}
    for p in ev.params:
        v = args[p.name]
        out[p.column] = v.lower() if p.abi_type == "address" else v
    return out


def assert_rows_match(ev: Event, table: pa.Table, logs: list[dict], values: list[dict]) -> None:
    """Every decoded row equals web3's decoding and the values that were encoded."""
    rows = table.to_pylist()
    assert len(rows) == len(logs)
    for row, rpc, vals in zip(rows, logs, values):
        expected = web3_expected(ev, rpc)
        for p in ev.params:
            got = as_python(row[p.column])
            assert got == expected[p.column], (ev.name, p.name, got, expected[p.column])
            want = vals[p.name].lower() if p.abi_type == "address" else vals[p.name]
            assert got == want, (ev.name, p.name, got, want)
        assert row["block_number"] == int(rpc["blockNumber"], 16)
        assert row["log_index"] == int(rpc["logIndex"], 16)
        assert row["transaction_index"] == int(rpc["transactionIndex"], 16)
        assert row["block_hash"] == rpc["blockHash"]
        assert row["transaction_hash"] == rpc["transactionHash"]
        assert row["address"] == rpc["address"].lower()
        for name, _type, value in ev.constants:
            assert row[name] == value


# ======================================================================================
# Value strategies: boundaries plus random values, every one exactly representable
# ======================================================================================


def _bounds(abi_type: str) -> tuple[int, int]:
    """Inclusive range a column can hold for ``abi_type`` (DECIMAL(38,0) caps wide ints)."""
    bits = int_bits(abi_type)
    if abi_type.startswith("uint"):
        return 0, min((1 << bits) - 1, DEC_MAX) if bits > 63 else (1 << bits) - 1
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return (max(lo, -DEC_MAX), min(hi, DEC_MAX)) if bits > 64 else (lo, hi)


def int_strategy(abi_type: str) -> st.SearchStrategy[int]:
    lo, hi = _bounds(abi_type)
    edges = [v for v in (0, 1, 2, 2**63 - 1, 2**64 - 1, 2**64, 2**127 - 1 if hi >= 2**127 - 1 else hi,
                          2**128 // 3, 10**27, hi, hi - 1, lo, lo + 1, -1, -(2**64), -(10**27))
             if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def value_strategy(abi_type: str) -> st.SearchStrategy:
    if abi_type == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if abi_type == "bool":
        return st.booleans()
    if abi_type == "string":
        return st.text(max_size=70)
    return int_strategy(abi_type)


def values_strategy(ev: Event) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({p.name: value_strategy(p.abi_type) for p in ev.params})


def random_values(ev: Event, rng: random.Random) -> dict:
    """Plain-random valid values (for the big mixed batches)."""
    out = {}
    for p in ev.params:
        if p.abi_type == "address":
            out[p.name] = "0x" + rng.randbytes(20).hex()
        elif p.abi_type == "bool":
            out[p.name] = rng.random() < 0.5
        elif p.abi_type == "string":
            out[p.name] = rng.choice(["", "ETH correlated", "Stablecoins ≈ 1$", "x" * 45])
        else:
            lo, hi = _bounds(p.abi_type)
            out[p.name] = rng.choice([lo, hi, 0, rng.randint(lo, hi), rng.randint(max(lo, -(2**70)), min(hi, 2**70))])
    return out


# ======================================================================================
# The catalogue
# ======================================================================================


def test_topic0_match_the_reference_table():
    for name, topic0 in REFERENCE_TOPIC0.items():
        assert BY_NAME[name].topic0_hex == topic0, name


def _source_declarations(path: Path) -> dict[str, list[tuple[str, bool, str]]]:
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    found = {}
    for m in re.finditer(r"\bevent\s+(\w+)\s*\(([^)]*)\)\s*;", text):
        params = []
        for part in filter(None, (x.strip() for x in m.group(2).split(","))):
            words = part.split()
            indexed = len(words) == 3 and words[1] == "indexed"
            typ = SOLIDITY_TO_ABI.get(words[0], words[0])
            params.append((typ, indexed, words[-1]))
        found[m.group(1)] = params
    return found


def test_catalogue_declarations_match_the_contract_sources():
    """Each catalogue event has exactly the parameters, types and indexed flags of its source."""
    declared = {}
    for path in SOURCES.values():
        if not path.exists():
            pytest.skip(f"{path} is not installed (run make setup)")
        for name, params in _source_declarations(path).items():
            declared.setdefault(name, params)
    for ev in EVENTS:
        assert ev.name in declared, f"{ev.name} not found in the contract sources"
        mine = [(p.abi_type, p.indexed, p.name) for p in ev.params]
        assert mine == declared[ev.name], ev.name


def test_configurator_topic0s_are_keccak_of_the_v36_signatures():
    from eth_utils import keccak

    expected = {
        "CollateralConfigurationChanged": "CollateralConfigurationChanged(address,uint256,uint256,uint256)",
        "EModeCategoryAdded": "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)",
        "AssetCollateralInEModeChanged": "AssetCollateralInEModeChanged(address,uint8,bool)",
        "AssetBorrowableInEModeChanged": "AssetBorrowableInEModeChanged(address,uint8,bool)",
        "LiquidationProtocolFeeChanged": "LiquidationProtocolFeeChanged(address,uint256,uint256)",
        # v3.6 still declares the stableDebtToken parameter.
        "ReserveInitialized": "ReserveInitialized(address,address,address,address,address)",
    }
    for name, signature in expected.items():
        assert BY_NAME[name].signature == signature
        assert BY_NAME[name].topic0 == keccak(text=signature)


def test_table_schemas_start_with_the_common_columns_and_follow_the_type_rules():
    for table, schema in TABLE_SCHEMAS.items():
        assert tuple(schema.names[: len(COMMON_COLUMNS)]) == COMMON_COLUMNS, table
        assert re.fullmatch(r"[a-z][a-z0-9_]*", table)
    for ev in EVENTS:
        schema = TABLE_SCHEMAS[ev.table]
        for p in ev.params:
            typ = schema.field(p.column).type
            assert re.fullmatch(r"[a-z][a-z0-9_]*", p.column)
            if p.abi_type == "address" or p.abi_type == "string":
                assert typ == pa.string()
            elif p.abi_type == "bool":
                assert typ == pa.bool_()
            elif int_bits(p.abi_type) > 63:
                assert typ == DECIMAL_TYPE
            else:
                assert typ in (pa.int32(), pa.int64())
    assert TABLE_SCHEMAS["collateral_toggles"].names[-3:] == ["reserve", "user", "enabled"]
    assert TABLE_SCHEMAS["oracle_answers"].names[-3:] == ["answer", "round_id", "updated_at"]
    assert "from_address" in TABLE_SCHEMAS["transfers"].names and "to_address" in TABLE_SCHEMAS["transfers"].names
    assert TABLE_SCHEMAS["withdraws"].names[-2:] == ["to_address", "amount"]
    assert TABLE_SCHEMAS["repays"].names[-1] == "use_a_tokens"
    assert TABLE_SCHEMAS["liquidations"].names[-1] == "receive_a_token"
    expected_tables = {
        "supplies", "withdraws", "borrows", "repays", "liquidations", "reserve_updates",
        "collateral_toggles", "emode_changes", "deficits", "token_mints", "token_burns",
        "balance_transfers", "transfers", "oracle_answers", "new_rounds", "asset_source_updates",
        "cap_parameter_updates", "collateral_configuration_changes", "emode_category_additions",
        "emode_collateral_changes", "emode_borrowable_changes", "liquidation_protocol_fee_changes",
        "reserve_initializations",
    }
    assert set(TABLE_SCHEMAS) == expected_tables


def test_snake_case():
    assert snake_case("onBehalfOf") == "on_behalf_of"
    assert snake_case("useATokens") == "use_a_tokens"
    assert snake_case("receiveAToken") == "receive_a_token"
    assert snake_case("aToken") == "a_token"
    assert snake_case("interestRateStrategyAddress") == "interest_rate_strategy_address"


def test_event_parser_refuses_what_it_cannot_decode():
    with pytest.raises(ValueError):
        event("X(bytes32 a)", table="x", emitter="test")
    with pytest.raises(ValueError):
        event("X(string indexed a)", table="x", emitter="test")
    with pytest.raises(ValueError):
        event("X(uint7 a)", table="x", emitter="test")


# ======================================================================================
# Every event against web3.py
# ======================================================================================


@pytest.mark.parametrize("ev", EVENTS, ids=lambda ev: ev.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_event_matches_web3(ev: Event, data):
    values = data.draw(st.lists(values_strategy(ev), min_size=1, max_size=6))
    logs = [rpc_log(ev, v, block=100 + i // 3, index=i) for i, v in enumerate(values)]
    out = decode_logs(raw_logs_from_rpc(logs))
    assert out["undecoded"].num_rows == 0
    assert out[ev.table].schema == TABLE_SCHEMAS[ev.table]
    assert_rows_match(ev, out[ev.table], logs, values)
    for table, t in out.items():
        if table != ev.table:
            assert t.num_rows == 0, table


@pytest.mark.parametrize("ev", EVENTS, ids=lambda ev: ev.name)
def test_boundary_values_match_web3(ev: Event):
    """0, 1, 2^64, 2^127 - 1 (for int256), 10^38 - 1, -(10^38 - 1): each field at each edge."""
    rng = random.Random(ev.name)
    values = []
    for p in ev.params:
        if p.abi_type in ("address", "bool", "string"):
            continue
        lo, hi = _bounds(p.abi_type)
        for edge in sorted({lo, hi, 0, 1, min(hi, 2**64), max(lo, -(2**64)), min(hi, 2**120 + 7)}):
            v = random_values(ev, rng)
            v[p.name] = edge
            values.append(v)
    values.append(random_values(ev, rng))
    logs = [rpc_log(ev, v, block=7, index=i) for i, v in enumerate(values)]
    out = decode_logs(raw_logs_from_rpc(logs))
    assert_rows_match(ev, out[ev.table], logs, values)


def test_mixed_batch_routes_every_log_and_keeps_raw_order():
    rng = random.Random(1)
    logs, expected = [], {}
    for i in range(600):
        ev = rng.choice(EVENTS)
        vals = random_values(ev, rng)
        logs.append(rpc_log(ev, vals, block=1000 + i // 40, index=i % 40))
        expected.setdefault(ev.table, []).append((ev, logs[-1], vals))
        if i % 50 == 0:  # logs of events outside the catalogue are ignored
            approval = {"topics": ["0x" + "8c" * 32, "0x" + word("address", "0x" + "11" * 20).hex()]}
            logs.append({**logs[-1], **approval, "logIndex": hex(1000 + i)})
            anonymous = {**logs[-1], "topics": [], "logIndex": hex(2000 + i)}
            logs.append(anonymous)
    out = decode_logs(raw_logs_from_rpc(logs))
    assert out["undecoded"].num_rows == 0
    for table, items in expected.items():
        t = out[table]
        assert t.num_rows == len(items)
        for row, (ev, rpc, vals) in zip(t.to_pylist(), items):
            assert row["log_index"] == int(rpc["logIndex"], 16)
            assert row["block_number"] == int(rpc["blockNumber"], 16)
            exp = web3_expected(ev, rpc)
            for p in ev.params:
                assert as_python(row[p.column]) == exp[p.column]
            for name, _t, value in ev.constants:
                assert row[name] == value
    toggles = out["collateral_toggles"].to_pylist()
    keys = [(r["block_number"], r["log_index"]) for r in toggles]
    assert keys == sorted(keys)  # enabled and disabled rows interleaved back in raw order


def test_negative_int256_answers_and_decimal_exactness_through_parquet_and_duckdb(tmp_path):
    ev = BY_NAME["AnswerUpdated"]
    answers = [-DEC_MAX, -1, 0, 1, DEC_MAX, -(2**100) - 12345, 2**126 + 1]
    logs = [rpc_log(ev, {"current": a, "roundId": DEC_MAX - i, "updatedAt": 2**64 + i}, index=i) for i, a in enumerate(answers)]
    table = decode_logs(raw_logs_from_rpc(logs))["oracle_answers"]
    assert [int(v) for v in table.column("answer").to_pylist()] == answers
    path = tmp_path / "answers.parquet"
    pq.write_table(table, path)
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT answer::VARCHAR, round_id::VARCHAR, typeof(answer) FROM read_parquet('{path}') ORDER BY log_index"
    ).fetchall()
    assert [int(r[0]) for r in rows] == answers
    assert [int(r[1]) for r in rows] == [DEC_MAX - i for i in range(len(answers))]
    assert rows[0][2] == "DECIMAL(38,0)"


def test_dynamic_string_label_matches_web3_and_rejects_malformed_tails():
    ev = BY_NAME["EModeCategoryAdded"]
    labels = ["", "ETH correlated", "é" * 40, "x" * 32, "y" * 33]
    values = [
        {"categoryId": i + 1, "ltv": 9300, "liquidationThreshold": 9500, "liquidationBonus": 10100,
         "oracle": "0x" + "00" * 20, "label": label}
        for i, label in enumerate(labels)
    ]
    logs = [rpc_log(ev, v, index=i) for i, v in enumerate(values)]
    out = decode_logs(raw_logs_from_rpc(logs))
    assert_rows_match(ev, out["emode_category_additions"], logs, values)

    good = bytes.fromhex(logs[1]["data"][2:])
    head = good[:160]

    def with_data(data: bytes, index: int) -> dict:
        return {**logs[1], "data": "0x" + data.hex(), "logIndex": hex(index)}

    bad_offset = with_data(good[:128] + word("uint256", 10**6) + good[160:], 10)
    bad_length = with_data(head + word("uint256", 10**6) + good[192:], 11)
    bad_utf8 = with_data(head + word("uint256", 2) + b"\xff\xfe" + b"\x00" * 30, 12)
    bad_padding = with_data(head + word("uint256", 2) + b"ok" + b"\x01" * 30, 13)
    for bad, hint in ((bad_offset, "offset"), (bad_length, "overruns"), (bad_utf8, "UTF-8"), (bad_padding, "padding")):
        with pytest.raises(DecodeError, match=hint) as info:
            decode_logs(raw_logs_from_rpc([logs[0], bad]))
        assert info.value.log_index == int(bad["logIndex"], 16)
        assert info.value.event == "EModeCategoryAdded" and info.value.field == "label"
        out = decode_logs(raw_logs_from_rpc([logs[0], bad]), strict=False)
        assert out["emode_category_additions"].num_rows == 1
        assert out["undecoded"].num_rows == 1


# ======================================================================================
# Refusals: never a wrong row
# ======================================================================================


def _supply(i: int, amount: int = 10**18, block: int = 5) -> dict:
    values = {"reserve": "0x" + "11" * 20, "user": "0x" + "22" * 20, "onBehalfOf": "0x" + "33" * 20,
              "amount": amount, "referralCode": 0}
    return rpc_log(BY_NAME["Supply"], values, block=block, index=i)


def _decode_both(logs):
    """(DecodeError from strict mode, non-strict result)."""
    raw = raw_logs_from_rpc(logs)
    with pytest.raises(DecodeError) as info:
        decode_logs(raw)
    return info.value, decode_logs(raw, strict=False)


def test_short_data_is_a_clear_error_or_a_counted_skip():
    bad = _supply(1)
    bad["data"] = bad["data"][:-2]  # 63 bytes
    err, out = _decode_both([_supply(0), bad, _supply(2)])
    assert err.block_number == 5 and err.log_index == 1 and err.event == "Supply"
    assert "block 5, log index 1" in str(err) and "too short" in str(err)
    assert out["supplies"].column("log_index").to_pylist() == [0, 2]
    und = out["undecoded"].to_pylist()
    assert len(und) == 1 and und[0]["log_index"] == 1 and "short data" in und[0]["reason"]
    assert out["undecoded"].schema == UNDECODED_SCHEMA


def test_long_data_for_a_static_event_is_refused():
    bad = _supply(1)
    bad["data"] += "00" * 32
    err, out = _decode_both([_supply(0), bad])
    assert err.log_index == 1 and "needs exactly 64" in str(err)
    assert out["supplies"].num_rows == 1 and out["undecoded"].num_rows == 1


def test_erc721_transfer_with_four_topics_is_not_an_erc20_transfer():
    ev = BY_NAME["Transfer"]
    erc20 = rpc_log(ev, {"from": "0x" + "01" * 20, "to": "0x" + "02" * 20, "value": 5}, block=9, index=0)
    erc721 = {**erc20, "logIndex": "0x1", "data": "0x",
              "topics": erc20["topics"] + ["0x" + word("uint256", 42).hex()]}
    err, out = _decode_both([erc20, erc721])
    assert err.block_number == 9 and err.log_index == 1 and "4 topic(s)" in str(err)
    assert out["transfers"].num_rows == 1 and out["transfers"].column("log_index").to_pylist() == [0]
    assert out["undecoded"].column("reason").to_pylist() == [
        "topic count: 4 topic(s), layout needs 3 (Transfer(address,address,uint256))"
    ]


def test_one_topic0_can_serve_two_layouts_told_apart_by_topic_count():
    erc721 = event(
        "Transfer(address indexed from, address indexed to, uint256 indexed tokenId)",
        table="nft_transfers", emitter="ERC-721",
    )
    catalogue = (BY_NAME["Transfer"], erc721)
    erc20 = rpc_log(BY_NAME["Transfer"], {"from": "0x" + "01" * 20, "to": "0x" + "02" * 20, "value": 5}, index=0)
    nft = rpc_log(erc721, {"from": "0x" + "03" * 20, "to": "0x" + "04" * 20, "tokenId": 42}, index=1)
    out = decode_logs(raw_logs_from_rpc([erc20, nft]), events=catalogue)
    assert out["transfers"].column("value").to_pylist() == [5]
    assert out["nft_transfers"].column("token_id").to_pylist() == [42]
    assert out["nft_transfers"].column("from_address").to_pylist() == ["0x" + "03" * 20]


def test_a_gap_in_the_topics_is_refused():
    raw = raw_logs_from_rpc([_supply(0)])
    topic2 = pa.array([None], type=pa.binary(32))
    gapped = raw.set_column(raw.schema.get_field_index("topic2"), "topic2", topic2)
    with pytest.raises(DecodeError, match="missing topic"):
        decode_logs(gapped)
    assert decode_logs(gapped, strict=False)["undecoded"].num_rows == 1


@pytest.mark.parametrize("amount", [10**38, 2**127, 2**128, 2**256 - 1])
def test_uint256_at_or_above_1e38_names_block_log_event_and_field(amount):
    err, out = _decode_both([_supply(0), _supply(3, amount=amount, block=77)])
    assert (err.block_number, err.log_index, err.event, err.field) == (77, 3, "Supply", "amount")
    assert "block 77, log index 3" in str(err) and "Supply.amount" in str(err)
    assert str(amount) in str(err) and "DECIMAL(38,0)" in str(err)
    assert out["supplies"].num_rows == 1 and out["undecoded"].num_rows == 1


def test_indexed_wide_values_out_of_range_are_refused():
    ev = BY_NAME["AnswerUpdated"]
    for current, round_id in ((-(10**38), 1), (10**38, 1), (1, 10**38)):
        log = rpc_log(ev, {"current": current, "roundId": round_id, "updatedAt": 1}, block=3, index=4)
        err, out = _decode_both([log])
        assert err.field == ("current" if current != 1 else "roundId")
        assert out["oracle_answers"].num_rows == 0 and out["undecoded"].num_rows == 1


@pytest.mark.parametrize("bool_word", [2, 255, 2**8, 2**255])
def test_bool_words_other_than_0_and_1_are_refused(bool_word):
    ev = BY_NAME["Repay"]
    good = rpc_log(ev, {"reserve": "0x" + "11" * 20, "user": "0x" + "22" * 20, "repayer": "0x" + "33" * 20,
                        "amount": 7, "useATokens": True}, block=12, index=0)
    bad = dict(good, logIndex="0x1", data=good["data"][:-64] + word("uint256", bool_word).hex())
    err, out = _decode_both([good, bad])
    assert (err.log_index, err.field) == (1, "useATokens") and "not a bool" in str(err)
    assert out["repays"].column("use_a_tokens").to_pylist() == [True]


def test_dirty_address_padding_and_narrow_int_overflow_are_refused():
    ev = BY_NAME["UserEModeSet"]
    good = rpc_log(ev, {"user": "0x" + "44" * 20, "categoryId": 3}, index=0)
    dirty = dict(good, logIndex="0x1", topics=[good["topics"][0], "0x01" + good["topics"][1][4:]])
    wide = dict(good, logIndex="0x2", data="0x" + word("uint256", 256).hex())
    err, out = _decode_both([good, dirty])
    assert err.field == "user" and "not an address" in str(err)
    err, out = _decode_both([good, wide])
    assert err.field == "categoryId" and "not a valid uint8" in str(err)
    assert out["emode_changes"].column("category_id").to_pylist() == [3]


MUTATIONS = ("truncate", "extend", "drop_topic", "add_topic", "big_uint", "dirty_address", "bad_bool")


def _mutate(ev: Event, log: dict, how: str, rng: random.Random) -> dict | None:
    """A copy of ``log`` made invalid for ``ev`` in one way; None when ``how`` does not apply."""
    data = bytes.fromhex(log["data"][2:])
    topics = list(log["topics"])
    words_ = [i for i, p in enumerate(ev.non_indexed)]
    if how == "truncate":
        if not data:
            return None
        data = data[: rng.randrange(len(data))]
    elif how == "extend":
        if ev.is_dynamic:
            return None
        data += b"\x00" * rng.choice([1, 31, 32])
    elif how == "drop_topic":
        if len(topics) == 1:
            return None
        topics.pop()
    elif how == "add_topic":
        if len(topics) == 4:
            return None
        topics.append("0x" + rng.randbytes(32).hex())
    elif how == "big_uint":
        slots = [i for i in words_ if ev.non_indexed[i].abi_type.startswith("uint") and int_bits(ev.non_indexed[i].abi_type) > 63]
        if not slots:
            return None
        j = rng.choice(slots)
        data = data[: 32 * j] + word("uint256", rng.randint(10**38, 2**256 - 1)) + data[32 * j + 32 :]
    elif how == "dirty_address":
        slots = [i for i in words_ if ev.non_indexed[i].abi_type == "address"]
        if not slots:
            return None
        j = rng.choice(slots)
        data = data[: 32 * j] + bytes([rng.randint(1, 255)]) + data[32 * j + 1 :]
    elif how == "bad_bool":
        slots = [i for i in words_ if ev.non_indexed[i].abi_type == "bool"]
        if not slots:
            return None
        j = rng.choice(slots)
        data = data[: 32 * j] + word("uint256", rng.randint(2, 2**256 - 1)) + data[32 * j + 32 :]
    return {**log, "data": "0x" + data.hex(), "topics": topics}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 25), how=st.sampled_from(MUTATIONS))
def test_property_a_corrupted_log_is_an_error_or_a_skip_never_a_row(seed, n, how):
    rng = random.Random(seed)
    # Events whose layout has no other catalogue layout one topic away (the mutated log
    # must not become a valid log of another event).
    ev = rng.choice(EVENTS)
    values = [random_values(ev, rng) for _ in range(n)]
    logs = [rpc_log(ev, v, block=50, index=i) for i, v in enumerate(values)]
    victim = rng.randrange(n)
    bad = _mutate(ev, logs[victim], how, rng)
    if bad is None:
        return
    logs[victim] = bad
    raw = raw_logs_from_rpc(logs)
    with pytest.raises(DecodeError) as info:
        decode_logs(raw)
    assert info.value.block_number == 50 and info.value.log_index == victim
    assert f"block 50, log index {victim}" in str(info.value)
    out = decode_logs(raw, strict=False)
    assert out["undecoded"].column("log_index").to_pylist() == [victim]
    kept = [i for i in range(n) if i != victim]
    assert_rows_match(ev, out[ev.table], [logs[i] for i in kept], [values[i] for i in kept])


# ======================================================================================
# Raw tables in other shapes
# ======================================================================================


def test_unaligned_data_buffers_take_the_general_gather_path():
    """A log with data that is not whole words shifts every later log off word alignment."""
    odd = dict(_supply(0), topics=["0x" + "77" * 32], data="0x010203")  # unknown event, 3 bytes
    logs = [odd] + [_supply(i) for i in range(1, 6)]
    out = decode_logs(raw_logs_from_rpc(logs))
    assert out["supplies"].column("amount").to_pylist() == [Decimal(10**18)] * 5


def test_sliced_chunked_and_empty_raw_tables():
    logs = [_supply(i, amount=i) for i in range(10)]
    raw = raw_logs_from_rpc(logs)
    sliced = raw.slice(3, 4)
    assert [int(v) for v in decode_logs(sliced)["supplies"].column("amount").to_pylist()] == [3, 4, 5, 6]
    chunked = pa.concat_tables([raw.slice(0, 5), raw.slice(5)])
    assert chunked.column("data").num_chunks == 2
    assert decode_logs(chunked)["supplies"].num_rows == 10
    empty = decode_logs(RAW_LOG_SCHEMA.empty_table())
    assert set(empty) == set(TABLE_SCHEMAS) | {"undecoded"}
    assert all(t.num_rows == 0 for t in empty.values())
    assert empty["supplies"].schema == TABLE_SCHEMAS["supplies"]


def test_large_binary_data_is_accepted_and_missing_columns_are_refused():
    raw = raw_logs_from_rpc([_supply(0)])
    large = raw.set_column(raw.schema.get_field_index("data"), "data", raw.column("data").cast(pa.large_binary()))
    assert decode_logs(large)["supplies"].num_rows == 1
    with pytest.raises(DecodeError, match="no column 'topic3'"):
        decode_logs(raw.drop_columns(["topic3"]))


def test_decode_is_vectorised_enough_for_a_large_batch():
    """Sanity check (not the benchmark): 200k logs decode well within a second or two."""
    import sys
    import time

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_decode import synthetic_raw_logs

    raw = synthetic_raw_logs(200_000, seed=3)
    t = time.process_time()
    out = decode_logs(raw)
    elapsed = time.process_time() - t
    assert sum(t.num_rows for t in out.values()) == 200_000
    assert elapsed < 2.0, elapsed
    # Spot-check against web3 on a few rows of each table.
    rpc_rows = raw.slice(0, 300).to_pylist()
    by_topic0 = {ev.topic0: ev for ev in EVENTS}
    decoded_by_key = {}
    for table in out.values():
        if "log_index" in table.column_names:
            for row in table.to_pylist():
                decoded_by_key[(row["block_number"], row["log_index"])] = row
    for r in rpc_rows:
        ev = by_topic0[r["topic0"]]
        rpc = {
            "address": r["address"], "blockHash": r["block_hash"], "blockNumber": hex(r["block_number"]),
            "data": "0x" + r["data"].hex(), "logIndex": hex(r["log_index"]),
            "topics": ["0x" + r[f"topic{k}"].hex() for k in range(4) if r[f"topic{k}"] is not None],
            "transactionHash": r["transaction_hash"], "transactionIndex": hex(r["transaction_index"]),
        }
        exp = web3_expected(ev, rpc)
        row = decoded_by_key[(r["block_number"], r["log_index"])]
        for p in ev.params:
            assert as_python(row[p.column]) == exp[p.column]


# ======================================================================================
# raw_logs_from_rpc
# ======================================================================================


def test_raw_logs_from_rpc_builds_the_contract_schema_and_lowercases_hex():
    log = _supply(3, block=0x1B4)
    shouting = dict(log, address=log["address"].upper().replace("0X", "0x"),
                    blockHash=log["blockHash"].upper().replace("0X", "0x"),
                    data=log["data"].upper().replace("0X", "0x"))
    raw = raw_logs_from_rpc([log, shouting])
    assert raw.schema == RAW_LOG_SCHEMA
    a, b = raw.to_pylist()
    assert a == b
    assert a["block_number"] == 0x1B4 and a["log_index"] == 3 and a["transaction_index"] == 1
    assert a["topic0"] == BY_NAME["Supply"].topic0 and a["topic3"] == word("uint16", 0)
    no_topics = raw_logs_from_rpc([dict(log, topics=[], data="0x")]).to_pylist()[0]
    assert no_topics["topic0"] is None and no_topics["data"] == b""
    assert raw_logs_from_rpc([]).schema == RAW_LOG_SCHEMA


MALFORMED = [
    ("missing field", lambda log: {k: v for k, v in log.items() if k != "data"}, "'data' is missing"),
    ("missing topics", lambda log: {k: v for k, v in log.items() if k != "topics"}, "'topics' is missing"),
    ("int block number", lambda log: dict(log, blockNumber=5), "blockNumber"),
    ("null log index", lambda log: dict(log, logIndex=None), "logIndex"),
    ("no 0x on quantity", lambda log: dict(log, transactionIndex="12"), "transactionIndex"),
    ("huge log index", lambda log: dict(log, logIndex="0xffffffffff"), "logIndex"),
    ("odd-length data", lambda log: dict(log, data=log["data"] + "0"), "even number"),
    ("bad hex in data", lambda log: dict(log, data="0x" + "zz" + log["data"][4:]), "'data'"),
    ("data without 0x", lambda log: dict(log, data=log["data"][2:]), "'data'"),
    ("data as bytes", lambda log: dict(log, data=bytes.fromhex(log["data"][2:])), "'data'"),
    ("short topic", lambda log: dict(log, topics=[log["topics"][0][:-2]]), "'topics'"),
    ("bad hex topic", lambda log: dict(log, topics=[log["topics"][0][:-1] + "g"]), "'topics'"),
    ("five topics", lambda log: dict(log, topics=log["topics"] + [log["topics"][0]] * 2), "at most 4"),
    ("topics not a list", lambda log: dict(log, topics=log["topics"][0]), "must be a list"),
    ("topic not a string", lambda log: dict(log, topics=[1]), "'topics'"),
    ("short address", lambda log: dict(log, address=log["address"][:-2]), "'address'"),
    ("bad block hash", lambda log: dict(log, blockHash=log["blockHash"][:-1] + "x"), "'blockHash'"),
    ("tx hash missing 0x", lambda log: dict(log, transactionHash="00" + log["transactionHash"][2:]), "'transactionHash'"),
    ("removed by reorg", lambda log: dict(log, removed=True), "removed"),
]


@pytest.mark.parametrize("name,corrupt,hint", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_raw_logs_from_rpc_names_the_block_and_log_of_a_malformed_log(name, corrupt, hint):
    logs = [_supply(i, block=0x99) for i in range(5)]
    logs[3] = corrupt(logs[3])
    with pytest.raises(DecodeError, match=re.escape(hint)) as info:
        raw_logs_from_rpc(logs)
    message = str(info.value)
    assert "eth_getLogs result #3" in message
    if name not in ("int block number",):
        assert "block '0x99'" in message and info.value.block_number == 0x99
    if name not in ("null log index", "huge log index"):
        assert "log index '0x3'" in message and info.value.log_index == 3


def test_raw_logs_from_rpc_refuses_non_objects():
    with pytest.raises(DecodeError, match="expected a JSON object"):
        raw_logs_from_rpc([_supply(0), ["not", "a", "log"]])


def test_raw_logs_from_rpc_round_trips_random_logs():
    rng = np.random.default_rng(5)
    logs = []
    for i in range(300):
        k = int(rng.integers(0, 5))
        logs.append({
            "address": "0x" + rng.bytes(20).hex(), "blockHash": "0x" + rng.bytes(32).hex(),
            "blockNumber": hex(int(rng.integers(0, 2**40))), "data": "0x" + rng.bytes(int(rng.integers(0, 200))).hex(),
            "logIndex": hex(i), "topics": ["0x" + rng.bytes(32).hex() for _ in range(k)],
            "transactionHash": "0x" + rng.bytes(32).hex(), "transactionIndex": hex(int(rng.integers(0, 500))),
        })
    for got, log in zip(raw_logs_from_rpc(logs).to_pylist(), logs):
        assert got["address"] == log["address"] and got["block_hash"] == log["blockHash"]
        assert got["block_number"] == int(log["blockNumber"], 16)
        assert got["data"] == bytes.fromhex(log["data"][2:])
        assert [got[f"topic{j}"] for j in range(4)] == [bytes.fromhex(t[2:]) for t in log["topics"]] + [None] * (4 - len(log["topics"]))
