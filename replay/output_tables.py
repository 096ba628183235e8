"""The tables a replay writes (documented for ``postmortem schema`` and the catalog) and the
SQL views registered over them.

Every amount is an exact integer: ``decimal128(38, 0)`` (signed where a loss can be negative),
converted from Python ints only when the Arrow table is built. Units follow
``postmortem.schema_docs``; names carry the unit where it is not obvious (``_base``, ``_eth_wei``).
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from postmortem import schema_docs
from postmortem.schema_docs import (
    KIND_OUTPUT, KIND_VIEW, UNIT_BASE, UNIT_BLOCK, UNIT_BPS, UNIT_SECONDS, UNIT_WAD, UNIT_WEI, col, register_table,
)

DEC = pa.decimal128(38, 0)
DEC_MAX = 10**38 - 1
UNIT_ETH_WEI = "ETH wei (integer; 1e18 = 1 ETH), converted at the true ETH price of the checkpoint"
UNIT_COLL = "collateral token base units (integer; 10^decimals = 1 token), converted at the true collateral price"
UNIT_PRICE = "base currency units per whole token (integer; 1e8 = 1 USD)"

_CHECKPOINT = [
    col("checkpoint", pa.int32(), "Ordinal of the checkpoint in this run (0 = the start state)"),
    col("checkpoint_kind", pa.string(), "'start' (block before the window), 'liquidation' (just before a "
        "LiquidationCall), 'price_change' (end of a block where a reported price changed) or 'end' (end of the window)"),
    col("block_number", pa.int64(), "Block of the checkpoint", UNIT_BLOCK),
    col("transaction_index", pa.int32(), "Liquidation checkpoints: the state just before this transaction "
        "(after every log of earlier transactions); NULL at a block end"),
    col("after_log_index", pa.int32(), "Liquidation checkpoints: logs of the same transaction up to this index "
        "(an earlier LiquidationCall in it) have happened; NULL when none, or at a block end"),
    col("timestamp", pa.int64(), "Block timestamp the protocol evaluates the state at", UNIT_SECONDS),
]

_LOSS = []
for _name, _what in (
    ("oracle_loss", "liquidated_collateral_amount x (true - reported collateral price): the collateral handed to the "
     "liquidator at the wrong price. The report's oracle loss (see `postmortem schema glossary`) is this plus "
     "fee_oracle_loss"),
    ("bonus_loss", "(collateral incl. fee) x reported collateral price - debt_to_cover x reported debt price: the bonus as the protocol valued it"),
    ("fee_oracle_loss", "protocol_fee_amount x (true - reported collateral price): the underpricing of the fee (the "
     "report's 'oracle loss on the protocol fee')"),
    ("borrower_loss", "(collateral incl. fee) x true collateral price - debt_to_cover x true debt price: all the borrower lost"),
):
    _LOSS += [
        col(f"{_name}_base", DEC, f"{_what}; floored", UNIT_BASE),
        col(f"{_name}_collateral", DEC, "The same in collateral tokens; floored", UNIT_COLL),
        col(f"{_name}_eth_wei", DEC, "The same in ETH; floored (NULL without an ETH reserve)", UNIT_ETH_WEI),
    ]

TABLES = {
    "health": register_table(
        "health",
        "Health factor of every position near liquidation (either health factor below the run's band, and every "
        "liquidated borrower) at every checkpoint, under the reported and the true price, exact to the wei.",
        [
            col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
            col("user", pa.string(), "Borrower"), *_CHECKPOINT,
            col("emode_category", pa.int32(), "The user's eMode category (0 = none)"),
            col("hf_reported", DEC, "Health factor under the reported prices, as getUserAccountData computes it; "
                "NULL when it exceeds 1e20 (no debt)", UNIT_WAD),
            col("hf_true", DEC, "Health factor under the true prices; NULL when it exceeds 1e20", UNIT_WAD),
            col("collateral_base_reported", DEC, "totalCollateralBase under the reported prices", UNIT_BASE),
            col("debt_base_reported", DEC, "totalDebtBase under the reported prices", UNIT_BASE),
            col("collateral_base_true", DEC, "totalCollateralBase under the true prices", UNIT_BASE),
            col("debt_base_true", DEC, "totalDebtBase under the true prices", UNIT_BASE),
            col("wrongly_eligible", pa.bool_(), "hf_reported < 1 <= hf_true"),
            col("liquidated_here", pa.bool_(), "A LiquidationCall of this user follows this checkpoint directly"),
        ],
        KIND_OUTPUT,
    ),
    "verdicts": register_table(
        "verdicts",
        "One row per LiquidationCall in the window: health factor just before it under both prices, the verdict, "
        "what could have been liquidated, and the borrower's loss split into oracle, bonus and fee parts.",
        [
            col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
            col("block_number", pa.int64(), "Block of the LiquidationCall", UNIT_BLOCK),
            col("transaction_index", pa.int32(), "Its transaction's position in the block"),
            col("log_index", pa.int32(), "Its log index in the block"),
            col("transaction_hash", pa.string(), "Its transaction"),
            col("timestamp", pa.int64(), "Block timestamp", UNIT_SECONDS),
            col("checkpoint", pa.int32(), "The health checkpoint just before it (see `health`)"),
            col("user", pa.string(), "Borrower"), col("liquidator", pa.string(), "Liquidator"),
            col("collateral_asset", pa.string(), "Collateral seized"), col("collateral_symbol", pa.string(), "Its symbol"),
            col("debt_asset", pa.string(), "Debt repaid"), col("debt_symbol", pa.string(), "Its symbol"),
            col("debt_to_cover", DEC, "LiquidationCall.debtToCover: debt repaid", UNIT_WEI),
            col("liquidated_collateral_amount", DEC, "LiquidationCall.liquidatedCollateralAmount: collateral to the "
                "liquidator, protocol fee excluded", UNIT_WEI),
            col("protocol_fee_amount", DEC, "Collateral sent to the treasury as the liquidation protocol fee", UNIT_WEI),
            col("protocol_fee_source", pa.string(), "'transfer_log' (the aToken Transfer to the treasury) or "
                "'replay' (the replayed liquidation's fee, when no such log was found)"),
            col("collateral_seized", DEC, "liquidated_collateral_amount + protocol_fee_amount", UNIT_WEI),
            col("receive_a_token", pa.bool_(), "LiquidationCall.receiveAToken"),
            col("emode_category", pa.int32(), "The borrower's eMode category"),
            col("hf_reported", DEC, "Health factor just before, under the reported prices", UNIT_WAD),
            col("hf_true", DEC, "Health factor just before, under the true prices", UNIT_WAD),
            col("verdict", pa.string(), "'wrongly_eligible' (HF < 1 only under the reported price), 'eligible_anyway' "
                "(HF < 1 under both) or 'anomaly' (HF >= 1 even under the reported price)"),
            col("collateral_price_reported", DEC, "Reported price of the collateral", UNIT_PRICE),
            col("collateral_price_true", DEC, "True price of the collateral", UNIT_PRICE),
            col("debt_price_reported", DEC, "Reported price of the debt asset", UNIT_PRICE),
            col("debt_price_true", DEC, "True price of the debt asset", UNIT_PRICE),
            col("eth_price_true", DEC, "True ETH price used for the ETH columns (NULL without an ETH reserve)", UNIT_PRICE),
            col("max_liquidatable_debt_reported", DEC, "Most debt one liquidationCall could repay at the reported "
                "prices (close factor, collateral cap and dust rule of the revision)", UNIT_WEI),
            col("max_liquidatable_debt_true", DEC, "The same at the true prices (0 when not liquidatable)", UNIT_WEI),
            col("close_factor_bps_reported", pa.int32(), "Close factor applied at the reported prices", UNIT_BPS),
            col("over_liquidated_debt", DEC, "debt_to_cover - max_liquidatable_debt_true, when positive", UNIT_WEI),
            col("replay_matches_log", pa.bool_(), "Replaying the call at the reported prices gives the logged "
                "debtToCover and liquidatedCollateralAmount"),
            *_LOSS,
        ],
        KIND_OUTPUT,
    ),
    "borrower_losses": register_table(
        "borrower_losses",
        "Per borrower (and market): liquidations in the window and the loss split summed over them; "
        "reimbursable = oracle + fee oracle loss of every liquidation + bonus of the wrongly eligible ones.",
        [
            col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
            col("user", pa.string(), "Borrower"),
            col("liquidations", pa.int32(), "LiquidationCall logs"),
            col("wrongly_eligible_liquidations", pa.int32(), "Of which wrongly eligible"),
            col("debt_repaid_base", DEC, "Sum of debt_to_cover x true debt price; each floored", UNIT_BASE),
            col("collateral_seized_base", DEC, "Sum of collateral incl. fee x true collateral price; each floored", UNIT_BASE),
            col("oracle_loss_base", DEC, "Sum of oracle_loss_base", UNIT_BASE),
            col("oracle_loss_eth_wei", DEC, "Sum of oracle_loss_eth_wei", UNIT_ETH_WEI),
            col("fee_oracle_loss_base", DEC, "Sum of fee_oracle_loss_base", UNIT_BASE),
            col("fee_oracle_loss_eth_wei", DEC, "Sum of fee_oracle_loss_eth_wei", UNIT_ETH_WEI),
            col("bonus_loss_base", DEC, "Sum of bonus_loss_base over every liquidation", UNIT_BASE),
            col("bonus_loss_eth_wei", DEC, "Sum of bonus_loss_eth_wei over every liquidation", UNIT_ETH_WEI),
            col("bonus_loss_wrongly_eligible_base", DEC, "Sum of bonus_loss_base over the wrongly eligible ones", UNIT_BASE),
            col("bonus_loss_wrongly_eligible_eth_wei", DEC, "The same in ETH", UNIT_ETH_WEI),
            col("borrower_loss_base", DEC, "Sum of borrower_loss_base", UNIT_BASE),
            col("borrower_loss_eth_wei", DEC, "Sum of borrower_loss_eth_wei", UNIT_ETH_WEI),
            col("reimbursable_base", DEC, "oracle + fee oracle loss (all) + bonus loss (wrongly eligible)", UNIT_BASE),
            col("reimbursable_eth_wei", DEC, "The same in ETH", UNIT_ETH_WEI),
        ],
        KIND_OUTPUT,
    ),
    "liquidator_gains": register_table(
        "liquidator_gains",
        "Per liquidator (and market): collateral received beyond the debt repaid, at true prices, split into the "
        "oracle gain (underpriced collateral) and the bonus gain (net of the protocol fee, as the protocol valued it).",
        [
            col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
            col("liquidator", pa.string(), "Liquidator"),
            col("liquidations", pa.int32(), "LiquidationCall logs"),
            col("wrongly_eligible_liquidations", pa.int32(), "Of which wrongly eligible"),
            col("debt_repaid_base", DEC, "Sum of debt_to_cover x true debt price; each floored", UNIT_BASE),
            col("gain_base", DEC, "Sum of liquidated_collateral_amount x true price - debt x true debt price", UNIT_BASE),
            col("gain_eth_wei", DEC, "The same in ETH", UNIT_ETH_WEI),
            col("oracle_gain_base", DEC, "Sum of liquidated_collateral_amount x (true - reported price)", UNIT_BASE),
            col("oracle_gain_eth_wei", DEC, "The same in ETH", UNIT_ETH_WEI),
            col("bonus_gain_base", DEC, "Sum of liquidated_collateral_amount x reported price - debt x reported debt price",
                UNIT_BASE),
            col("bonus_gain_eth_wei", DEC, "The same in ETH", UNIT_ETH_WEI),
        ],
        KIND_OUTPUT,
    ),
    "at_risk": register_table(
        "at_risk",
        "Positions wrongly eligible (hf_reported < 1 <= hf_true) at some checkpoint but never liquidated in the "
        "window: for how long, and what the largest single liquidation at its lowest reported health factor "
        "would have cost the borrower.",
        [
            col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
            col("user", pa.string(), "Borrower"),
            col("checkpoints_wrongly_eligible", pa.int32(), "Checkpoints at which it was wrongly eligible"),
            col("first_block", pa.int64(), "First such checkpoint's block", UNIT_BLOCK),
            col("first_timestamp", pa.int64(), "Its time", UNIT_SECONDS),
            col("last_block", pa.int64(), "Last such checkpoint's block", UNIT_BLOCK),
            col("last_timestamp", pa.int64(), "Its time", UNIT_SECONDS),
            col("seconds_wrongly_eligible", pa.int64(), "Time from each first wrongly eligible checkpoint to the next "
                "checkpoint where it was not (or the end of the window), summed", "seconds"),
            col("min_hf_reported", DEC, "Lowest reported health factor while wrongly eligible", UNIT_WAD),
            col("hf_true_at_min", DEC, "True health factor at that checkpoint", UNIT_WAD),
            col("max_collateral_base_reported", DEC, "Largest totalCollateralBase (reported) while wrongly eligible", UNIT_BASE),
            col("max_debt_base_reported", DEC, "Largest totalDebtBase (reported) while wrongly eligible", UNIT_BASE),
            col("exposed_block", pa.int64(), "Block of the checkpoint with the lowest reported health factor", UNIT_BLOCK),
            col("exposed_collateral_asset", pa.string(), "Its collateral (the user's largest)"),
            col("exposed_debt_asset", pa.string(), "Its debt (the user's largest)"),
            col("exposed_debt_to_cover", DEC, "Most debt one liquidationCall could have repaid then (largest collateral, largest debt)", UNIT_WEI),
            col("exposed_collateral_seized", DEC, "Collateral it would have taken, protocol fee included", UNIT_WEI),
            col("exposed_loss_base", DEC, "What the borrower would have lost, at true prices (borrower_loss)", UNIT_BASE),
            col("exposed_loss_eth_wei", DEC, "The same in ETH", UNIT_ETH_WEI),
        ],
        KIND_OUTPUT,
    ),
    "price_path": register_table(
        "price_path",
        "Reported and true price of every reserve at the end of every block the warehouse holds in the window "
        "(for charts), with the oracle price read at that block when there is one.",
        [
            col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
            col("asset", pa.string(), "Reserve asset"), col("symbol", pa.string(), "Its symbol"),
            col("block_number", pa.int64(), "Block (state at its end)", UNIT_BLOCK),
            col("timestamp", pa.int64(), "Block time", UNIT_SECONDS),
            col("reported_price", DEC, "Reported price, recomputed from the price source's state", UNIT_PRICE),
            col("true_price", DEC, "True price under the run's model", UNIT_PRICE),
            col("oracle_price", DEC, "AaveOracle.getAssetPrice read at this block (NULL when not read)", UNIT_PRICE),
        ],
        KIND_OUTPUT,
    ),
}

# Views over the outputs (registered by a replay run; see replay.engine).
VIEWS: dict[str, tuple[str, str]] = {
    "latest_replay_runs": (
        "SELECT json_extract_string(params, '$.incident_id') AS incident_id, "
        "max_by(run_id, finished_at) AS run_id, max(finished_at) AS finished_at "
        "FROM runs WHERE kind = 'replay' GROUP BY 1",
        "The most recent replay run of each incident.",
    ),
    "verdict_summary": (
        "SELECT v.incident_id, v.run_id, v.market, v.block_number, v.log_index, v.user, v.liquidator, "
        "v.collateral_symbol, v.debt_symbol, v.verdict, "
        "CAST(v.hf_reported AS DOUBLE) / 1e18 AS hf_reported, CAST(v.hf_true AS DOUBLE) / 1e18 AS hf_true, "
        "CAST(v.debt_to_cover AS DOUBLE) / power(10, r.decimals) AS debt_to_cover_units, "
        "CAST(v.oracle_loss_eth_wei AS DOUBLE) / 1e18 AS oracle_loss_eth, "
        "CAST(v.bonus_loss_eth_wei AS DOUBLE) / 1e18 AS bonus_loss_eth, "
        "CAST(v.borrower_loss_eth_wei AS DOUBLE) / 1e18 AS borrower_loss_eth "
        "FROM verdicts v JOIN latest_replay_runs l USING (incident_id, run_id) "
        "JOIN (SELECT DISTINCT chain_id, pool, asset, decimals FROM reserves) r "
        "ON r.chain_id = v.chain_id AND r.pool = v.pool AND r.asset = v.debt_asset",
        "The latest replay's verdicts in human units (floats, for reading only; the exact values are in verdicts).",
    ),
}


def to_output(name: str, rows) -> "pa.Table | pa.RecordBatchReader":
    """What the warehouse writes for ``name``: the health table (kept by columns) as a stream of
    record batches, so that a large one never sits in memory as Arrow at once; any other as a table."""
    if hasattr(rows, "batches"):
        doc = TABLES.get(name) or schema_docs.get(name)
        return pa.RecordBatchReader.from_batches(doc.arrow_schema(), rows.batches(doc))
    return to_arrow(name, rows)


def to_arrow(name: str, rows) -> pa.Table:
    """Rows (dicts of Python values, ints for decimals, or a :class:`replay.health_rows.HealthRows`)
    -> the documented Arrow table of ``name``.

    A decimal value outside 38 digits is stored as NULL (only health factors of positions
    without debt get there, and the column docs say so).
    """
    doc = TABLES.get(name) or schema_docs.get(name)  # the replay's tables, or another documented output
    if hasattr(rows, "to_arrow"):  # the health table, kept by columns (replay.health_rows.HealthRows)
        return rows.to_arrow(doc)
    arrays = []
    for c in doc.columns:
        values = [r.get(c.name) for r in rows]
        if pa.types.is_decimal(c.type):
            values = [None if v is None or abs(int(v)) > DEC_MAX else Decimal(int(v)) for v in values]
        arrays.append(pa.array(values, type=c.type))
    return pa.Table.from_arrays(arrays, schema=doc.arrow_schema())


# The views' columns, documented like the tables (``postmortem schema`` and the catalog comments).
_F = pa.float64()
VIEW_DOCS = {}
VIEW_DOCS["latest_replay_runs"] = register_table("latest_replay_runs", VIEWS["latest_replay_runs"][1], [
    col("incident_id", pa.string(), "Incident id"),
    col("run_id", pa.string(), "Its most recent replay run"),
    col("finished_at", pa.timestamp("us"), "When that run finished, UTC"),
], KIND_VIEW)
VIEW_DOCS["verdict_summary"] = register_table("verdict_summary", VIEWS["verdict_summary"][1], [
    col("incident_id", pa.string(), "Incident id"), col("run_id", pa.string(), "Replay run"),
    col("market", pa.string(), "Market name"), col("block_number", pa.int64(), "Block of the liquidation", UNIT_BLOCK),
    col("log_index", pa.int32(), "Log index of the LiquidationCall"), col("user", pa.string(), "Borrower"),
    col("liquidator", pa.string(), "Liquidator"), col("collateral_symbol", pa.string(), "Collateral seized"),
    col("debt_symbol", pa.string(), "Debt repaid"),
    col("verdict", pa.string(), "wrongly_eligible, eligible_anyway or anomaly"),
    col("hf_reported", _F, "Health factor before the liquidation under the reported price (float, for reading)"),
    col("hf_true", _F, "Health factor before the liquidation under the true price (float, for reading)"),
    col("debt_to_cover_units", _F, "Debt repaid, in debt tokens (float, for reading)"),
    col("oracle_loss_eth", _F, "Oracle loss in ETH (float, for reading)"),
    col("bonus_loss_eth", _F, "Bonus loss in ETH (float, for reading)"),
    col("borrower_loss_eth", _F, "All the borrower lost, in ETH (float, for reading)"),
], KIND_VIEW)
