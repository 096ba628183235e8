"""The Compound v2 lineage replay and report over a real warehouse (real Parquet, real DuckDB)
holding a small world built by hand: a liquid staking token (cbETH) priced at its ETH ratio in
USD (1.1 instead of 2,200), one borrower wrongly liquidated, one account borrowing the mispriced
token against little collateral, one healthy borrow. Every expected number is worked out in the
comments from the Venus isolated-pool rules (collateral factor 0.8, liquidation threshold 0.85,
incentive 1.1, protocol seize share 5%, close factor 0.5)."""

from __future__ import annotations

import csv
import json

import pytest

from postmortem.errors import PostmortemError
from postmortem.ingest.raw_logs import raw_logs_from_rpc
from postmortem.replay.compound_replay import replay_compound
from postmortem.reports.compound import CompoundPolicy, write_compound_report
from postmortem.schema_docs import get, register_compound_tables
from postmortem.warehouse import CHUNK_DATASETS_KEY, Warehouse

import pyarrow as pa

E18 = 10**18
INCIDENT = "devchain-compound-lst-misprice"
COMP, ORACLE = "0x" + "c0" * 20, "0x" + "0a" * 20
VLST, VWETH = "0x" + "a1" * 20, "0x" + "a2" * 20
V, X, H, L = ("0x" + c * 20 for c in ("11", "22", "33", "44"))
ER = 2 * 10**26                # 0.02 underlying per vToken (8 decimals)
SUPPLY = 10**14                # 1,000,000 vTokens in each market
PROTOCOL_TOKENS = 45_454_545   # 1e9 seized x 0.05 / 1.1
SEIZED = 10**9


def _manifest(tmp_path):
    m = {"chain_id": 31337, "rpc_url": "http://127.0.0.1:1", "scenario": "compound-lst-misprice",
         "protocol": "compound-v2", "variant": "venus-isolated", "deploy_block": 1,
         "summary": {"deploy_block": 1, "setup_end_block": 9, "start_block": 10, "end_block": 13, "fix_block": 13},
         "addresses": {"comptroller": COMP, "oracle": ORACLE, "multicall3": "0x" + "0b" * 20,
                       "markets": {"cbETH": {"vtoken": VLST, "underlying": "0x" + "b1" * 20, "decimals": 18,
                                             "vtoken_decimals": 8},
                                   "WETH": {"vtoken": VWETH, "underlying": "0x" + "b2" * 20, "decimals": 18,
                                            "vtoken_decimals": 8}},
                       "accounts": {}},
         "true_prices": {"cbETH": 2200 * E18}}
    d = tmp_path / "chain"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def _table(name, rows):
    schema = get(name).arrow_schema()
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)


def _market(mk, sym, cash, borrows):
    return {"block_number": 9, "comptroller": COMP, "market": mk, "symbol": sym, "ctoken_symbol": "v" + sym,
            "vtoken_decimals": 8, "underlying": "0x" + "b1" * 20, "decimals": 18, "is_listed": True,
            "collateral_factor": 8 * 10**17, "liquidation_threshold": 85 * 10**16, "exchange_rate_stored": ER,
            "cash": cash, "total_borrows": borrows, "total_reserves": 0, "total_supply": SUPPLY, "borrow_index": E18,
            "reserve_factor": 0, "protocol_seize_share": 5 * 10**16, "bad_debt": 0, "accrual_block_number": 9,
            "price": 2200 * E18 if sym == "cbETH" else 2000 * E18, "close_factor": 5 * 10**17,
            "liquidation_incentive": 11 * 10**17, "oracle": ORACLE, "min_liquidatable_collateral": 0}


def _read(block, mk, price, cash, borrows, supply=SUPPLY):
    return {"block_number": block, "market": mk, "oracle": ORACLE, "price": price,
            "exchange_rate_stored": (cash + borrows) * E18 // supply, "cash": cash, "total_borrows": borrows,
            "total_reserves": 0, "total_supply": supply, "borrow_index": E18, "bad_debt": 0}


def _ev(block, tx, li, event, address, **kw):
    return {"block_number": block, "timestamp": 1_771_178_460 + 2 * block, "transaction_hash": "0x" + f"{tx:064x}",
            "transaction_index": tx % 100, "log_index": li, "address": address, "event": event, **kw}


