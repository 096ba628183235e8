"""What ingest writes: the documented tables (for ``postmortem schema`` and the catalog's
column comments) and which amount columns get a human-unit twin.

Every uint256 is stored exactly as DECIMAL(38,0); a ``<column>_units`` DOUBLE beside it holds
the same amount divided by 10^decimals of its token, for reading only.
"""

from __future__ import annotations

import pyarrow as pa

from postmortem.ingest.events import EVENTS, TABLE_SCHEMAS
from postmortem.schema_docs import (
    KIND_CHUNKED, UNIT_BASE, UNIT_BLOCK, UNIT_BPS, UNIT_RAY, UNIT_SECONDS, UNIT_WEI, col, register_table,
)

DEC = pa.decimal128(38, 0)
UNIT_HUMAN = "token units (float, for display only; the exact value is the column without _units)"

# table -> [(amount column, column holding the token or asset address)]
HUMAN_UNITS: dict[str, list[tuple[str, str]]] = {
    "supplies": [("amount", "reserve")],
    "withdraws": [("amount", "reserve")],
    "borrows": [("amount", "reserve")],
    "repays": [("amount", "reserve")],
    "liquidations": [("debt_to_cover", "debt_asset"), ("liquidated_collateral_amount", "collateral_asset")],
    "deficits": [("amount_created", "debt_asset")],
    "token_mints": [("value", "address")],
    "token_burns": [("value", "address")],
    "balance_transfers": [("value", "address")],
    "transfers": [("value", "address")],
}

_COMMON = {
    "block_number": ("Block holding the log", UNIT_BLOCK),
    "block_hash": ("Hash of that block (0x hex)", None),
    "transaction_hash": ("Transaction that emitted the log (0x hex)", None),
    "transaction_index": ("Position of the transaction in its block", None),
    "log_index": ("Position of the log in its block", None),
    "address": ("Contract that emitted the log (lowercase 0x hex)", None),
}
_UNITS_BY_NAME = {
    "liquidity_index": UNIT_RAY, "variable_borrow_index": UNIT_RAY, "liquidity_rate": UNIT_RAY,
    "variable_borrow_rate": UNIT_RAY, "stable_borrow_rate": UNIT_RAY, "borrow_rate": UNIT_RAY, "index": UNIT_RAY,
    "answer": "feed answer (integer; 8 decimals for USD feeds)", "snapshot_ratio": "ratio, 18 decimals",
    "max_ratio_growth_per_second": "ratio per second, 18 decimals", "snapshot_timestamp": UNIT_SECONDS,
    "updated_at": UNIT_SECONDS, "started_at": UNIT_SECONDS, "ltv": UNIT_BPS, "liquidation_threshold": UNIT_BPS,
    "liquidation_bonus": "basis points, 100% + bonus (10500 = 5% bonus)", "old_fee": UNIT_BPS, "new_fee": UNIT_BPS,
}


def _event_docs(table: str) -> str:
    evs = [e for e in EVENTS if e.table == table]
    return "; ".join(e.signature for e in evs)


