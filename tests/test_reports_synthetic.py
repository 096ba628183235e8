"""Checks of the synthetic warehouse builder the report tests share (tests/helpers/synthetic.py)."""

from __future__ import annotations

from fractions import Fraction

import pyarrow as pa
import pyarrow.parquet as pq

from postmortem.warehouse import Warehouse

from helpers.synthetic import (CAPPED_PRICE, CHAIN, INCIDENT, MISPRICED_FROM, MISPRICED_TO, TRUE_PRICE, WAD,
                               build_warehouse, default_specs, verdict_row)
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)


# --- checks of the builder itself -------------------------------------------------------------------


def test_synthetic_rows_follow_the_replay_split():
    rows = [verdict_row(s) for s in default_specs()]
    for r in rows:
        assert r["collateral_seized"] == r["liquidated_collateral_amount"] + r["protocol_fee_amount"]
        if MISPRICED_FROM <= r["block_number"] <= MISPRICED_TO:
            assert r["oracle_loss_eth_wei"] > 0 and r["collateral_price_reported"] < r["collateral_price_true"]
        else:
            assert r["oracle_loss_eth_wei"] == 0
    wrong = [r for r in rows if r["verdict"] == "wrongly_eligible"]
    assert all(r["hf_reported"] < WAD <= r["hf_true"] for r in wrong)
    # The divergence is the incident's: the capped rate is about 2.84% below the live one.
    assert abs(Fraction(CAPPED_PRICE, TRUE_PRICE) - 1 + Fraction(284, 10_000)) < Fraction(1, 10_000)


def test_build_warehouse_writes_the_documented_tables(tmp_path, documented_schemas):
    replay_tables = documented_schemas
    syn = build_warehouse(tmp_path / "w")
    wh = Warehouse(syn.root)
    assert {r.dataset for r in wh.records()} == {"blocks", "logs", "liquidations", "markets", "reserves", "verdicts",
                                                  "borrower_losses", "liquidator_gains", "at_risk", "health", "price_path"}
    for name in replay_tables.TABLES:  # every replay output has exactly the replay's columns and types
        (rec,) = wh.outputs(CHAIN, name, INCIDENT)
        written = pq.read_schema(syn.root / rec.path)
        assert written.remove_metadata() == replay_tables.to_arrow(name, []).schema.append(
            pa.field("incident_id", pa.string())).append(pa.field("run_id", pa.string()))
    assert [r["kind"] for r in wh.runs()] == ["ingest", "replay"]
    assert "SECRETKEY" not in wh.runs_path.read_text()  # the warehouse redacts URLs on the way in