@pytest.fixture()
def world(tmp_path):
    register_compound_tables()
    wh = Warehouse(tmp_path / "wh")
    chain = 31337
    markets = [_market(VLST, "cbETH", 20_000 * E18, 0), _market(VWETH, "WETH", 20_000 * E18 - 8 * E18, 8 * E18)]
    positions = [
        {"account": V, "market": VLST, "block_number": 9, "ctoken_balance": 5 * 10**10, "borrow_balance": 0, "entered": True},
        {"account": V, "market": VWETH, "block_number": 9, "ctoken_balance": 0, "borrow_balance": 8 * E18, "entered": True},
        {"account": X, "market": VWETH, "block_number": 9, "ctoken_balance": 5 * 10**9, "borrow_balance": 0, "entered": True},
        {"account": H, "market": VWETH, "block_number": 9, "ctoken_balance": 5 * 10**10, "borrow_balance": 0, "entered": True},
    ]
    repay = 10**14
    protocol_amount = ER * PROTOCOL_TOKENS // E18
    events = [
        _ev(11, 100, 0, "RepayBorrow", VWETH, market=VWETH, counterparty=L, account=V, amount=repay,
            account_borrows=8 * E18 - repay, total_borrows=8 * E18 - repay),
        _ev(11, 100, 1, "Transfer", VLST, market=VLST, account=V, counterparty=L, tokens=SEIZED - PROTOCOL_TOKENS),
        _ev(11, 100, 2, "ProtocolSeize", VLST, market=VLST, account=V, counterparty="0x" + "99" * 20,
            amount=protocol_amount),
        _ev(11, 100, 3, "LiquidateBorrow", VWETH, market=VWETH, counterparty=L, account=V, amount=repay,
            collateral_market=VLST, tokens=SEIZED),
        _ev(11, 101, 4, "MarketEntered", COMP, market=VLST, account=X),
        _ev(11, 101, 5, "Borrow", VLST, market=VLST, account=X, amount=1000 * E18, account_borrows=1000 * E18,
            total_borrows=1000 * E18),
        _ev(12, 200, 0, "MarketEntered", COMP, market=VLST, account=H),
        _ev(12, 200, 1, "Borrow", VLST, market=VLST, account=H, amount=E18, account_borrows=E18,
            total_borrows=1001 * E18),
    ]
    lst_cash_11 = 20_000 * E18 - protocol_amount - 1000 * E18
    reads = []
    for b in (9, 10, 11, 12, 13):
        price = 2200 * E18 if b in (9, 13) else 11 * 10**17     # mispriced from block 10, fixed at 13
        if b <= 10:
            reads += [_read(b, VLST, price, 20_000 * E18, 0), _read(b, VWETH, 2000 * E18, 20_000 * E18 - 8 * E18, 8 * E18)]
        else:
            lst_b = 1000 * E18 if b == 11 else 1001 * E18
            lst_c = lst_cash_11 if b == 11 else lst_cash_11 - E18
            reads += [_read(b, VLST, price, lst_c, lst_b, SUPPLY - PROTOCOL_TOKENS),
                      _read(b, VWETH, 2000 * E18, 20_000 * E18 - 8 * E18 + repay, 8 * E18 - repay)]
    with wh.lock("test"):
        names = []
        for name, rows in (("compound_markets", markets), ("compound_events", events),
                           ("compound_positions_at_start", positions), ("compound_market_reads", reads)):
            wh.write_chunk(chain, name, 10, 13, _table(name, rows), {})
            names.append(name)
        wh.write_chunk(chain, "compound_logs", 10, 13, raw_logs_from_rpc([]), {CHUNK_DATASETS_KEY: names})
        wh.record_run("ingest", {"incident": INCIDENT, "from_block": 10, "to_block": 13}, {}, run_id="ingest1")
        wh.refresh_catalog()
    return tmp_path / "wh", _manifest(tmp_path)


