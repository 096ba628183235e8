"""The report model over a real (synthetic) warehouse: every figure's SQL reproduces it, and the
figures agree with sums computed independently from the rows the test wrote."""

from __future__ import annotations

import shutil

import pytest

from postmortem import schema_docs
from postmortem.errors import PostmortemError
from postmortem.warehouse import Warehouse
from postmortem.reports.model import COLUMNS, build_model, input_digest

from helpers.report_text import as_text, shaped, sql_rows
from helpers.synthetic import (CHAIN, FIRST_BLOCK, INCIDENT, LAST_BLOCK, MISPRICED_FROM, MISPRICED_TO, RUN, WSTETH,
                               L, U, _write_ingest, build_warehouse, default_specs, documented, reimbursable_wei,
                               verdict_row)
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("reports-model") / "warehouse")


@pytest.fixture(scope="module")
def model(syn):
    return build_model(syn.root, INCIDENT)


def test_every_figure_is_reproduced_by_its_sql(syn, model):
    """Run each figure's SQL through `postmortem sql` (read-only) and compare with the model."""
    assert set(model.figures) == {
        "mispriced_assets", "markets", "liquidation_window", "price_at_first_wrong_liquidation", "mispricing_window",
        "max_divergence", "liquidations", "verdicts", "wrongly_eligible", "borrowers_affected", "collateral_seized",
        "debt_repaid", "oracle_loss", "bonus_loss", "eth_price", "protocol_fees", "liquidator_gains",
        "owed_chain_prices"}
    for key, f in model.figures.items():
        got = shaped(f.shape, sql_rows(syn.root, f.sql))
        assert as_text(got) == as_text(f.value), key


def test_every_table_and_check_is_reproduced_by_its_sql(syn, model):
    tables = [model.liquidations, model.liquidators, model.at_risk, model.price_path, model.reimbursement.inputs,
              model.provenance.outputs, model.provenance.inputs, model.provenance.input_digests]
    for t in tables:
        assert as_text(sql_rows(syn.root, t.sql)) == as_text(t.rows), t.key
    for c in model.checks:
        if c.sql:
            sql_rows(syn.root, c.sql)  # runs, read-only
    runs = sql_rows(syn.root, model.provenance.runs.sql)
    assert as_text(runs) == as_text(model.provenance.runs.rows) and [r["kind"] for r in runs] == ["ingest", "replay"]
    # The report lists the kinds of run; every record (times, parameters, node) is one query away.
    records = sql_rows(syn.root, model.provenance.run_records_sql)
    assert [r["run_id"] for r in records] == ["0123456789ab", RUN]