def register_docs() -> None:
    for table, schema in TABLE_SCHEMAS.items():
        cols = []
        for f in schema:
            desc, unit = _COMMON.get(f.name, (f"`{f.name}` of the event", None))
            if f.name not in _COMMON and pa.types.is_decimal(f.type):
                unit = _UNITS_BY_NAME.get(f.name, UNIT_WEI)
            cols.append(col(f.name, f.type, desc, unit))
        if table in ("transfers", "token_mints", "token_burns", "balance_transfers"):
            cols.append(col("asset", pa.string(), "Underlying asset of the emitting aToken / debt token", None))
        for field, _ in HUMAN_UNITS.get(table, []):
            cols.append(col(f"{field}_units", pa.float64(), f"`{field}` in token units", UNIT_HUMAN))
        register_table(table, f"Decoded logs: {_event_docs(table)}", cols, KIND_CHUNKED)

    register_table("markets", "Aave v3 markets discovered from the chain at the end of the range", [
        col("market", pa.string(), "Market name (from the incident file, e.g. core, prime)"),
        col("pool", pa.string(), "Pool proxy address"), col("addresses_provider", pa.string(), "PoolAddressesProvider"),
        col("oracle", pa.string(), "AaveOracle"), col("pool_configurator", pa.string(), "PoolConfigurator proxy"),
        col("data_provider", pa.string(), "AaveProtocolDataProvider"),
        col("pool_revision", pa.int64(), "Pool.POOL_REVISION()"),
        col("aave_revision", pa.string(), "Math revision replay uses (3.0, 3.3, 3.4, 3.6)"),
        col("block_number", pa.int64(), "Block of discovery", UNIT_BLOCK)])
    register_table("reserves", "Every reserve of every market with its tokens and price source", [
        col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
        col("asset", pa.string(), "Underlying asset"), col("symbol", pa.string(), "ERC-20 symbol"),
        col("decimals", pa.int32(), "Token decimals"), col("reserve_id", pa.int32(), "Bit index in user configurations"),
        col("a_token", pa.string(), "aToken"), col("variable_debt_token", pa.string(), "Variable debt token"),
        col("price_source", pa.string(), "AaveOracle.getSourceOfAsset"),
        col("source_kind", pa.string(), "'capped_ratio' (CAPO adapter), 'feed' (Chainlink-style), 'stable_cap' "
            "(stablecoin price cap adapter) or 'other' (neither: replay values it from oracle_prices)"),
        col("base_feed", pa.string(), "Capped adapter: base price feed"),
        col("ratio_provider", pa.string(), "Capped adapter: live ratio provider"),
        col("feed_aggregator", pa.string(), "Chainlink proxy: aggregator emitting AnswerUpdated"),
        col("base_feed_aggregator", pa.string(), "Base feed proxy: its aggregator")])
    register_table("blocks", "Header of every block holding a log, every block read, and the chunk ends", [
        col("block_number", pa.int64(), "Block number", UNIT_BLOCK), col("block_hash", pa.string(), "Block hash"),
        col("parent_hash", pa.string(), "Parent block hash"), col("timestamp", pa.int64(), "Block time", UNIT_SECONDS)])
    register_table("oracle_prices", "AaveOracle.getAssetPrice read at the end of each block that matters", [
        col("block_number", pa.int64(), "Block read (state at its end)", UNIT_BLOCK), col("market", pa.string(), "Market"),
        col("pool", pa.string(), "Pool"), col("oracle", pa.string(), "AaveOracle"), col("asset", pa.string(), "Asset"),
        col("price", DEC, "Reported price", UNIT_BASE)])
    register_table("capo_states", "Capped-ratio adapter state at the end of each block that matters", [
        col("block_number", pa.int64(), "Block read", UNIT_BLOCK), col("adapter", pa.string(), "Adapter address"),
        col("base_feed", pa.string(), "Base feed"), col("ratio_provider", pa.string(), "Ratio provider"),
        col("snapshot_ratio", DEC, "Snapshot ratio", "ratio, 18 decimals"),
        col("snapshot_timestamp", pa.int64(), "Snapshot time", UNIT_SECONDS),
        col("max_ratio_growth_per_second", DEC, "Cap growth per second", "ratio per second, 18 decimals"),
        col("ratio", DEC, "Live (uncapped) ratio", "ratio, 18 decimals"),
        col("base_answer", DEC, "Base feed latestAnswer", "8 decimals, USD")])
    register_table("feed_answers", "latestAnswer of every price feed at the end of each block that matters", [
        col("block_number", pa.int64(), "Block read", UNIT_BLOCK), col("feed", pa.string(), "Feed address"),
        col("answer", DEC, "latestAnswer", "8 decimals, USD")])
    register_table("reserve_states_at_start", "Pool.getReserveData at the block before the range", [
        col("market", pa.string(), "Market"), col("pool", pa.string(), "Pool"), col("asset", pa.string(), "Asset"),
        col("block_number", pa.int64(), "Block read", UNIT_BLOCK), col("timestamp", pa.int64(), "Its time", UNIT_SECONDS),
        col("configuration", pa.string(), "ReserveConfigurationMap bitmap (exact decimal text; 256 bits)"),
        col("liquidity_index", DEC, "Liquidity index", UNIT_RAY), col("liquidity_rate", DEC, "Liquidity rate", UNIT_RAY),
        col("variable_borrow_index", DEC, "Variable borrow index", UNIT_RAY),
        col("variable_borrow_rate", DEC, "Variable borrow rate", UNIT_RAY),
        col("last_update_timestamp", pa.int64(), "Last index update", UNIT_SECONDS),
        col("accrued_to_treasury", DEC, "Accrued to treasury (scaled)", UNIT_WEI)])
    register_table("emode_categories", "eMode categories at the block before the range", [
        col("market", pa.string(), "Market"), col("pool", pa.string(), "Pool"),
        col("block_number", pa.int64(), "Block read", UNIT_BLOCK), col("category_id", pa.int32(), "Category id"),
        col("ltv", pa.int32(), "LTV", UNIT_BPS), col("liquidation_threshold", pa.int32(), "Liquidation threshold", UNIT_BPS),
        col("liquidation_bonus", pa.int32(), "Liquidation bonus (100% + bonus)", UNIT_BPS),
        col("collateral_bitmap", pa.string(), "Reserves usable as collateral (bit = reserve id); null before v3.2"),
        col("borrowable_bitmap", pa.string(), "Reserves borrowable (bit = reserve id); null before v3.2"),
        col("label", pa.string(), "Label"), col("price_source", pa.string(), "v3.0 category price source")])
    register_table("positions_at_start", "Every position at the block before the range (scaled balances and flags)", [
        col("market", pa.string(), "Market"), col("pool", pa.string(), "Pool"), col("user", pa.string(), "Borrower / supplier"),
        col("block_number", pa.int64(), "Block read", UNIT_BLOCK), col("emode_category", pa.int32(), "Pool.getUserEMode"),
        col("user_configuration", pa.string(), "UserConfigurationMap bitmap (exact decimal text)"), col("asset", pa.string(), "Reserve asset"),
        col("scaled_a_token_balance", DEC, "aToken.scaledBalanceOf", UNIT_WEI),
        col("scaled_variable_debt", DEC, "variableDebtToken.scaledBalanceOf", UNIT_WEI),
        col("using_as_collateral", pa.bool_(), "Collateral flag"), col("borrowing", pa.bool_(), "Borrowing flag")])
    register_table("holder_transfers", "aToken / debt-token Transfer logs since users_since (to find holders)", [
        col("block_number", pa.int64(), "Block", UNIT_BLOCK), col("log_index", pa.int32(), "Log index"),
        col("address", pa.string(), "Token"), col("from_address", pa.string(), "From"), col("to_address", pa.string(), "To")])
    register_table("undecoded", "Logs whose topic0 is a known event but whose layout is not (never a typed row)", [
        col("block_number", pa.int64(), "Block", UNIT_BLOCK), col("block_hash", pa.string(), "Block hash"),
        col("transaction_hash", pa.string(), "Transaction"), col("transaction_index", pa.int32(), "Position in the block"),
        col("log_index", pa.int32(), "Log index"), col("address", pa.string(), "Contract that emitted the log"),
        col("topic0", pa.binary(32), "Event signature hash"), col("event", pa.string(), "The event its topic0 names"),
        col("reason", pa.string(), "Why it does not decode: topic count, data length, or the field that does not fit")],
        KIND_CHUNKED)