def _dicts(con, query):
    cur = con.execute(query)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_replay_judges_both_failure_classes(world):
    root, chain = world
    s = replay_compound(root, INCIDENT, devchain_dir=chain)
    assert s["verdicts"] == {"wrongly_eligible": 1, "eligible_anyway": 0, "anomaly": 0}
    assert s["borrow_verdicts"] == {"wrongly_allowed": 1, "allowed": 1, "anomaly": 0}
    assert s["replay_mismatches"] == 0 and s["state_drift"] == 0
    assert s["wrongly_allowed_borrowers"] == [X]
    from postmortem.sql import connect_read_only

    con = connect_read_only(root)
    try:
        v = _dicts(con, "select * from compound_verdicts")[0]
        borrows = {r["user"]: r for r in _dicts(con, "select * from compound_borrow_verdicts")}
        bad = con.execute("select symbol, bad_debt, bad_debt_usd, accounts from compound_bad_debt").fetchall()
        people = dict(con.execute("select user, role from compound_borrowers").fetchall())
    finally:
        con.close()
    # Reported: vTokenPrice 2e26 x 1.1e18 / 1e18 = 2.2e26, x 0.85 = 1.87e26, x 5e10 / 1e18 = $9.35 of
    # collateral against 8 WETH x $2,000 = $16,000: shortfall $15,990.65. True: 2e26 x 2200e18 = 4.4e29,
    # x 0.85 = 3.74e29, x 5e10 = $18,700: liquidity $2,700.
    assert int(v["shortfall_reported"]) == 16_000 * E18 - 935 * 10**16
    assert int(v["liquidity_true"]) == 2_700 * E18 and int(v["shortfall_true"]) == 0
    assert (v["verdict"], v["reason_reported"], v["reason_true"]) == ("wrongly_eligible", "ok", "insufficient_shortfall")
    # Seize: 1.1e18 x 2000e18 / 1e18 = 2.2e21 over 1.1e18 x 2e26 / 1e18 = 2.2e26 -> ratio 1e13; x 1e14 / 1e18 = 1e9.
    assert int(v["seize_tokens_replayed"]) == SEIZED and v["replay_matches_log"]
    assert int(v["protocol_seize_tokens"]) == PROTOCOL_TOKENS
    # 1e9 vTokens x 0.02 = 0.2 cbETH = $440 at the true price; repaid 0.0001 WETH = $0.20.
    assert int(v["collateral_seized"]) == 2 * 10**17
    assert (int(v["seized_usd_true"]), int(v["repaid_usd_true"])) == (440 * E18, 2 * 10**17)
    assert int(v["oracle_loss_usd"]) == 440 * E18 - 22 * 10**16 and int(v["bonus_loss_usd"]) == 2 * 10**16
    # X: $1,600 of borrowing power (1 WETH x 0.8) for 1,000 cbETH at $1.10 = $1,100: $500 left; at $2,200
    # the same borrow is $2.2M: shortfall $2,198,400.
    bx = borrows[X]
    assert (bx["verdict"], int(bx["liquidity_reported"]), int(bx["shortfall_true"])) == (
        "wrongly_allowed", 500 * E18, 2_198_400 * E18)
    assert bx["insolvent_at_end"] and borrows[H]["verdict"] == "allowed" and not borrows[H]["insolvent_at_end"]
    # Bad debt: X owes $2,200,000 against $2,000 of WETH: $2,198,000 uncovered, all of it cbETH:
    # 1000e18 x 2,198,000e18 / 2,200,000e18 = 999.090909... cbETH.
    assert bad == [("cbETH", 999_090_909_090_909_090_909, 2200 * 999_090_909_090_909_090_909, 1)]
    assert people == {V: "victim", X: "wrongly_allowed_borrower"}


def test_replay_twice_is_one_run(world):
    root, chain = world
    a = replay_compound(root, INCIDENT, devchain_dir=chain)
    b = replay_compound(root, INCIDENT, devchain_dir=chain)
    assert a["run_id"] == b["run_id"]
    c = replay_compound(root, INCIDENT, devchain_dir=chain, true_price_overrides=["cbETH=constant:1.1"])
    # At $1.10 as the true price nothing is wrong.
    assert c["run_id"] != a["run_id"] and c["verdicts"]["wrongly_eligible"] == 0
    assert c["borrow_verdicts"]["wrongly_allowed"] == 0


@pytest.mark.parametrize("policy, owed", [
    # compound-forum, wrongly eligible: seized $440 - repaid $0.20 = $439.80.
    (CompoundPolicy.from_options("compound-forum"), 43_980 * 10**16),
    # moonwell: 0.2 cbETH x $2,200 - $0.20 repaid.
    (CompoundPolicy.from_options("moonwell", ["cbETH=2200"]), 43_980 * 10**16),
    # moonwell at a fixed $2,000: 0.2 x 2,000 - 0.2 = $399.80.
    (CompoundPolicy.from_options("moonwell", ["cbETH=2000"]), 39_980 * 10**16),
    # venus-fee: $440 x 0.1 / 1.1 = $40.
    (CompoundPolicy.from_options("venus-fee"), 40 * E18),
    # venus-fee outside its window: nothing.
    (CompoundPolicy.from_options("venus-fee", window="2020-01-01T00:00..2020-01-02T00:00"), 0),
])
def test_report_policies(world, tmp_path, policy, owed):
    root, chain = world
    replay_compound(root, INCIDENT, devchain_dir=chain)
    model, paths = write_compound_report(root, INCIDENT, tmp_path / "out", policy=policy)
    assert model.owed_total() == owed
    rows = list(csv.DictReader(paths["csv"].open()))
    assert sum(int(r["owed_usd_e18"]) for r in rows) == owed
    md = paths["md"].read_text()
    assert f"Formula: {policy.formula()}" in md
    assert "wrongly_allowed" in md and X in md and "Bad debt" in md
    assert json.loads(paths["json"].read_text())["quantities"]["owed_usd_e18"] == str(owed)
    assert "<table>" in paths["html"].read_text()