def test_headline_figures_match_an_independent_computation(syn, model):
    rows = syn.rows
    wrong = [r for r in rows if r["verdict"] == "wrongly_eligible"]
    assert model.value("liquidations") == len(rows) == 13
    assert model.value("wrongly_eligible") == len(wrong) == 10
    assert model.value("borrowers_affected") == len({r["user"] for r in wrong}) == 8
    assert {r["verdict"]: r["liquidations"] for r in model.value("verdicts")} == \
        {"wrongly_eligible": 10, "eligible_anyway": 2, "anomaly": 1}
    (seized,) = model.value("collateral_seized")
    assert seized["collateral_decimals"] == 18  # from the ingest's reserves
    assert seized["collateral_seized"] == sum(r["collateral_seized"] for r in wrong)
    assert seized["liquidated_collateral_amount"] == sum(r["liquidated_collateral_amount"] for r in wrong)
    debt = {r["debt_symbol"]: r["debt_repaid"] for r in model.value("debt_repaid")}
    assert debt == {"WETH": sum(r["debt_to_cover"] for r in wrong if r["debt_symbol"] == "WETH"),
                    "cbETH": sum(r["debt_to_cover"] for r in wrong if r["debt_symbol"] == "cbETH")}
    # Oracle loss: every liquidation, its protocol-fee part included; bonus loss: wrongly eligible ones only.
    assert model.value("oracle_loss") == {
        "eth_wei": sum(r["oracle_loss_eth_wei"] + r["fee_oracle_loss_eth_wei"] for r in rows),
        "fee_part_eth_wei": sum(r["fee_oracle_loss_eth_wei"] for r in rows),
        "usd_base": sum(r["oracle_loss_base"] + r["fee_oracle_loss_base"] for r in rows), "liquidations": 13}
    assert model.value("bonus_loss") == {"eth_wei": sum(r["bonus_loss_eth_wei"] for r in wrong),
                                         "usd_base": sum(r["bonus_loss_base"] for r in wrong), "liquidations": 10}
    last = max(rows, key=lambda r: (r["block_number"], r["transaction_index"], r["log_index"]))
    assert model.value("eth_price") == {"block_number": last["block_number"], "eth_price": last["eth_price_true"]}
    (fees,) = model.value("protocol_fees")
    assert fees["protocol_fee_amount"] == sum(r["protocol_fee_amount"] for r in wrong)
    owed = reimbursable_wei(rows)
    assert model.value("owed_chain_prices") == {"borrowers": len(owed), "eth_wei": sum(owed.values())}
    assert {r["user"]: r["total_wei"] for r in model.reimbursement.rows} == owed
    q = model.quantities()
    assert q["owed_wei"] == sum(owed.values()) == q["owed_oracle_part_wei"] + q["owed_bonus_part_wei"]
    assert (q["owed_oracle_part_wei"], q["owed_bonus_part_wei"]) == (q["oracle_loss_wei"], q["bonus_loss_wei"])
    assert q["owed_usd_base"] == sum(owed.values()) * last["eth_price_true"] // 10**18
    gains = model.value("liquidator_gains")
    assert gains["liquidators"] == 4 and gains["eth_wei"] == sum(r["gain_eth_wei"] for r in model.liquidators.rows)
    # The amounts are exact integers well beyond 2**53: nothing went through a float.
    assert isinstance(gains["eth_wei"], int) and sum(owed.values()) > 2**64


def test_headline_price_and_window(model):
    p = model.value("price_at_first_wrong_liquidation")
    assert p["block_number"] == MISPRICED_FROM and p["collateral_symbol"] == "wstETH"
    assert p["collateral_price_reported"] < p["collateral_price_true"]
    assert model.divergence_ppm() == -28402  # (1.193946876 - 1.228848994) / 1.228848994 = -2.8402%
    w = model.value("mispricing_window")
    assert (w["last_correct_block_before"], w["first_block"], w["last_block"], w["fixed_block"]) == \
        (MISPRICED_FROM - 1, MISPRICED_FROM, MISPRICED_TO, MISPRICED_TO + 1)
    assert w["path_blocks"] == LAST_BLOCK - FIRST_BLOCK + 1  # one pool's path, not both markets' rows
    assert model.mispriced["asset"] == WSTETH and model.mispriced["symbol"] == "wstETH"
    assert [r["market"] for r in model.value("markets")] == ["core", "prime"]
    assert len(model.price_path.rows) == LAST_BLOCK - FIRST_BLOCK + 1


def test_tables(model):
    assert [r["block_number"] for r in model.liquidations.rows] == sorted(r["block_number"] for r in model.liquidations.rows)
    assert all(r["collateral_decimals"] == 18 and r["debt_decimals"] == 18 for r in model.liquidations.rows)
    # At risk and not liquidated: U[3] was liquidated in prime after all, so only U[11] remains.
    assert [(r["user"], r["market"]) for r in model.at_risk.rows] == [(U[11], "core")]
    assert model.at_risk.rows[0]["exposed_loss_eth"] == 17 * 10**18
    assert [r["liquidator"] for r in model.liquidators.rows][0] == L[0]  # largest gain first


def test_checks_pass_on_a_consistent_warehouse(model):
    assert {c.key: c.ok for c in model.checks} == {
        "raw_log_coverage": True, "log_coverage": True, "borrower_losses": True, "inputs_unchanged": True,
        "replay_matches_log": True, "one_number": True, "verdict_kinds": True}


