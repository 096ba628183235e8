"""What-if, sweep, stress and explain on the devchain incident (real anvil, real Aave, real warehouse).

- as it happened (no setting), the what-if judge gives every liquidation the replay's own health
  factors, verdicts and losses, to the wei;
- with the true price as the reported one, no liquidation is wrongly eligible and only the
  rightly liquidated control stays liquidatable;
- the snapshot-ratio sweep's boundary agrees with the adapter itself: the test sets that ratio on
  the chain with the adapter's admin function (``eth_simulateV1`` as the binding block, the risk
  admin as sender) and reads ``latestAnswer`` and ``isCapped`` at the boundary and one unit below;
- a -30% wstETH shock at the window's start makes more borrowers liquidatable than the incident did;
- ``explain`` for the largest victim agrees with its verdict rows;
- the results are in the warehouse, queryable, and the plain replay views still show the replay.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from eth_abi import decode, encode
from web3 import Web3

from postmortem.replay import whatif as W
from postmortem.replay.engine import replay
from postmortem.replay.prices import CapOverrides, counterfactual_price, yearly_growth_bps

from helpers.sql_rows import sql_rows as _rows

pytestmark = pytest.mark.chain
INCIDENT = "devchain-wsteth-capo-2026-03-10"
ONE = 10**18


@pytest.fixture(scope="module")
def wh(incident_warehouse, tmp_path_factory):
    """A writable copy of the ingested incident, replayed once."""
    root = tmp_path_factory.mktemp("warehouse-whatif") / "wh"
    shutil.copytree(incident_warehouse["root"], root)
    summary = replay(root, INCIDENT)
    return {"root": root, "replay": summary}


@pytest.fixture(scope="module")
def judge(wh):
    loaded = W.load(wh["root"], INCIDENT)
    return loaded, W.WhatIf(loaded.trace)


def test_as_it_happened_equals_the_replay_to_the_wei(wh, judge):
    loaded, wi = judge
    assert loaded.replay_run_id() == wh["replay"]["run_id"]
    verdicts = {(v["block_number"], v["log_index"]): v for v in _rows(
        wh["root"], f"SELECT * FROM verdicts WHERE run_id = '{wh['replay']['run_id']}'")}
    actual = wi.evaluate(W.Counterfactual())
    assert len(actual.liquidations) == len(verdicts) == 50
    for row in actual.liquidations:
        v = verdicts[(row["block_number"], row["log_index"])]
        assert row["hf_counterfactual"] == v["hf_reported"]
        assert row["hf_true"] == v["hf_true"]
        assert row["would_liquidate"] is True
        assert row["wrongly_eligible"] == (v["verdict"] == "wrongly_eligible")
        assert row["collateral_seized_counterfactual"] == v["collateral_seized"]
        assert row["oracle_loss_eth_wei"] == v["oracle_loss_eth_wei"]
        assert row["bonus_loss_eth_wei"] == v["bonus_loss_eth_wei"]
        assert row["borrower_loss_eth_wei"] == v["borrower_loss_eth_wei"]
    assert actual.totals["wrongly_eligible"] == wh["replay"]["verdicts"]["wrongly_eligible"] == 49
    assert actual.totals["oracle_loss_eth_wei"] == wh["replay"]["oracle_loss_eth_wei"]
    # One number per concept: the report's oracle loss (every liquidation, its fee part included)
    # and bonus loss (wrongly eligible liquidations only), in the what-if and in the replay summary.
    oracle = sum(int(v["oracle_loss_eth_wei"]) + int(v["fee_oracle_loss_eth_wei"]) for v in verdicts.values())
    bonus = sum(int(v["bonus_loss_eth_wei"]) for v in verdicts.values() if v["verdict"] == "wrongly_eligible")
    assert actual.totals["oracle_loss_eth_wei"] == wh["replay"]["oracle_loss_eth_wei"] == oracle
    assert actual.totals["bonus_loss_eth_wei"] == wh["replay"]["bonus_loss_eth_wei"] == bonus


def test_true_price_as_reported_leaves_only_the_rightly_liquidated_control(incident_chain, wh):
    from postmortem.pipeline import run_whatif

    r = run_whatif(wh["root"], INCIDENT, settings=["reported_price=true"])
    control = next(c for c in incident_chain.ground_truth["controls"] if c["role"] == "rightly_liquidated")
    point = _rows(wh["root"], f"SELECT * FROM whatif_runs_all_runs WHERE run_id = '{r['run_id']}' AND point = 1")[0]
    assert point["wrongly_eligible"] == 0
    assert point["would_liquidate"] == 1 and point["prevented"] == 49
    assert point["liquidatable_positions"] == 1 and point["liquidatable_not_liquidated"] == 0
    happening = _rows(wh["root"], f"SELECT \"user\" FROM whatif_results_all_runs WHERE run_id = '{r['run_id']}' "
                                  "AND point = 1 AND would_liquidate")
    assert [h["user"] for h in happening] == [control["user"].lower()]
    # the plain replay views still hold the replay, the plain what-if views this run
    assert _rows(wh["root"], "SELECT count(*) AS n FROM verdicts")[0]["n"] == 50
    assert _rows(wh["root"], "SELECT DISTINCT run_id FROM whatif_runs")[0]["run_id"] == r["run_id"]


def _simulate(w3, block, timestamp, calls, reads):
    from postmortem.devchain.prestate import simulate_reads

    return simulate_reads(w3, block, timestamp, calls, reads)


def test_sweep_boundary_agrees_with_the_adapter(incident_chain, wh, judge):
    loaded, wi = judge
    world = wi.world
    start, stop, steps = W.parse_sweep("wstETH.snapshot_ratio=1.20:1.24:41", world)
    result = W.run_sweep(wi, [], start, stop, steps)
    b = result.boundary
    s_star, block, ts = b["snapshot_ratio"], b["capped_below_at_block"], b["capped_below_at_timestamp"]
    assert 1_200_000_000_000_000_000 < s_star < 1_240_000_000_000_000_000
    i = result.boundary_index
    assert result.values[i] >= s_star > result.values[i - 1]
    # at and above the boundary the window has no mispricing left; below it, it has
    assert result.points[i].totals["wrongly_eligible"] == 0
    assert result.points[0].totals["wrongly_eligible"] > 0

    # the adapter's own answer at the binding block, with the parameter set by its admin function
    w3 = Web3(Web3.HTTPProvider(incident_chain.url))
    adapter = Web3.to_checksum_address(incident_chain.addresses["feeds"]["wsteth_capo"])
    risk_admin = incident_chain.addresses["roles"]["risk_admin"]
    comps = next(c for blk, _t, cs in loaded.trace.block_ends if blk == block
                 for (pool, asset), c in cs.items() if c.kind == "capped_ratio")
    state = comps.capo
    yearly = yearly_growth_bps(state)
    onchain = w3.eth.get_block(block, full_transactions=True)
    assert onchain.timestamp == ts
    others = [{"from": t["from"], "to": t["to"], "input": "0x" + bytes(t["input"]).hex(), "gas": hex(t["gas"])}
              for t in onchain.transactions if t["to"] != adapter]
    sel = Web3.keccak(text="setCapParameters(uint104,uint48,uint16)")[:4]
    reads = [{"to": adapter, "input": "0x" + Web3.keccak(text="latestAnswer()")[:4].hex()},
             {"to": adapter, "input": "0x" + Web3.keccak(text="isCapped()")[:4].hex()}]
    for s, capped in ((s_star, False), (s_star - 1, True)):
        call = {"from": risk_admin, "to": adapter, "gas": hex(500_000),
                "input": "0x" + (sel + encode(["uint104", "uint48", "uint16"], [s, state.snapshot_timestamp, yearly])).hex()}
        answer_raw, capped_raw = _simulate(w3, block, ts, [*others, call], reads)
        answer, is_capped = decode(["int256"], answer_raw)[0], decode(["bool"], capped_raw)[0]
        assert is_capped is capped, (s, capped)
        assert answer == counterfactual_price(comps, ts, CapOverrides(snapshot_ratio=s))


def test_sweep_command_writes_rows_curve_and_chart(wh, tmp_path):
    import postmortem.cli_whatif  # noqa: F401  (registers the commands)
    from postmortem.cli import cli

    out = tmp_path / "curve"
    res = CliRunner().invoke(cli, ["whatif", "--incident", INCIDENT, "--warehouse", str(wh["root"]),
                                   "--sweep", "oracle_delay=0:4:5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "boundary" in res.output
    lines = (out / "curve.csv").read_text().splitlines()
    assert len(lines) == 6 and lines[0].startswith("point,sweep_value")
    assert (out / "curve.svg").read_text().startswith("<svg")
    rows = _rows(wh["root"], "SELECT point, sweep_value, would_liquidate FROM whatif_runs ORDER BY point")
    assert [r["sweep_value"] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert rows[1]["would_liquidate"] == rows[0]["would_liquidate"] == 50  # delay 0 changes nothing
    assert rows[2]["would_liquidate"] < 50  # a one-block delay hides the cap push from the first liquidations


def test_a_30pct_wsteth_shock_at_the_start_liquidates_more_than_the_incident(wh):
    from postmortem.replay.whatif_api import stress_run

    r = stress_run(wh["root"], INCIDENT, shocks=["wstETH=-30%"])
    liquidated = {(v["pool"], v["user"]) for v in _rows(wh["root"], "SELECT pool, \"user\" FROM verdicts")}
    assert r["totals"]["liquidatable"] > len(liquidated)
    assert r["totals"]["liquidatable_before"] == 0
    rows = _rows(wh["root"], f"SELECT * FROM stress_results_all_runs WHERE run_id = '{r['run_id']}'")
    assert sum(x["liquidatable"] for x in rows) == r["totals"]["liquidatable"]
    assert {m["market"] for m in r["by_market"]} == {"core", "prime"}
    for x in rows:
        if x["liquidatable"]:
            assert x["hf_shocked"] < ONE and x["debt_to_cover"] > 0 and x["collateral_seized"] > 0
    # a delayed oracle: nothing is liquidatable yet at the block
    d = stress_run(wh["root"], INCIDENT, preset="flash-crash-30", oracle_delay=3)
    assert d["totals"]["liquidatable_now"] == 0 and d["totals"]["liquidatable"] > 0


def test_explain_the_largest_victim_agrees_with_its_verdict_rows(wh):
    from postmortem.pipeline import run_explain

    verdicts = _rows(wh["root"], "SELECT * FROM verdicts")
    losses: dict[str, int] = {}
    for v in verdicts:
        losses[v["user"]] = losses.get(v["user"], 0) + v["borrower_loss_eth_wei"]
    victim = max(losses, key=losses.get)
    s = run_explain(wh["root"], INCIDENT, victim.upper().replace("0X", "0x"))
    mine = sorted((v for v in verdicts if v["user"] == victim), key=lambda v: (v["block_number"], v["log_index"]))
    assert [(v["block_number"], v["log_index"], v["verdict"], v["hf_reported"], v["hf_true"]) for v in s["liquidations"]] \
        == [(v["block_number"], v["log_index"], v["verdict"], v["hf_reported"], v["hf_true"]) for v in mine]
    assert s["lost"]["borrower_loss_eth_wei"] == losses[victim]
    # the health path holds each liquidation's checkpoint with the verdict's health factors
    here = [h for h in s["health"] if h["liquidated_here"]]
    assert [(h["hf_reported"], h["hf_true"]) for h in here] == [(v["hf_reported"], v["hf_true"]) for v in mine]
    for h in here:  # liquidatable at the reported price, not at the true one: the price falls in between
        assert h["collateral_price_reported"] < h["liquidation_price"] <= h["collateral_price_true"]
    assert any(p["symbol"] == "wstETH" and p["used_as_collateral"] and p["collateral"] > 0 for p in s["positions"])
    owed = s["owed"]["reimbursable"]["owed_wei"]
    expected = sum(v["oracle_loss_eth_wei"] + v["fee_oracle_loss_eth_wei"]
                   + (v["bonus_loss_eth_wei"] if v["verdict"] == "wrongly_eligible" else 0) for v in mine)
    assert owed == expected


@pytest.mark.parametrize("args,needle", [
    (["whatif", "--set", "nonsense=1"], "unknown KEY"),
    (["whatif", "--set", "wstETH.snapshot_ratio=abc"], "not a valid value"),
    (["whatif", "--sweep", "oracle_delay=0:3:0"], "STEPS"),
    (["whatif", "--set", "DOGE.liquidation_threshold=80%"], "unknown asset"),
    (["stress", "--shock", "DOGE=-30%"], "unknown asset"),
    (["stress", "--shock", "wstETH=-30%", "--at", "1"], "outside the window"),
    (["explain", "--user", "0x" + "12" * 20], "has no debt"),
    (["explain", "--user", "bob"], "not an address"),
])
def test_bad_inputs_end_in_one_sentence(wh, args, needle):
    import postmortem.cli_whatif  # noqa: F401  (registers the commands)
    from postmortem.cli import cli

    res = CliRunner().invoke(cli, [*args, "--incident", INCIDENT, "--warehouse", str(wh["root"])])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], res.output
    assert "Traceback" not in res.output


def test_report_carries_whatif_runs_and_each_borrower_by_address(wh, tmp_path):
    import json

    from postmortem.errors import PostmortemError
    from postmortem.pipeline import run_whatif
    from postmortem.reports.api import build_and_write

    r = run_whatif(wh["root"], INCIDENT, settings=["reported_price=true"])
    model, paths = build_and_write(wh["root"], INCIDENT, tmp_path / "rep", whatif_runs=[r["run_id"]])
    html = paths["html"].read_text()
    assert f"Run {r['run_id']}" in html and 'id="whatif"' in html
    assert "49 liquidations would not have happened" in html
    data = json.loads(paths["json"].read_text())
    assert data["whatif"][0]["run_id"] == r["run_id"] and len(data["whatif"][0]["prevented"]) == 49
    md = paths["md"].read_text()
    assert "## What if" in md and "reported_price=true" in md
    # every liquidated borrower has a section found by address, with the list's owed amount
    owed = {row["user"]: row["total_wei"] for row in model.reimbursement.rows}
    users = {v["user"] for v in _rows(wh["root"], "SELECT DISTINCT \"user\" FROM verdicts")}
    for u in users:
        assert f'id="{u}"' in html
    top = max(owed, key=owed.get)
    case = next(b for b in data["borrowers"] if b["user"] == top)
    assert int(case["owed"]["total_wei"]) == owed[top]
    with pytest.raises(PostmortemError, match="no what-if run"):
        build_and_write(wh["root"], INCIDENT, tmp_path / "rep2", whatif_runs=["0123456789abcdef"])
