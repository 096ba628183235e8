"""Ingest against the real devchain: every table checked against the chain itself."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from eth_utils import keccak
from web3 import Web3
from web3._utils.events import get_event_data

from conftest import warehouse_rows
from postmortem.devchain.faultproxy import FaultProxy
from postmortem.ingest.events import EVENTS
from postmortem.ingest.pipeline import ingest
from postmortem.errors import PostmortemError
from postmortem.incidents import Incident, devchain_window
from postmortem.sql import run_sql

pytestmark = pytest.mark.chain
LIQ_TOPIC = "0x" + keccak(text="LiquidationCall(address,address,address,uint256,uint256,address,bool)").hex()


def _sql(root, q):
    import json

    return json.loads(run_sql(root, q, fmt="json"))


def test_liquidation_count_equals_chain(incident_chain, incident_warehouse):
    logs = incident_chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "topics": [LIQ_TOPIC]})
    (row,) = _sql(incident_warehouse["root"], "select count(*) as n from liquidations")
    assert int(row["n"]) == len(logs) == len(incident_chain.ground_truth["liquidations"])


def test_every_decoded_row_equals_web3(incident_chain, incident_warehouse):
    """Every event type: each decoded row equals web3's own decoding of the same log."""
    root = incident_warehouse["root"]
    inc = incident_warehouse["incident"]
    w3 = incident_chain.w3
    raw = w3.eth.get_logs({"fromBlock": inc.from_block, "toBlock": inc.to_block})
    by_key = {(lg["blockNumber"], lg["logIndex"]): lg for lg in raw}
    codec = Web3().codec
    checked = set()
    for ev in EVENTS:
        rows = _sql(root, f"select * from {ev.table}") if ev.table not in checked else []
        checked.add(ev.table)
        abi = ev.abi()
        for row in rows:
            lg = by_key[(row["block_number"], row["log_index"])]
            if "0x" + lg["topics"][0].hex().removeprefix("0x") != "0x" + ev.topic0_hex.removeprefix("0x"):
                continue
            decoded = get_event_data(codec, abi, lg)["args"]
            for p in ev.params:
                name = ev.column_name(p.name) if hasattr(ev, "column_name") else None
                col = name or _col(p.name)
                want, got = decoded[p.name], row[col]
                if isinstance(want, str):
                    assert got == want.lower(), (ev.name, col)
                elif isinstance(want, bool):
                    assert got == want
                else:
                    assert int(got) == want, (ev.name, col, got, want)
    assert {"liquidations", "supplies", "token_mints", "token_burns", "balance_transfers", "transfers",
            "reserve_updates", "oracle_answers", "cap_parameter_updates", "repays", "withdraws"} <= checked


def _col(name: str) -> str:
    from postmortem.ingest.events import snake_case

    s = snake_case(name)
    return {"from": "from_address", "to": "to_address", "current": "answer"}.get(s, s)