def test_provenance(syn, model):
    p = model.provenance
    assert p.block_range == {"first_block": FIRST_BLOCK, "last_block": LAST_BLOCK, "source": "replay run parameters"}
    # The warehouse stored the URL with its path masked; the report keeps scheme and host.
    assert p.rpc_endpoints == ["https://eth-mainnet.g.alchemy.com/***"]
    assert {r["dataset"] for r in p.outputs.rows} == {"verdicts", "borrower_losses", "liquidator_gains", "at_risk",
                                                      "health", "price_path"}
    wh = Warehouse(syn.root)
    for d in p.input_digests.rows:
        chunks = [{"path": r.path, "sha256": r.sha256} for r in wh.completed_chunks(CHAIN, d["dataset"])
                  if r.end >= FIRST_BLOCK and r.start <= LAST_BLOCK]
        assert d["digest"] == input_digest(chunks)
    assert model.methodology["recorded_parameters"] == {"health_band": 1.1, "true_price.wstETH": "uncapped"}
    assert [r["revision"] for r in model.methodology["pool_revisions"]] == ["3.6", "3.6"]


def test_changed_input_chunk_fails_the_check(tmp_path):
    syn = build_warehouse(tmp_path / "w")
    wh = Warehouse(syn.root)
    rec = wh.completed_chunks(CHAIN, "blocks")[-1]
    wh.write_chunk(CHAIN, "blocks", rec.start, rec.end, documented("blocks", [  # re-ingested after the replay
        {"block_number": rec.start, "block_hash": "0x00", "parent_hash": "0x00", "timestamp": 0}]))
    m = build_model(syn.root, INCIDENT)
    check = next(c for c in m.checks if c.key == "inputs_unchanged")
    assert check.ok is False and rec.path in check.detail


def test_latest_run_is_chosen_and_a_run_can_be_named(tmp_path):
    syn = build_warehouse(tmp_path / "w")
    wh = Warehouse(syn.root)
    rows = [verdict_row(s) for s in default_specs()[:3]]
    wh.write_output(CHAIN, "verdicts", INCIDENT, "replay-0002", documented("verdicts", rows), {})
    m = build_model(syn.root, INCIDENT)  # the catalog is refreshed for the new run by the report itself
    assert m.run_id == "replay-0002" and m.value("liquidations") == 3
    assert build_model(syn.root, INCIDENT, run_id=RUN).value("liquidations") == 13
    with pytest.raises(PostmortemError, match=f"has no replay run nope; its runs are {RUN}, replay-0002"):
        build_model(syn.root, INCIDENT, run_id="nope")


def test_unknown_incident_and_missing_warehouse(tmp_path, syn):
    with pytest.raises(PostmortemError, match=r"no verdicts for incident other \(it has verdicts for synthetic-wsteth-capo\); "
                                              r"run `postmortem replay --incident other` first"):
        build_model(syn.root, "other")
    with pytest.raises(PostmortemError, match="no warehouse at"):
        build_model(tmp_path / "nothing", INCIDENT)


