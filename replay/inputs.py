"""What a replay reads from the warehouse, for one chain, a set of pools and a block window.

:func:`load_inputs` runs one read-only query per table over the catalog (``postmortem.sql``)
and returns plain rows (dicts) with every DECIMAL turned into a Python int, so nothing is
rounded on the way in. Unit tests build :class:`ReplayInputs` directly from synthetic rows.

The window ``[from_block, to_block]`` is what the ingest wrote: start state at
``from_block - 1`` (``positions_at_start``, ``reserve_states_at_start``, ``emode_categories``),
logs and block-end reads over the window. :func:`ingested_window` finds it in the warehouse's
run records for an incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from postmortem.errors import PostmortemError

__all__ = ["EVENT_TABLES", "ReplayInputs", "ingested_window", "load_inputs"]

# Decoded log tables a replay reads, with the columns it uses.
EVENT_TABLES: dict[str, tuple[str, ...]] = {
    "token_mints": ("on_behalf_of", "value", "balance_increase", "index"),
    "token_burns": ("from_address", "target", "value", "balance_increase", "index"),
    "balance_transfers": ("from_address", "to_address", "value", "index"),
    "collateral_toggles": ("reserve", "user", "enabled"),
    "emode_changes": ("user", "category_id"),
    "reserve_updates": ("reserve", "liquidity_rate", "variable_borrow_rate", "liquidity_index", "variable_borrow_index"),
    "liquidations": ("collateral_asset", "debt_asset", "user", "debt_to_cover", "liquidated_collateral_amount",
                     "liquidator", "receive_a_token"),
    "cap_parameter_updates": ("snapshot_ratio", "snapshot_timestamp", "max_ratio_growth_per_second"),
    "oracle_answers": ("answer",),
    "collateral_configuration_changes": ("asset", "ltv", "liquidation_threshold", "liquidation_bonus"),
    "liquidation_protocol_fee_changes": ("asset", "new_fee"),
    "emode_category_additions": ("category_id", "ltv", "liquidation_threshold", "liquidation_bonus"),
    "emode_collateral_changes": ("asset", "category_id", "collateral"),
    "deficits": ("user", "debt_asset", "amount_created"),
}
LOG_COLUMNS = ("block_number", "transaction_index", "log_index", "transaction_hash", "address")


@dataclass
class ReplayInputs:
    """Everything one replay reads. Rows are dicts; addresses lowercase; amounts Python ints."""

    chain_id: int
    from_block: int
    to_block: int
    markets: list[dict]
    reserves: list[dict]
    reserve_states_at_start: list[dict]
    emode_categories: list[dict]
    positions_at_start: Any
    """A list of dicts, or an Arrow table (what :func:`load_inputs` gives; loaded by columns)."""
    blocks: list[dict]
    oracle_prices: list[dict] = field(default_factory=list)
    capo_states: list[dict] = field(default_factory=list)
    feed_answers: list[dict] = field(default_factory=list)
    events: dict[str, list[dict]] = field(default_factory=dict)
    liquidation_transfers: list[dict] = field(default_factory=list)
    """aToken ``Transfer`` logs of the transactions holding a ``LiquidationCall`` (the protocol fee)."""
    input_files: dict[str, str] = field(default_factory=dict)
    """Provenance: warehouse path -> sha256 of every chunk read."""

    @property
    def pools(self) -> list[str]:
        return [m["pool"] for m in self.markets]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    return value


def _rows(con, query: str, params: list | None = None) -> list[dict]:
    import duckdb

    try:
        cur = con.execute(query, params or [])
    except duckdb.CatalogException:
        return []  # a dataset the ingest never wrote (no such logs in the range)
    names = [d[0] for d in cur.description]
    return [{n: _plain(v) for n, v in zip(names, row)} for row in cur.fetchall()]


def _arrow(con, query: str, params: list | None = None):
    """A query's result as an Arrow table (an empty list when the dataset was never written)."""
    import duckdb

    try:
        # con.sql: a relation's Arrow output, without the extra copy a DB-API result makes.
        return con.sql(query, params=params or None).to_arrow_table()
    except duckdb.CatalogException:
        return []