def test_policy_options_are_checked():
    with pytest.raises(PostmortemError, match="not SYMBOL=USD"):
        CompoundPolicy.from_options("moonwell", ["cbETH"])
    with pytest.raises(PostmortemError, match="ends before it starts"):
        CompoundPolicy.from_options("venus-fee", window="2025-10-10T23:30..2025-10-10T21:43")
    with pytest.raises(PostmortemError, match="unknown policy"):
        CompoundPolicy.from_options("aave")


def test_the_compound_forum_classes_by_hand():
    from postmortem.reports.compound import owed_rows

    # A: not liquidatable at $1 (wrongly eligible): repaid $100 at the true price, seized $113.40 ->
    # owed the excess collateral and the incentive, 113.40 - 100 = $13.40.
    # B: liquidatable anyway: repaid $100, seized $113.40 at the true price with an 8% incentive ->
    # owed the incentive difference, 113.40 - 108 = $5.40.
    base = {"collateral_symbol": "ETH", "collateral_seized": 0, "liquidation_incentive": 108 * 10**16,
            "timestamp": 0, "collateral_price_true": 1, "collateral_price_reported": 1}
    rows = [
        {**base, "user": "a", "verdict": "wrongly_eligible", "repaid_usd_true": 100 * E18, "seized_usd_true": 1134 * 10**17,
         "oracle_loss_usd": 1134 * 10**17 - 108 * E18, "bonus_loss_usd": 8 * E18},
        {**base, "user": "b", "verdict": "eligible_anyway", "repaid_usd_true": 100 * E18, "seized_usd_true": 1134 * 10**17,
         "oracle_loss_usd": 1134 * 10**17 - 108 * E18, "bonus_loss_usd": 8 * E18},
    ]
    owed = {r["user"]: r["owed_usd"] for r in owed_rows(CompoundPolicy.from_options("compound-forum"), rows, {})}
    assert owed == {"a": 134 * 10**17, "b": 54 * 10**17}


def test_report_refuses_a_liquidation_without_a_verdict(world, tmp_path):
    root, chain = world
    replay_compound(root, INCIDENT, devchain_dir=chain)
    # The warehouse gains a LiquidateBorrow the replay never judged: the report refuses and writes nothing.
    from postmortem.sql import connect_read_only

    con = connect_read_only(root)
    try:
        rows = _dicts(con, "select * exclude (chain_id) from compound_events order by block_number, log_index")
    finally:
        con.close()
    extra = {**[r for r in rows if r["event"] == "LiquidateBorrow"][0], "block_number": 13, "log_index": 0,
             "transaction_hash": "0x" + "ee" * 32}
    wh = Warehouse(root)
    with wh.lock("test"):
        wh.write_chunk(31337, "compound_events", 10, 13, _table("compound_events", rows + [extra]), {})
        wh.refresh_catalog()
    with pytest.raises(PostmortemError, match="holds 2 LiquidateBorrow logs .* judged 1"):
        write_compound_report(root, INCIDENT, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_report_refuses_to_write_inside_the_warehouse(world):
    root, chain = world
    replay_compound(root, INCIDENT, devchain_dir=chain)
    with pytest.raises(PostmortemError, match="inside the warehouse"):
        write_compound_report(root, INCIDENT, root / "reports")


def test_the_html_report_fits_a_phone(world, tmp_path):
    """At 390 px the Compound report never scrolls sideways: long addresses and raw integers wrap,
    tables scroll in their own box (it did scroll, 441 px wide, before)."""
    from helpers.chromium import CHROMIUM, phone_width

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    root, chain = world
    replay_compound(root, INCIDENT, devchain_dir=chain)
    _model, paths = write_compound_report(root, INCIDENT, tmp_path / "out")
    scroll, client = phone_width(paths["html"], tmp_path)
    assert 300 < client <= 390 and scroll <= client