def test_other_column_names_are_adapted(tmp_path, monkeypatch):
    """If the verdicts land under other accepted names (and carry their own decimals), the model still builds."""
    monkeypatch.delitem(schema_docs._REGISTRY, "verdicts")  # let this test write an undocumented layout
    renames = {"user": "borrower", "transaction_hash": "tx_hash", "oracle_loss_eth_wei": "oracle_loss_eth",
               "bonus_loss_eth_wei": "bonus_loss_wei", "debt_price_reported": "debt_price"}
    for physical_then, physical_now in renames.items():
        assert any(physical_now in names and physical_then in names for names in COLUMNS["verdicts"].values())
    rows = []
    for s in default_specs():
        r = {renames.get(k, k): v for k, v in verdict_row(s).items() if k != "debt_price_true"}
        rows.append({**r, "collateral_decimals": 18, "debt_decimals": 18})
    wh = Warehouse(tmp_path / "w")
    _write_ingest(wh, [verdict_row(s) for s in default_specs()], INCIDENT, "http://localhost:8545")
    import pyarrow as pa
    from decimal import Decimal

    table = pa.Table.from_pylist([{k: (Decimal(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**62 else v)
                                   for k, v in r.items()} for r in rows])
    wh.write_output(CHAIN, "verdicts", INCIDENT, RUN, table, {})
    wh.refresh_catalog()
    m = build_model(wh.root, INCIDENT)
    assert m.value("wrongly_eligible") == 10
    assert {r["user"] for r in m.liquidations.rows} == {r["borrower"] for r in rows}
    assert m.value("collateral_seized")[0]["collateral_decimals"] == 18
    for f in m.figures.values():  # the SQL shows the physical names and still reproduces the figure
        assert as_text(shaped(f.shape, sql_rows(wh.root, f.sql))) == as_text(f.value), f.key
    assert "borrower AS \"user\"" in m.liquidations.sql or 'v.borrower AS "user"' in m.liquidations.sql


def test_a_required_column_missing_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.delitem(schema_docs._REGISTRY, "verdicts")
    wh = Warehouse(tmp_path / "w")
    table = documented("price_path", [])  # any table; what matters is what verdicts lacks
    rows = [verdict_row(s) for s in default_specs()]
    import pyarrow as pa
    from decimal import Decimal

    table = pa.Table.from_pylist([{k: (Decimal(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**62 else v)
                                   for k, v in r.items() if k != "hf_true"} for r in rows])
    wh.write_output(CHAIN, "verdicts", INCIDENT, RUN, table, {})
    wh.refresh_catalog()
    with pytest.raises(PostmortemError, match="the verdicts table lacks hf_true; .* update COLUMNS in reports/columns.py"):
        build_model(wh.root, INCIDENT)


def test_verdicts_and_ingest_alone_are_enough(tmp_path):
    """No price path, no other outputs, no run records: the report builds and says what it lacks."""
    syn = build_warehouse(tmp_path / "w", price_path=False, extra_outputs=False, record_replay=False)
    m = build_model(syn.root, INCIDENT)
    assert m.value("wrongly_eligible") == 10
    assert m.mispriced["asset"] == WSTETH  # from the verdicts' own prices
    assert "mispricing_window" not in m.figures and m.price_path.rows == []
    assert any("no price path" in n for n in m.notes) and any("no liquidator gains" in n for n in m.notes)
    assert all("_" not in n.split("(")[0] for n in m.notes)  # prose, not table names
    assert {c.key: c.ok for c in m.checks}["log_coverage"] is True
    for f in m.figures.values():
        assert as_text(shaped(f.shape, sql_rows(syn.root, f.sql))) == as_text(f.value), f.key


def test_verdicts_without_ingested_logs_are_refused(tmp_path):
    """Without the raw logs the report cannot show its data is complete, so it refuses in one sentence."""
    syn = build_warehouse(tmp_path / "w", price_path=False, extra_outputs=False, ingest=False, record_replay=False)
    with pytest.raises(PostmortemError, match=r"has no raw logs for chain 1, so the report cannot show that its "
                                              r"decoded tables are complete; run `postmortem ingest --incident "
                                              r"synthetic-wsteth-capo --warehouse .*` first$"):
        build_model(syn.root, INCIDENT)


def test_no_liquidations(tmp_path):
    syn = build_warehouse(tmp_path / "w", rows=[])
    m = build_model(syn.root, INCIDENT)
    assert m.value("liquidations") == 0 and m.value("wrongly_eligible") == 0
    assert m.reimbursement.rows == [] and m.value("oracle_loss")["eth_wei"] == 0


def test_moved_warehouse_is_reported_from_its_new_place(tmp_path, syn):
    moved = tmp_path / "moved"
    shutil.copytree(syn.root, moved)
    m = build_model(moved, INCIDENT)  # the copied catalog points at the old folder; the report rebuilds it
    assert m.value("liquidations") == 13
