"""The mainnet twin of the 2026-03-10 incident (issue 12 part 1), checked with plain JSON-RPC:
chain id 1, mainnet block numbers and timestamps, contracts at mainnet addresses, the 49
``LiquidationCall`` logs equal to the decoded mainnet logs field by field, and markets that look
lived in. The twin is started once for the module (about 90 s)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from postmortem.devchain import manager
from postmortem.devchain.node import free_port
from postmortem.devchain.prestate import account_data_at, health_before_liquidation

pytestmark = pytest.mark.chain

REPO = Path(__file__).resolve().parent.parent
CSV = REPO.parent / "shared" / "reference" / "incident-2026-03-10-liquidations.csv"
SCENARIO = REPO / "devchain" / "scenarios" / "wsteth-capo-2026-03-10-mainnet.json"
FROM_BLOCK, TO_BLOCK = 24626850, 24628100
LIQ_TOPIC = "0x" + keccak(text="LiquidationCall(address,address,address,uint256,uint256,address,bool)").hex()
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
WAD = 10**18


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    directory = tmp_path_factory.mktemp("twin")
    node, out = manager.start(free_port(), "wsteth-capo-2026-03-10-mainnet", directory=directory, detach=False)
    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
    try:
        yield {"w3": w3, "url": node.url, "manifest": out["manifest"], "ground_truth": out["ground_truth"],
               "scenario": json.loads(SCENARIO.read_text())}
    finally:
        node.stop()


def _csv_rows() -> list[dict]:
    if not CSV.exists():
        pytest.skip(f"the reference logs are not at {CSV}")
    rows = [r for r in csv.DictReader(open(CSV)) if FROM_BLOCK <= int(r["block"]) <= TO_BLOCK]
    return sorted(rows, key=lambda r: (int(r["block"]), int(r["log_index"])))


def test_chain_id_and_mainnet_blocks(twin):
    w3 = twin["w3"]
    assert w3.eth.chain_id == 1
    assert w3.eth.block_number >= TO_BLOCK
    rows = _csv_rows()
    assert len(rows) == 49
    for r in rows:
        assert w3.eth.get_block(int(r["block"])).timestamp == int(r["timestamp"]), r["block"]
    # The whole range is 12 s per block, at mainnet's times (the CSV's first row fixes the origin).
    first = int(rows[0]["block"]), int(rows[0]["timestamp"])
    for b in (FROM_BLOCK, FROM_BLOCK + 1, 24628088, 24628089, TO_BLOCK):
        assert w3.eth.get_block(b).timestamp == first[1] + 12 * (b - first[0])
    # Set-up happened before the range: nothing but the incident's own transactions inside it.
    senders = set()
    for b in range(FROM_BLOCK, 24626870):
        for tx in w3.eth.get_block(b, full_transactions=True).transactions:
            senders.add(tx["from"].lower())
    liquidators = {r["liquidator"] for r in rows}
    assert senders - liquidators == {twin["manifest"]["addresses"]["roles"]["risk_admin"].lower()}


def test_code_at_every_mainnet_address(twin):
    w3, sc = twin["w3"], twin["scenario"]
    addrs = [sc["addresses"]["multicall3"], sc["addresses"]["steth"]]
    for m in sc["addresses"]["markets"].values():
        addrs += [m[k] for k in ("pool", "pool_addresses_provider", "pool_configurator", "oracle", "acl_manager",
                                 "data_provider")]
        for a in m["assets"].values():
            addrs += [a["underlying"], a["price_source"]]
    assert "0xe1D97bF61901B075E9626c8A2340a7De385861Ef" in addrs and "0x5424384B256154046E9667dDFaaa5e550145215e" in addrs
    for a in addrs:
        assert len(w3.eth.get_code(to_checksum_address(a))) > 0, a
    core = sc["addresses"]["markets"]["core"]
    provider = w3.eth.contract(to_checksum_address(core["pool_addresses_provider"]), abi=[
        {"name": n, "type": "function", "stateMutability": "view", "inputs": [], "outputs": [{"type": "address"}]}
        for n in ("getPool", "getPoolConfigurator", "getPriceOracle", "getACLManager", "getPoolDataProvider")])
    assert provider.functions.getPool().call() == to_checksum_address(core["pool"])
    assert provider.functions.getPoolConfigurator().call() == to_checksum_address(core["pool_configurator"])
    assert provider.functions.getPriceOracle().call() == to_checksum_address(core["oracle"])
    assert provider.functions.getACLManager().call() == to_checksum_address(core["acl_manager"])
    assert provider.functions.getPoolDataProvider().call() == to_checksum_address(core["data_provider"])


def test_liquidation_logs_equal_mainnet(twin):
    w3 = twin["w3"]
    rows = _csv_rows()
    pools = [to_checksum_address(r["pool"]) for r in rows]
    logs = w3.eth.get_logs({"fromBlock": FROM_BLOCK, "toBlock": TO_BLOCK, "address": sorted(set(pools)),
                            "topics": [LIQ_TOPIC]})
    logs = sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"]))
    assert len(logs) == len(rows) == 49
    for lg, r in zip(logs, rows):
        topic_addr = ["0x" + bytes(t)[-20:].hex() for t in lg["topics"][1:]]
        debt_to_cover, collateral, liquidator, receive = decode(["uint256", "uint256", "address", "bool"], bytes(lg["data"]))
        got = {"block": lg["blockNumber"], "pool": lg["address"].lower(), "collateral_asset": topic_addr[0],
               "debt_asset": topic_addr[1], "user": topic_addr[2], "debt_to_cover": debt_to_cover,
               "liquidated_collateral_amount": collateral, "liquidator": liquidator.lower(), "receive_atoken": receive}
        want = {"block": int(r["block"]), "pool": r["pool"].lower(), "collateral_asset": r["collateral_asset"],
                "debt_asset": r["debt_asset"], "user": r["user"], "debt_to_cover": int(r["debt_to_cover"]),
                "liquidated_collateral_amount": int(r["liquidated_collateral_amount"]), "liquidator": r["liquidator"],
                "receive_atoken": r["receive_atoken"] == "true"}
        assert got == want, r["tx"]


def test_victims_eligible_only_under_the_reported_price(twin):
    """The protocol itself, just before each liquidation: health factor < 1 under the reported
    price and >= 1 with the true (uncapped) wstETH price swapped in."""
    w3, gt = twin["w3"], twin["ground_truth"]
    assert len(gt["liquidations"]) == 49
    for liq in gt["liquidations"]:
        reported, true = health_before_liquidation(w3, twin["manifest"]["addresses"], liq)
        assert reported < WAD <= true, (liq["user"], reported, true)


def _holders(w3, token: str) -> set[str]:
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": to_checksum_address(token),
                            "topics": [TRANSFER_TOPIC]})
    return {"0x" + bytes(lg["topics"][2])[-20:].hex() for lg in logs} - {"0x" + "00" * 20}


def test_markets_look_lived_in(twin):
    w3, book = twin["w3"], twin["manifest"]["addresses"]
    core, prime = book["markets"]["core"], book["markets"]["prime"]
    assert len(core["reserves"]) >= 12
    kinds = {r["kind"] for r in core["reserves"].values()}
    assert {"feed", "capo", "stable_cap", "fixed"} <= kinds
    assert sum(1 for r in core["reserves"].values() if r["kind"] == "capo") >= 3
    core_wsteth = _holders(w3, core["reserves"]["wstETH"]["a_token"])
    prime_wsteth = _holders(w3, prime["reserves"]["wstETH"]["a_token"])
    assert len(core_wsteth) >= 500 and len(prime_wsteth) >= 200
    everyone = set()
    for m in (core, prime):
        for r in m["reserves"].values():
            everyone |= _holders(w3, r["a_token"]) | _holders(w3, r["variable_debt_token"])
    assert len(everyone) >= 1000
    # A frozen reserve, and the eMode categories as configured.
    pool = w3.eth.contract(to_checksum_address(core["pool"]), abi=[
        {"name": "getConfiguration", "type": "function", "stateMutability": "view",
         "inputs": [{"type": "address"}], "outputs": [{"type": "uint256"}]},
        {"name": "getEModeCategoryCollateralConfig", "type": "function", "stateMutability": "view",
         "inputs": [{"type": "uint8"}], "outputs": [{"type": "tuple", "components": [
             {"name": "ltv", "type": "uint16"}, {"name": "lt", "type": "uint16"}, {"name": "bonus", "type": "uint16"}]}]}])
    frozen = pool.functions.getConfiguration(to_checksum_address(book["tokens"]["SNX"]["address"])).call()
    assert (frozen >> 57) & 1 == 1
    assert tuple(pool.functions.getEModeCategoryCollateralConfig(1).call()) == (9300, 9500, 10100)


def test_multicall3_aggregate3(twin):
    w3, book = twin["w3"], twin["manifest"]["addresses"]
    oracle = book["markets"]["core"]["oracle"]
    wsteth = book["tokens"]["wstETH"]["address"]
    data = keccak(text="getAssetPrice(address)")[:4] + encode(["address"], [wsteth])
    calls = [(to_checksum_address(oracle), False, data), (to_checksum_address(book["steth"]), True, b"\x12\x34\x56\x78")]
    call = keccak(text="aggregate3((address,bool,bytes)[])")[:4] + encode(["(address,bool,bytes)[]"], [calls])
    raw = w3.eth.call({"to": "0xcA11bde05977b3631167028862bE2a173976CA11", "data": "0x" + call.hex()}, 24626861)
    (results,) = decode(["(bool,bytes)[]"], raw)
    assert results[0][0] is True and results[1][0] is False
    direct = w3.eth.call({"to": to_checksum_address(oracle), "data": "0x" + data.hex()}, 24626861)
    assert results[0][1] == bytes(direct)
    # The price the solver derived for that block.
    assert decode(["uint256"], bytes(direct))[0] == twin["scenario"]["solved"]["wsteth_price_by_block"]["24626861"]


CORE_POOL = "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
PRIME_POOL = "0x4e033931ad43597d96d6bcc25c280717730b58b1"
WSTETH = "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0"
WSTETH_ADAPTER = "0xe1d97bf61901b075e9626c8a2340a7de385861ef"


@pytest.fixture(scope="module")
def twin_run(twin, tmp_path_factory):
    """`postmortem run` of the mainnet catalog entry on the twin, exactly as a user with an archive
    node runs it; shared by the tests below."""
    from click.testing import CliRunner

    from postmortem.cli import _register, cli

    _register()
    base = tmp_path_factory.mktemp("twin-run")
    wh, out = base / "wh", base / "report"
    runner = CliRunner()
    res = runner.invoke(cli, ["run", "--incident", "aave-v3-wsteth-capo-2026-03-10", "--rpc-url", twin["url"],
                              "--warehouse", str(wh), "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output

    def sql(query: str) -> list[dict]:
        r = runner.invoke(cli, ["sql", "--warehouse", str(wh), "--format", "json", query], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    return {"runner": runner, "cli": cli, "wh": wh, "out": out, "base": base, "output": res.output, "sql": sql}


def test_the_real_catalog_entry_runs_unchanged_on_the_twin(twin_run):
    """The post-mortem of the real entry names the real addresses, and the AIP-style policy's
    reimbursement list names exactly the 35 real borrowers."""
    runner, cli, wh, out, sql = (twin_run[k] for k in ("runner", "cli", "wh", "out", "sql"))
    rows = _csv_rows()
    borrowers = {r["user"].lower() for r in rows}
    assert len(borrowers) == 35
    report = json.loads((out / "report.json").read_text())
    text = (out / "report.html").read_text().lower()
    for addr in (CORE_POOL, PRIME_POOL, WSTETH, WSTETH_ADAPTER, *borrowers):
        assert addr in text, addr
    liqs = [(x["block_number"], x["u"]) for x in sql('select block_number, lower("user") as u from liquidations order by 1')]
    assert len(liqs) == 49 and {u for _b, u in liqs} == borrowers
    verdicts = {x["verdict"]: x["n"] for x in sql("select verdict, count(*) as n from verdicts group by 1")}
    assert verdicts == {"wrongly_eligible": 49}, verdicts
    assert report  # the JSON document parses

    out_aip = twin_run["base"] / "report-aip"
    res = runner.invoke(cli, ["report", "--incident", "aave-v3-wsteth-capo-2026-03-10", "--warehouse", str(wh),
                              "--out", str(out_aip), "--rate-gap", "0.034991439125", "--bonus-bps", "100",
                              "--scope", "wrongly-eligible"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with open(out_aip / "reimbursements.csv") as f:
        listed = {r["user"].lower() for r in csv.DictReader(f)}
    assert listed == borrowers


def test_price_sources_are_classified_and_the_unknown_one_noted(twin_run):
    """Mainnet's kinds of price source as discovery sees them; GHO's fixed-price source is neither a
    feed nor a known adapter, so the replay values it from getAssetPrice reads and the report says so."""
    kinds = {(x["market"], x["symbol"]): x["source_kind"]
             for x in twin_run["sql"]("select market, symbol, source_kind from reserves")}
    assert kinds[("core", "wstETH")] == kinds[("prime", "wstETH")] == "capped_ratio"
    assert kinds[("core", "cbETH")] == "capped_ratio"
    assert kinds[("core", "WETH")] == kinds[("core", "WBTC")] == "feed"
    assert kinds[("core", "USDC")] == kinds[("prime", "USDS")] == "stable_cap"
    assert kinds[("core", "GHO")] == kinds[("prime", "GHO")] == "other"
    assert {k for k, v in kinds.items() if v == "other"} == {("core", "GHO"), ("prime", "GHO")}
    notes = json.loads((twin_run["out"] / "report.json").read_text())["notes"]
    gho = [n for n in notes if n.startswith("GHO (core, prime) is priced by")]
    assert len(gho) == 1 and "getAssetPrice" in gho[0], notes
    assert "GHO (core, prime) is priced by" in (twin_run["out"] / "report.md").read_text()


EMODE_LEAVER = "0xd6de2a8681caae97cc50bc5e8cfd1079447336d1"  # leaves eMode 1 in block 24,626,900


def test_a_user_leaving_emode_inside_the_window(twin, twin_run):
    """The twin's user who leaves eMode mid-window: with a band wide enough to keep them in the
    health table, every health factor the replay gives them equals the protocol's own
    getUserAccountData at that checkpoint, in eMode before the change and outside it after."""
    runner, cli, wh, sql = (twin_run[k] for k in ("runner", "cli", "wh", "sql"))
    res = runner.invoke(cli, ["replay", "--incident", "aave-v3-wsteth-capo-2026-03-10", "--warehouse", str(wh),
                              "--health-band", "3"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = sql(f"select checkpoint_kind, block_number, emode_category, hf_reported from health "
               f"where lower(\"user\") = '{EMODE_LEAVER}' and transaction_index is null order by checkpoint")
    assert {r["checkpoint_kind"] for r in rows} >= {"start", "price_change", "end"}
    before = [r for r in rows if r["block_number"] < 24626900]
    after = [r for r in rows if r["block_number"] >= 24626900]
    assert before and after
    assert {r["emode_category"] for r in before} == {1} and {r["emode_category"] for r in after} == {0}
    w3 = twin["w3"]
    for r in rows:
        protocol = account_data_at(w3, int(r["block_number"]), CORE_POOL, to_checksum_address(EMODE_LEAVER))
        assert int(r["hf_reported"]) == protocol.health_factor, r
    assert int(after[0]["hf_reported"]) < int(before[-1]["hf_reported"])  # outside eMode: a lower threshold


def test_a_node_without_the_finalized_tag(twin, tmp_path):
    """A node that does not know the ``finalized`` tag (an error, or ``null``) is checked against its
    head instead, and the run record says so; one that knows it is respected (the runs above)."""
    from postmortem.devchain.faultproxy import FaultProxy
    from postmortem.ingest.plan import estimate
    from postmortem.ingest.scope import _finalized
    from postmortem.ingest.rpc import RpcClient

    head = twin["w3"].eth.block_number
    for style in ("error", "null"):
        with FaultProxy(twin["url"], [{"kind": "block_tags", "style": style}]) as proxy:
            client = RpcClient(proxy.url)
            try:
                block, words = _finalized(client, head)
            finally:
                client.close()
        assert block == head and f"checked against its head {head}" in words, (style, words)
    client = RpcClient(twin["url"])
    try:
        block, words = _finalized(client, head)
    finally:
        client.close()
    assert block < head and words == f"finalized block {block}"
    with FaultProxy(twin["url"], [{"kind": "block_tags"}]) as proxy:
        plan = estimate(proxy.url, incident="aave-v3-wsteth-capo-2026-03-10")
    assert plan["finalized"] is None