def _has_columns(con, table: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    import duckdb

    try:
        have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    except duckdb.CatalogException:
        return ()
    return tuple(c for c in columns if c in have)


def load_inputs(root: Path | str, *, chain_id: int, pools: list[str], from_block: int, to_block: int) -> ReplayInputs:
    """Read the replay's inputs for ``pools`` on ``chain_id`` over ``[from_block, to_block]``."""
    from postmortem.sql import connect_read_only
    from postmortem.warehouse import Warehouse

    pools = sorted({p.lower() for p in pools})
    start = from_block - 1
    con = connect_read_only(root)
    try:
        inlist = ", ".join("?" for _ in pools)
        markets = _rows(con, f"SELECT * FROM markets WHERE chain_id = ? AND pool IN ({inlist}) "
                             "ORDER BY block_number DESC", [chain_id, *pools])
        seen, latest = set(), []
        for m in markets:  # several ingests may have discovered the same pool: keep the latest
            if m["pool"] not in seen:
                seen.add(m["pool"])
                latest.append(m)
        missing = set(pools) - seen
        if missing:
            raise PostmortemError(
                f"the warehouse has no market for pool(s) {', '.join(sorted(missing))} on chain {chain_id}; "
                "run `postmortem ingest` for this incident first"
            )
        reserves = _rows(con, f"SELECT DISTINCT * EXCLUDE (chain_id) FROM reserves WHERE chain_id = ? AND pool IN ({inlist}) "
                              "ORDER BY pool, reserve_id", [chain_id, *pools])
        at_start = [chain_id, start, *pools]
        where_start = f"chain_id = ? AND block_number = ? AND pool IN ({inlist})"
        reserve_states = _rows(con, f"SELECT * FROM reserve_states_at_start WHERE {where_start}", at_start)
        if not reserve_states:
            raise PostmortemError(
                f"the warehouse has no reserve states at block {start} (the block before {from_block}); "
                "ingest the same block range first"
            )
        emode = _rows(con, f"SELECT * FROM emode_categories WHERE {where_start}", at_start)
        # as Arrow: the replay loads it by columns (replay.start_columns), no Python object per row
        positions = _arrow(con, f"SELECT * FROM positions_at_start WHERE {where_start}", at_start)
        window = [chain_id, start, to_block]
        blocks = _rows(con, "SELECT DISTINCT block_number, timestamp FROM blocks WHERE chain_id = ? AND "
                            "block_number BETWEEN ? AND ? ORDER BY block_number", window)
        oracle_prices = _rows(con, f"SELECT block_number, pool, asset, price FROM oracle_prices WHERE chain_id = ? "
                                   f"AND block_number BETWEEN ? AND ? AND pool IN ({inlist})", [*window, *pools])
        capo = _rows(con, "SELECT * FROM capo_states WHERE chain_id = ? AND block_number BETWEEN ? AND ?", window)
        feeds = _rows(con, "SELECT block_number, feed, answer FROM feed_answers WHERE chain_id = ? AND "
                           "block_number BETWEEN ? AND ?", window)
        events = {}
        for table, columns in EVENT_TABLES.items():
            cols = _has_columns(con, table, LOG_COLUMNS + columns)
            if not cols:
                events[table] = []
                continue
            if "address" not in cols and _has_columns(con, table, ("pool",)):
                cols += ("pool AS address",)  # the catalog calls a Pool event's emitter `pool`
            events[table] = _rows(
                con, f"SELECT {', '.join(cols)} FROM {table} WHERE chain_id = ? AND block_number BETWEEN ? AND ? "
                     "ORDER BY block_number, log_index", [chain_id, from_block, to_block])
        a_tokens = sorted({r["a_token"] for r in reserves})
        liq_transfers = []
        if a_tokens and events.get("liquidations"):
            liq_transfers = _rows(
                con, f"SELECT t.block_number, t.transaction_index, t.log_index, t.transaction_hash, t.address, "
                     f"t.from_address, t.to_address, t.value FROM transfers t WHERE t.chain_id = ? AND "
                     f"t.block_number BETWEEN ? AND ? AND t.address IN ({', '.join('?' for _ in a_tokens)}) AND "
                     f"t.transaction_hash IN (SELECT transaction_hash FROM liquidations WHERE chain_id = ? AND "
                     f"block_number BETWEEN ? AND ?) ORDER BY t.block_number, t.log_index",
                [chain_id, from_block, to_block, *a_tokens, chain_id, from_block, to_block])
    finally:
        con.close()
    wh = Warehouse(root)
    datasets = ["markets", "reserves", "reserve_states_at_start", "emode_categories", "positions_at_start", "blocks",
                "oracle_prices", "capo_states", "feed_answers", "transfers", *EVENT_TABLES]
    return ReplayInputs(
        chain_id=chain_id, from_block=from_block, to_block=to_block, markets=latest, reserves=reserves,
        reserve_states_at_start=reserve_states, emode_categories=emode, positions_at_start=positions, blocks=blocks,
        oracle_prices=oracle_prices, capo_states=capo, feed_answers=feeds, events=events,
        liquidation_transfers=liq_transfers,
        input_files=wh.input_hashes(chain_id, datasets, start, to_block),
    )


def ingested_window(root: Path | str, incident_id: str) -> dict | None:
    """The last ingest run recorded for ``incident_id``: ``{"pools", "from_block", "to_block"}``, or None."""
    from postmortem.warehouse import Warehouse

    for run in reversed(Warehouse(root).runs("ingest")):
        params = run.get("params") or {}
        if params.get("incident") == incident_id and params.get("from_block") is not None:
            return {"pools": dict(params.get("pools") or {}), "from_block": int(params["from_block"]),
                    "to_block": int(params["to_block"])}
    return None
