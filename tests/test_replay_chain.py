"""The replay judged by the protocol's own code on the devchain.

For every liquidation: the replayed health factor under the reported price equals
``Pool.getUserAccountData`` at the state just before it (earlier transactions of its block
replayed with ``eth_simulateV1``), and under the true price equals the same call with the wstETH
price source swapped, by a state override, for one answering the true price read from the chain
(live stETH ratio x ETH/USD). Verdicts equal the scenario's ground truth; replayed scaled balances
equal ``scaledBalanceOf``; the outputs are in the warehouse and the CLI works.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from web3 import Web3

from postmortem.sql import run_sql
from postmortem.replay.engine import replay, resolve_true_models, run_replay
from postmortem.replay.inputs import ingested_window, load_inputs

from helpers.replay_judge import _view, judge_by_protocol, scaled_balance_mismatches
from helpers.sql_rows import sql_rows as _rows

pytestmark = pytest.mark.chain
INCIDENT = "devchain-wsteth-capo-2026-03-10"
WAD = 10**18


def _ingest(dc, root, **kw):
    from postmortem.ingest.pipeline import ingest
    from postmortem.incidents import load_incident

    inc = load_incident(INCIDENT, devchain_dir=dc.directory)
    ingest(dc.url, incident=inc, warehouse=root, progress=False, **kw)
    return inc


@pytest.fixture(scope="module")
def replayed(incident_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("warehouse-replay")
    _ingest(incident_chain, root)
    summary = replay(root, INCIDENT)
    verdicts = _rows(root, f"SELECT * FROM verdicts WHERE run_id = '{summary['run_id']}'")
    return {"root": root, "summary": summary, "verdicts": {(v["transaction_hash"], v["log_index"]): v for v in verdicts}}


def test_every_liquidation_equals_the_protocol_under_both_prices(incident_chain, replayed):
    liqs = incident_chain.ground_truth["liquidations"]
    assert len(replayed["verdicts"]) == len(liqs) == 50
    assert judge_by_protocol(incident_chain, liqs, replayed["verdicts"]) == []


def test_verdicts_match_the_ground_truth(incident_chain, replayed):
    gt = incident_chain.ground_truth["liquidations"]
    verdicts = replayed["verdicts"]
    for liq in gt:
        v = verdicts[(liq["transaction_hash"], liq["log_index"])]
        assert v["verdict"] == ("wrongly_eligible" if liq["wrongly_eligible"] else "eligible_anyway"), liq
        assert (v["user"], v["liquidator"], v["debt_to_cover"], v["liquidated_collateral_amount"]) == (
            liq["user"], liq["liquidator"], int(liq["debt_to_cover"]), int(liq["liquidated_collateral_amount"]))
        assert v["over_liquidated_debt"] == (v["debt_to_cover"] if liq["wrongly_eligible"] else 0)
        assert v["protocol_fee_source"] == "transfer_log" and v["protocol_fee_amount"] > 0
    s = replayed["summary"]
    assert s["verdicts"] == {"wrongly_eligible": 49, "eligible_anyway": 1, "anomaly": 0}
    assert s["reported_price_mismatches"] == 0 and s["price_state_drift"] == 0 and s["replay_mismatches"] == 0
    # The devchain reproduces the mainnet figures: about 382.76 ETH of oracle loss, ~130 ETH of bonus.
    assert 375 * WAD < s["oracle_loss_eth_wei"] < 390 * WAD
    assert 120 * WAD < s["bonus_loss_eth_wei"] < 140 * WAD


def test_positions_replay_to_the_chain_balances(incident_chain, replayed):
    """Scaled balances after replaying every token event equal scaledBalanceOf at the window end."""
    root = replayed["root"]
    w = ingested_window(root, INCIDENT)
    inputs = load_inputs(root, chain_id=31337, pools=list(w["pools"].values()), from_block=w["from_block"],
                         to_block=w["to_block"])
    book = run_replay(inputs, resolve_true_models({"wstETH": {"model": "uncapped"}}, None)).book
    checked, mismatched = scaled_balance_mismatches(incident_chain, book, w["to_block"])
    assert checked > 300 and mismatched == []


def test_outputs_are_documented_tables_with_provenance(replayed):
    root, run_id = replayed["root"], replayed["summary"]["run_id"]
    count = {r["t"]: r["n"] for r in _rows(root, f"""
        SELECT 'verdicts' t, count(*) n FROM verdicts WHERE run_id = '{run_id}' UNION ALL
        SELECT 'health', count(*) FROM health WHERE run_id = '{run_id}' UNION ALL
        SELECT 'price_path', count(*) FROM price_path WHERE run_id = '{run_id}' UNION ALL
        SELECT 'borrowers', count(*) FROM borrower_losses WHERE run_id = '{run_id}' UNION ALL
        SELECT 'liquidators', count(*) FROM liquidator_gains WHERE run_id = '{run_id}' UNION ALL
        SELECT 'at_risk', count(*) FROM at_risk WHERE run_id = '{run_id}'""")}
    assert count["verdicts"] == 50 and count["borrowers"] == 37 and count["at_risk"] == 1
    assert count["health"] > 50 and count["price_path"] > 0 and count["liquidators"] > 0
    # Every liquidation has its borrower's health row at the checkpoint just before it, with the same HF.
    (row,) = _rows(root, f"""
        SELECT count(*) n, count(h.user) matched FROM verdicts v LEFT JOIN health h
        ON h.run_id = v.run_id AND h.checkpoint = v.checkpoint AND h.user = v.user AND h.pool = v.pool
           AND h.liquidated_here AND h.hf_reported = v.hf_reported AND h.hf_true = v.hf_true
        WHERE v.run_id = '{run_id}'""")
    assert row["n"] == row["matched"] == 50
    # Aggregates add up from the verdicts, exactly.
    (row,) = _rows(root, f"""
        SELECT (SELECT sum(oracle_loss_eth_wei + fee_oracle_loss_eth_wei) FROM verdicts WHERE run_id = '{run_id}')
             + (SELECT sum(bonus_loss_eth_wei) FROM verdicts WHERE run_id = '{run_id}' AND verdict = 'wrongly_eligible')
             AS expected,
               (SELECT sum(reimbursable_eth_wei) FROM borrower_losses WHERE run_id = '{run_id}') AS got""")
    assert row["expected"] == row["got"] == replayed["summary"]["reimbursable_eth_wei"]
    # The at-risk control (eligible but never liquidated) is the one the scenario says.
    (risk,) = _rows(root, f"SELECT * FROM at_risk WHERE run_id = '{run_id}'")
    assert risk["min_hf_reported"] < WAD <= risk["hf_true_at_min"] and risk["seconds_wrongly_eligible"] > 0
    # Provenance: parameters and input chunk hashes, in the manifest.
    (meta,) = _rows(root, f"SELECT meta FROM warehouse_files WHERE dataset = 'verdicts' AND run_id = '{run_id}'")
    meta = json.loads(meta["meta"])
    assert meta["parameters"]["incident_id"] == INCIDENT and meta["parameters"]["true_price"] == {"wstETH": "uncapped"}
    assert any("positions_at_start" in path for path in meta["inputs"])
    # The human-unit view answers.
    out = json.loads(run_sql(root, "SELECT verdict, count(*) n FROM verdict_summary GROUP BY 1 ORDER BY 1", fmt="json"))
    assert out == [{"verdict": "eligible_anyway", "n": 1}, {"verdict": "wrongly_eligible", "n": 49}]


def test_at_risk_control_is_the_scenarios(incident_chain, replayed):
    root, run_id = replayed["root"], replayed["summary"]["run_id"]
    controls = {c["user"] for c in incident_chain.ground_truth["controls"] if c["role"] == "eligible_not_liquidated"}
    assert {r["user"] for r in _rows(root, f"SELECT user FROM at_risk WHERE run_id = '{run_id}'")} == controls


def test_true_price_override_changes_the_verdicts(replayed):
    """With the reported price declared true, every liquidation was eligible anyway, at no oracle loss."""
    root = replayed["root"]
    s = replay(root, INCIDENT, true_price_overrides=["wstETH=reported"])
    assert s["verdicts"] == {"wrongly_eligible": 0, "eligible_anyway": 50, "anomaly": 0}
    assert s["oracle_loss_eth_wei"] == 0 and s["at_risk"] == 0
    assert s["true_price"] == {"wstETH": "reported"}


def test_cli_replay(replayed):
    from postmortem.cli import _register, cli

    _register()
    runner = CliRunner()
    result = runner.invoke(cli, ["replay", "--incident", INCIDENT, "--warehouse", str(replayed["root"])])
    assert result.exit_code == 0, result.output
    assert "wrongly eligible: 49" in result.output and "eligible anyway: 1" in result.output
    for args, words in ((["--true-price", "wstETH=constant:x"], "not a number"),
                        (["--true-price", "DOGE=constant:1"], "not a reserve"),
                        (["--true-price", "wstETH"], "SYMBOL=MODEL")):
        bad = runner.invoke(cli, ["replay", "--incident", INCIDENT, "--warehouse", str(replayed["root"]), *args])
        assert bad.exit_code == 2 and words in bad.output and bad.output.count("\n") == 1, bad.output
    bad = runner.invoke(cli, ["replay", "--incident", "no-such-incident", "--warehouse", str(replayed["root"])])
    assert bad.exit_code == 2 and "unknown incident" in bad.output


def test_a_window_starting_inside_the_incident(incident_chain, tmp_path):
    """Start the range after the parameter update: the start state comes from eth_call reads, not events."""
    update = next(t["block"] for t in incident_chain.ground_truth["transactions"] if t["do"] == "set_cap_parameters")
    _ingest(incident_chain, tmp_path, from_block=update + 1)
    summary = replay(tmp_path, INCIDENT)
    assert summary["from_block"] == update + 1
    verdicts = {(v["transaction_hash"], v["log_index"]): v
                for v in _rows(tmp_path, f"SELECT * FROM verdicts WHERE run_id = '{summary['run_id']}'")}
    later = [x for x in incident_chain.ground_truth["liquidations"] if x["block"] > update]
    assert later and len(verdicts) == len(later)
    assert judge_by_protocol(incident_chain, later, verdicts) == []


def test_small_scenario_by_pool(small_chain, tmp_path):
    """A market ingested by pool address (no incident file): repeated liquidations of one borrower,
    receiveAToken, an aToken transfer and a repay in the window, a 6-decimal (USDC) debt."""
    from postmortem.ingest.pipeline import ingest

    s = small_chain.manifest["summary"]
    pool = small_chain.addresses["markets"]["core"]["pool"]
    a, b = s["setup_end_block"] + 1, s["end_block"]
    ingest(small_chain.url, pools=[pool], from_block=a, to_block=b, warehouse=tmp_path, progress=False,
           allow_unfinalized=True)
    inputs = load_inputs(tmp_path, chain_id=small_chain.manifest["chain_id"], pools=[pool], from_block=a, to_block=b)
    result = run_replay(inputs, resolve_true_models(None, ["wstETH=uncapped"]))
    liqs = small_chain.ground_truth["liquidations"]
    verdicts = {(v["transaction_hash"], v["log_index"]): v for v in result.tables["verdicts"]}
    assert len(verdicts) == len(liqs) == 5
    assert judge_by_protocol(small_chain, liqs, verdicts) == []
    assert any(v["debt_symbol"] == "USDC" for v in verdicts.values())
    assert any(v["receive_a_token"] for v in verdicts.values())
    assert result.summary["reported_price_mismatches"] == 0 and result.summary["events_applied"] > 0
    w3, book = small_chain.w3, result.book
    balances = book.scaled_balances()
    for reserve in small_chain.addresses["markets"]["core"]["reserves"].values():
        for slot, token in ((0, reserve["a_token"]), (1, reserve["variable_debt_token"])):
            contract = w3.eth.contract(address=token, abi=_view("scaledBalanceOf", ["address"]))
            for (_, user) in book.users:
                on_chain = contract.functions.scaledBalanceOf(Web3.to_checksum_address(user)).call(block_identifier=b)
                assert balances.get((pool.lower(), user, reserve["underlying"].lower()), (0, 0))[slot] == on_chain


def test_readme_sql_example(replayed):
    """replay/README.md's SQL example runs and returns rows."""
    import re
    import shlex
    from pathlib import Path

    from postmortem.cli import _register, cli

    text = (Path(__file__).resolve().parent.parent / "replay" / "README.md").read_text()
    block = text.split("<!-- replay-sql-example -->", 1)[1].split("<!-- /replay-sql-example -->", 1)[0]
    (line,) = [x for x in block.splitlines() if x.startswith("postmortem sql")]
    _register()
    result = CliRunner().invoke(cli, shlex.split(line)[1:] + ["--warehouse", str(replayed["root"])])
    assert result.exit_code == 0, result.output
    assert re.search(r"\(5 rows\)", result.output), result.output


def test_true_price_from_another_feed(incident_chain, replayed):
    """``feed:ADDRESS`` takes the true price from that feed's answers in the warehouse."""
    feed = incident_chain.addresses["feeds"]["cbeth_usd"].lower()
    s = replay(replayed["root"], INCIDENT, true_price_overrides=[f"wstETH=feed:{feed}"])
    rows = _rows(replayed["root"], f"SELECT DISTINCT collateral_price_true FROM verdicts WHERE run_id = '{s['run_id']}'")
    answer = incident_chain.w3.eth.contract(address=incident_chain.addresses["feeds"]["cbeth_usd"],
                                            abi=_view("latestAnswer")).functions.latestAnswer().call()
    assert [r["collateral_price_true"] for r in rows] == [answer]
    assert s["true_price"] == {"wstETH": f"feed:{feed}"}