def test_oracle_prices_equal_direct_reads(incident_chain, incident_warehouse):
    rows = _sql(incident_warehouse["root"], "select block_number, oracle, asset, price from oracle_prices")
    assert rows
    w3 = incident_chain.w3
    sel = keccak(text="getAssetPrice(address)")[:4]
    for r in rows[:: max(1, len(rows) // 60)]:
        data = "0x" + (sel + bytes(12) + bytes.fromhex(r["asset"][2:])).hex()
        got = w3.eth.call({"to": Web3.to_checksum_address(r["oracle"]), "data": data}, r["block_number"])
        assert int.from_bytes(got, "big") == int(r["price"])


def _check_positions(w3, root, block):
    rows = _sql(root, "select p.pool, p.user, p.asset, p.scaled_a_token_balance a, p.scaled_variable_debt v, "
                      "p.emode_category, r.a_token, r.variable_debt_token from positions_at_start p "
                      "join reserves r on r.pool = p.pool and r.asset = p.asset")
    assert rows
    sel = keccak(text="scaledBalanceOf(address)")[:4]
    for r in rows:
        for token, col in ((r["a_token"], "a"), (r["variable_debt_token"], "v")):
            data = "0x" + (sel + bytes(12) + bytes.fromhex(r["user"][2:])).hex()
            got = int.from_bytes(w3.eth.call({"to": Web3.to_checksum_address(token), "data": data}, block), "big")
            assert got == int(r[col]), (r["user"], token)
    return rows


def test_positions_at_start_equal_chain(incident_chain, incident_warehouse):
    inc = incident_warehouse["incident"]
    rows = _check_positions(incident_chain.w3, incident_warehouse["root"], inc.from_block - 1)
    assert len({r["user"] for r in rows}) >= 40


def test_range_from_the_middle_of_history(small_chain, tmp_path):
    """A range that starts after liquidations already happened: start positions still match."""
    gt = small_chain.ground_truth
    mid = gt["liquidations"][2]["block"]  # after the first liquidation block
    end = small_chain.manifest["summary"]["end_block"]
    pools = [m["pool"] for m in small_chain.addresses["markets"].values()]
    inc = Incident(id="mid", title="mid", chain_id=31337, pools={"core": pools[0].lower()}, from_block=mid,
                   to_block=end, users_since=small_chain.manifest["summary"]["deploy_block"], finality="latest")
    ingest(small_chain.url, incident=inc, warehouse=tmp_path, progress=False)
    _check_positions(small_chain.w3, tmp_path, mid - 1)
    n = _sql(tmp_path, "select count(*) n from liquidations")[0]["n"]
    assert int(n) == sum(1 for x in gt["liquidations"] if x["block"] >= mid)


def test_fault_injection_gives_identical_warehouse(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    clean = tmp_path / "clean"
    ingest(small_chain.url, incident=inc, warehouse=clean, progress=False, chunk_size=2)
    plan = [
        {"kind": "http_429", "every": 7, "retry_after": 0},
        {"kind": "infura_rate", "every": 11, "backoff_seconds": 0},
        {"kind": "range_cap", "style": "alchemy", "max_range": 1},
        {"kind": "reset", "every": 9},
        {"kind": "truncate", "every": 13},
        {"kind": "slow", "every": 10, "delay": 0.2},
        {"kind": "malformed", "every": 17},
        {"kind": "batch_reorder", "every": 5},
        {"kind": "batch_missing_id", "every": 19},
    ]
    faulty = tmp_path / "faulty"
    with FaultProxy(small_chain.url, plan, seed=3) as proxy:
        ingest(proxy.url, incident=inc, warehouse=faulty, progress=False, chunk_size=2)
        counts = proxy.counts()
    injected = {k: v for k, v in counts.items() if k != "requests" and v}
    assert len(injected) >= 5, counts
    assert warehouse_rows(clean) == warehouse_rows(faulty)


def test_result_count_error_with_suggested_range(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    ingest(small_chain.url, incident=inc, warehouse=clean, progress=False)
    with FaultProxy(small_chain.url, [{"kind": "result_cap", "style": "infura", "max_results": 45}], seed=1) as proxy:
        ingest(proxy.url, incident=inc, warehouse=faulty, progress=False)
        assert proxy.counts().get("result_cap", 0) >= 1
    assert warehouse_rows(clean) == warehouse_rows(faulty)


def test_rerun_skips_complete_chunks(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    first = ingest(small_chain.url, incident=inc, warehouse=tmp_path, progress=False, chunk_size=2)
    again = ingest(small_chain.url, incident=inc, warehouse=tmp_path, progress=False, chunk_size=2)
    assert first["chunks"] >= 2 and again["chunks"] == 0 and again["chunks_skipped"] == first["chunks"]


def test_kill_and_resume_is_identical(small_chain, tmp_path):
    """kill -9 halfway, then re-run: the warehouse equals an uninterrupted run's."""
    inc = devchain_window(small_chain.manifest, "small")
    clean = tmp_path / "clean"
    ingest(small_chain.url, incident=inc, warehouse=clean, progress=False, chunk_size=1)
    killed = tmp_path / "killed"
    code = (
        "import json,sys\n"
        "from postmortem.ingest.pipeline import ingest\nfrom postmortem.incidents import Incident\n"
        f"inc=Incident(**json.loads({_inc_json(inc)!r}))\n"
        f"ingest({small_chain.url!r}, incident=inc, warehouse={str(killed)!r}, progress=False, chunk_size=1, requests_per_second=40)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(killed.glob("*/logs/*.parquet")):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert list(killed.glob("*/logs/*.parquet")), "the run was killed before it wrote anything"
    ingest(small_chain.url, incident=inc, warehouse=killed, progress=False, chunk_size=1)
    assert warehouse_rows(clean) == warehouse_rows(killed)


def _inc_json(inc):
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(inc))


def test_reorg_refetches_changed_chunks(tmp_path_factory, tmp_path):
    from conftest import _start

    dc = _start(tmp_path_factory, "small")
    try:
        inc = devchain_window(dc.manifest, "small")
        ingest(dc.url, incident=inc, warehouse=tmp_path, progress=False, chunk_size=2)
        before = {r["block_number"]: r["block_hash"] for r in _sql(tmp_path, "select block_number, block_hash from blocks")}
        # Replace the last two blocks with different ones (same height).
        dc.w3.provider.make_request("anvil_reorg", [2, []])
        summary = ingest(dc.url, incident=inc, warehouse=tmp_path, progress=False, chunk_size=2)
        assert summary["chunks_refetched_reorg"] >= 1
        after = {r["block_number"]: r["block_hash"] for r in _sql(tmp_path, "select block_number, block_hash from blocks")}
        end = inc.to_block
        assert after[end] != before[end]
        assert after[end] == dc.w3.eth.get_block(end)["hash"].to_0x_hex()
        # Logs of the replaced blocks are gone or replaced, never duplicated.
        dup = _sql(tmp_path, "select block_number, log_index, count(*) c from logs group by 1, 2 having c > 1")
        assert dup == []
    finally:
        dc.node.stop()


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(from_block=10, to_block=5), "after --to-block"),
    (dict(from_block=1, to_block=10**9), "past the node's latest block"),
    (dict(pools=["0x1234"], from_block=1, to_block=2), "is not an address"),
    (dict(pools=["0x000000000000000000000000000000000000dead"], from_block=2, to_block=3), "does not answer as an Aave v3 Pool"),
])
def test_bad_input_is_one_sentence(small_chain, tmp_path, kwargs, fragment):
    kwargs.setdefault("pools", [small_chain.addresses["markets"]["core"]["pool"]])
    with pytest.raises(PostmortemError) as exc:
        ingest(small_chain.url, warehouse=tmp_path, progress=False, allow_unfinalized=True, **kwargs)
    msg = str(exc.value)
    assert fragment in msg and "\n" not in msg


def test_wrong_chain_and_unreachable(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    inc.chain_id = 1
    with pytest.raises(PostmortemError, match="serves chain 31337"):
        ingest(small_chain.url, incident=inc, warehouse=tmp_path, progress=False)
    with pytest.raises(PostmortemError) as exc:
        ingest("http://user:s3cret@127.0.0.1:9/v3/0123456789abcdef0123456789abcdef", incident=inc,
               warehouse=tmp_path, progress=False)
    assert "s3cret" not in str(exc.value) and "0123456789abcdef0123456789abcdef" not in str(exc.value)


def test_finalized_block_is_respected(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    inc.finality = "finalized"
    with pytest.raises(PostmortemError, match="--allow-unfinalized"):
        ingest(small_chain.url, incident=inc, warehouse=tmp_path, progress=False)


def test_api_key_never_stored(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    key = "abcdef0123456789abcdef0123456789"
    with FaultProxy(small_chain.url, []) as proxy:
        url = proxy.url.rstrip("/") + f"/v3/{key}?apikey={key}"
        try:
            ingest(url, incident=inc, warehouse=tmp_path, progress=False)
        except PostmortemError as exc:  # a proxy that refuses the path is fine for this test
            assert key not in str(exc)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f


def test_cli_ingest_and_sql(small_chain, tmp_path):
    from click.testing import CliRunner

    from postmortem.cli import _register, cli

    _register()
    s = small_chain.manifest["summary"]
    pool = small_chain.addresses["markets"]["core"]["pool"]
    r = CliRunner().invoke(cli, ["ingest", "--rpc-url", small_chain.url, "--pool", pool, "--from-block",
                                 str(s["setup_end_block"] + 1), "--to-block", str(s["end_block"]), "--users-since",
                                 str(s["deploy_block"]), "--allow-unfinalized", "--warehouse", str(tmp_path)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["sql", "select count(*) as n from liquidations", "--warehouse", str(tmp_path),
                                 "--format", "csv"])
    assert r.exit_code == 0 and r.output.strip().splitlines() == ["n", str(len(small_chain.ground_truth["liquidations"]))]
