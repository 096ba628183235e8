"""The documented tables: what every warehouse table and view means, column by column, with units.

Each stage registers the tables it writes (``register_table``) and the SQL views it adds; the
registry feeds three things:

* ``postmortem schema`` (``describe()``), the user's map of the warehouse;
* the catalog (``Warehouse.refresh_catalog``), which attaches descriptions as DuckDB comments and
  creates an empty, correctly typed view for a documented table that has no files yet, so queries
  and views written against it work before the first run;
* ``Warehouse.write_chunk`` / ``write_output``, which refuse a table whose documented columns are
  missing or have another type, so one concept keeps one name and one type across the warehouse.

Column types are Arrow types (what writers produce); ``duckdb_type`` gives the SQL type a reader
sees. Units are free text; use the ``UNIT_*`` constants where they fit so the same unit reads the
same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from postmortem.errors import PostmortemError

# Units, written once so that every table says them the same way.
UNIT_WEI = "token base units (integer; divide by 10^decimals of the token, 1e18 for ETH)"
UNIT_RAY = "ray (integer; 1e27 = 1.0)"
UNIT_WAD = "wad (integer; 1e18 = 1.0)"
UNIT_BASE = "base currency units (integer; 1e8 = 1 USD for Aave v3)"
UNIT_BPS = "basis points (integer; 10000 = 100%)"
UNIT_SECONDS = "seconds since the Unix epoch, UTC"
UNIT_BLOCK = "block number"

KIND_CHUNKED = "chunked"  # Parquet files per block range: {chain}/{dataset}/..._{start}_to_{end}.parquet
KIND_OUTPUT = "output"  # replay/report outputs: {chain}/outputs/{table}/{incident}__{run}.parquet
KIND_VIEW = "view"  # SQL over other tables (Warehouse.register_view)
KIND_CATALOG = "catalog"  # built by refresh_catalog from the manifest and run records

# Columns the catalog adds to every file-backed view (derived from the file's folder).
CHAIN_ID_DOC = "Chain id the row comes from (1 = Ethereum mainnet); taken from the warehouse folder."
# Columns the catalog adds beside the data (Warehouse.refresh_catalog), by name.
CATALOG_COLUMN_DOCS = {
    "chain_id": CHAIN_ID_DOC,
    "timestamp_utc": "The row's `timestamp` (Unix seconds) as a UTC date and time, for reading and date filters.",
    "incident_id": "Incident the output belongs to (an id from `postmortem incidents`).",
    "run_id": "Replay run that wrote the row; the plain output views hold the latest complete run of each "
              "incident, the `*_all_runs` views every run.",
}
# Decoded tables of the events a Pool emits: their catalog views call the emitting contract `pool`,
# as every other table does (`reserves`, `oracle_prices` ...); the files keep the raw log's `address`.
POOL_EVENT_TABLES = frozenset({
    "supplies", "withdraws", "borrows", "repays", "liquidations", "reserve_updates", "collateral_toggles",
    "emode_changes", "deficits",
})
# Columns a view shows under another name than its files: table -> {file column: view column}.
VIEW_COLUMN_RENAMES = {t: {"address": "pool"} for t in POOL_EVENT_TABLES}
ALL_RUNS_DOC = ("Every replay run of `{name}`, one set of rows per run_id (the plain `{name}` view holds only the "
                "latest complete run of each incident). {description}")


@dataclass(frozen=True)
class ColumnDoc:
    """One documented column: name, Arrow type, meaning and unit (None when it has none)."""

    name: str
    type: pa.DataType
    description: str
    unit: str | None = None

    @property
    def sql_type(self) -> str:
        return duckdb_type(self.type)

    def comment(self) -> str:
        """The text stored as the DuckDB column comment."""
        return f"{self.description} [{self.unit}]" if self.unit else self.description


@dataclass(frozen=True)
class TableDoc:
    """One documented table or view."""

    name: str
    description: str
    columns: tuple[ColumnDoc, ...] = field(default_factory=tuple)
    kind: str = KIND_CHUNKED

    def column(self, name: str) -> ColumnDoc | None:
        return next((c for c in self.columns if c.name == name), None)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema writers should produce for this table."""
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])


_REGISTRY: dict[str, TableDoc] = {}


def col(name: str, type_: pa.DataType, description: str, unit: str | None = None) -> ColumnDoc:
    """Shorthand for ``ColumnDoc`` used in registrations."""
    return ColumnDoc(name, type_, description, unit)


def register_table(
    name: str,
    description: str,
    columns: list[ColumnDoc] | tuple[ColumnDoc, ...] = (),
    kind: str = KIND_CHUNKED,
) -> TableDoc:
    """Document a table or view; registering the same name again replaces the entry.

    Replacing (rather than refusing) keeps module reloads in tests harmless; the last
    registration wins.
    """
    if kind not in (KIND_CHUNKED, KIND_OUTPUT, KIND_VIEW, KIND_CATALOG):
        raise ValueError(f"unknown table kind {kind!r}")
    names = [c.name for c in columns]
    if len(names) != len(set(names)):
        raise ValueError(f"table {name!r} documents a column twice")
    for c in columns:
        duckdb_type(c.type)  # fail at registration, not at refresh time
    doc = TableDoc(name, description, tuple(columns), kind)
    _REGISTRY[name] = doc
    return doc


def get(name: str) -> TableDoc | None:
    """The documentation of ``name``, or None if it is not documented."""
    return _REGISTRY.get(name)


def all_tables() -> list[TableDoc]:
    """Every documented table and view, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB SQL type that DuckDB shows for an Arrow/Parquet column of type ``t``.

    Fixed-size binary reads back as BLOB (DuckDB has no fixed-size binary). decimal256 is
    refused: DuckDB reads Parquet decimals wider than 38 digits as DOUBLE, which would round
    uint256 values, so writers must use decimal128(38, 0), strings or bytes instead.
    """
    simple = {
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
        pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
        pa.string(): "VARCHAR", pa.large_string(): "VARCHAR",
        pa.binary(): "BLOB", pa.large_binary(): "BLOB", pa.date32(): "DATE",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_fixed_size_binary(t):
        return "BLOB"
    if pa.types.is_decimal256(t):
        raise PostmortemError(
            f"decimal256 columns ({t}) would be read by DuckDB as floats and lose precision; "
            "store uint256 values as decimal128(38, 0) when they fit, otherwise as a decimal string"
        )
    if pa.types.is_decimal128(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{t.field(i).name}" {duckdb_type(t.field(i).type)}' for i in range(t.num_fields))
        return f"STRUCT({inner})"
    raise ValueError(f"no DuckDB type known for Arrow type {t}")


def check_schema(name: str, schema: pa.Schema) -> list[str]:
    """Differences between ``schema`` and the documented columns of ``name`` (empty when fine).

    Documented columns must be present with the documented type; extra columns are allowed
    (``describe`` lists them as undocumented). Undocumented tables always pass.
    """
    doc = _REGISTRY.get(name)
    if doc is None:
        return []
    problems = []
    for c in doc.columns:
        idx = schema.get_field_index(c.name)
        if idx < 0:
            problems.append(f"column {c.name} ({c.type}) is missing")
        elif not schema.field(idx).type.equals(c.type):
            problems.append(f"column {c.name} is {schema.field(idx).type}, documented as {c.type}")
    return problems


def describe(name: str | None = None, warehouse_root: Path | str | None = None) -> str:
    """Text for ``postmortem schema``: every table, or one table's columns with types and units.

    With ``warehouse_root`` the listing also shows what the catalog actually holds: tables present
    in the warehouse but undocumented, and (for one table) undocumented columns; documented
    tables absent from the catalog are marked "(no data yet)".
    """
    if name == GLOSSARY_NAME:
        return describe_glossary()
    actual, comments = _catalog_columns(warehouse_root) if warehouse_root is not None else (None, {})
    if name is None:
        return _describe_all(actual, comments)
    doc = _REGISTRY.get(name)
    if doc is None and (actual is None or name not in actual):
        raise PostmortemError(f"no table named {name}; run `postmortem schema` to list tables")
    if doc is None and comments.get(name):  # a registered view's description lives in the catalog
        doc = TableDoc(name, comments[name], kind=KIND_VIEW)
    return _describe_one(name, doc, None if actual is None else actual.get(name))


def _describe_all(actual: dict[str, list[tuple[str, str, str | None]]] | None, comments: dict[str, str]) -> str:
    names = set(_REGISTRY) | set(actual or {})
    width = max((len(n) for n in names), default=0)
    lines = []
    for n in sorted(names):
        doc = _REGISTRY.get(n)
        text = doc.description if doc else (comments.get(n) or "(undocumented)")
        if actual is not None and n not in actual:
            text += " (no data yet)"
        lines.append(f"{n.ljust(width)}  {text}")
    lines.append("")
    lines.append("Run `postmortem schema TABLE` for its columns and units, "
                 f"`postmortem schema {GLOSSARY_NAME}` for the quantities the report names.")
    return "\n".join(lines)


def _describe_one(name: str, doc: TableDoc | None, actual: list[tuple[str, str, str | None]] | None) -> str:
    lines = [name, "=" * len(name), doc.description if doc else "(undocumented)", ""]
    rows: list[tuple[str, str, str]] = []
    renames = VIEW_COLUMN_RENAMES.get(name, {})
    documented = {renames.get(c.name, c.name): c for c in doc.columns} if doc else {}
    if actual is not None:
        for col_name, sql_type, _comment in actual:
            c = documented.get(col_name)
            if c is not None:
                rows.append((col_name, sql_type, c.comment()))
            elif col_name in CATALOG_COLUMN_DOCS:
                rows.append((col_name, sql_type, CATALOG_COLUMN_DOCS[col_name]))
            else:
                rows.append((col_name, sql_type, _comment or "(undocumented)"))
        present = {r[0] for r in rows}
        rows += [(n, c.sql_type, c.comment() + " (not in the data)") for n, c in documented.items()
                 if n not in present]
    else:
        rows = [(n, c.sql_type, c.comment()) for n, c in documented.items()]
        if doc is not None and doc.kind in (KIND_CHUNKED, KIND_OUTPUT):
            rows.append(("chain_id", "BIGINT", CHAIN_ID_DOC))
    w0 = max((len(r[0]) for r in rows), default=0)
    w1 = max((len(r[1]) for r in rows), default=0)
    lines += [f"{r[0].ljust(w0)}  {r[1].ljust(w1)}  {r[2]}" for r in rows]
    return "\n".join(lines)


def _catalog_columns(
    warehouse_root: Path | str,
) -> tuple[dict[str, list[tuple[str, str, str | None]]], dict[str, str]]:
    """Columns of every table/view in the warehouse catalog, name -> [(column, type, comment)],
    and the catalog's table/view comments, name -> comment."""
    import duckdb  # heavy import only for commands that read the catalog

    catalog = Path(warehouse_root) / "catalog.duckdb"
    if not catalog.exists():
        raise PostmortemError(
            f"the warehouse at {warehouse_root} has no catalog yet; ingest data first (ingest builds catalog.duckdb)"
        )
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall()
        comments = dict(con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
            "AND comment IS NOT NULL UNION ALL SELECT view_name, comment FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal AND comment IS NOT NULL"
        ).fetchall())
    finally:
        con.close()
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for table, column, sql_type, comment in rows:
        out.setdefault(table, []).append((column, sql_type, comment))
    return out, comments


# --- seed entries: the raw tables every ingest writes -------------------------------------------

_BYTES32 = pa.binary(32)

register_table(
    "logs",
    "Raw event logs from eth_getLogs, one row per log, as the node returned them.",
    [
        col("block_number", pa.int64(), "Block the log was emitted in.", UNIT_BLOCK),
        col("block_hash", pa.string(), "Hash of that block, 0x-prefixed hex (checked against `blocks` for reorgs)."),
        col("transaction_hash", pa.string(), "Transaction that emitted the log, 0x-prefixed hex."),
        col("transaction_index", pa.int32(), "Position of the transaction in its block."),
        col("log_index", pa.int32(), "Position of the log in its block (unique per block)."),
        col("address", pa.string(), "Contract that emitted the log, 0x-prefixed lowercase hex."),
        col("topic0", _BYTES32, "Event signature hash (keccak256 of the event signature); NULL for anonymous events."),
        col("topic1", _BYTES32, "First indexed argument, 32 bytes; NULL when absent."),
        col("topic2", _BYTES32, "Second indexed argument, 32 bytes; NULL when absent."),
        col("topic3", _BYTES32, "Third indexed argument, 32 bytes; NULL when absent."),
        col("data", pa.binary(), "ABI-encoded non-indexed arguments."),
    ],
)

register_table(
    "blocks",
    "Block headers for every block the warehouse holds data for (reorg checks, timestamps).",
    [
        col("block_number", pa.int64(), "Block number.", UNIT_BLOCK),
        col("block_hash", pa.string(), "Block hash, 0x-prefixed hex."),
        col("parent_hash", pa.string(), "Hash of the parent block, 0x-prefixed hex."),
        col("timestamp", pa.int64(), "Block timestamp.", UNIT_SECONDS),
    ],
)

# Tables the catalog builds from the warehouse's own bookkeeping (see Warehouse.refresh_catalog).
register_table(
    "runs",
    "One row per recorded run (ingest, replay, report ...): what ran, with which parameters, what it did.",
    [
        col("run_id", pa.string(), "Run identifier."),
        col("kind", pa.string(), "What ran: ingest, replay, report, ..."),
        col("tool_version", pa.string(), "postmortem version that ran."),
        col("started_at", pa.timestamp("us"), "When the run started, UTC."),
        col("finished_at", pa.timestamp("us"), "When the run finished, UTC."),
        col("duration_s", pa.float64(), "Wall-clock duration.", "seconds"),
        col("host", pa.string(), "Host the run ran on."),
        col("params", pa.string(), "Parameters as JSON (RPC URLs redacted)."),
        col("summary", pa.string(), "Summary as JSON (counts, timings). An ingest's cost is under $.cost: requests "
            "(HTTP posts), calls (JSON-RPC calls, those inside batches counted one by one, retries included), "
            "getlogs_calls, getlogs_ranges (answered) and logs_received, eth_calls and reads (multicall_calls and "
            "multicall_reads: Multicall3 aggregate3 calls and the reads they carried), bytes_received, bytes_sent, "
            "retries and retries_by_cause, rate_limit_waited_s, stage_seconds (per stage) and seconds; $.users_scope "
            "is the users' scope of the start snapshot. E.g. json_extract(summary, '$.cost.requests')."),
    ],
    kind=KIND_CATALOG,
)

register_table(
    "warehouse_files",
    "Every Parquet file the manifest records as complete, with row count, content hash and provenance.",
    [
        col("path", pa.string(), "File path relative to the warehouse root."),
        col("file_kind", pa.string(), "'chunk' (block range) or 'output' (replay/report output)."),
        col("chain_id", pa.int64(), "Chain id."),
        col("dataset", pa.string(), "Dataset (table) name."),
        col("start_block", pa.int64(), "First block of the chunk (NULL for outputs).", UNIT_BLOCK),
        col("end_block", pa.int64(), "Last block of the chunk, inclusive (NULL for outputs).", UNIT_BLOCK),
        col("incident_id", pa.string(), "Incident id (outputs only)."),
        col("run_id", pa.string(), "Run id (outputs only)."),
        col("rows", pa.int64(), "Row count."),
        col("bytes", pa.int64(), "File size.", "bytes"),
        col("sha256", pa.string(), "SHA-256 of the file bytes, hex."),
        col("schema_fingerprint", pa.string(), "Short hash of the column names and types."),
        col("written_at", pa.timestamp("us"), "When the file was recorded, UTC."),
        col("meta", pa.string(), "Writer metadata / provenance as JSON (range-end block hashes, inputs, parameters)."),
    ],
    kind=KIND_CATALOG,
)

register_table(
    "catalog_info",
    "When and for which warehouse folder the catalog was built.",
    [
        col("root", pa.string(), "Absolute path of the warehouse the views read."),
        col("refreshed_at", pa.timestamp("us"), "When the catalog was rebuilt, UTC."),
        col("tool_version", pa.string(), "postmortem version that built it."),
    ],
    kind=KIND_CATALOG,
)


# --- the report's quantities: one name and one definition each ------------------------------------
#
# The report (Markdown, HTML, JSON, CSV) uses exactly these names, in its glossary and wherever
# the number appears; ``postmortem schema glossary`` prints the same words.

GLOSSARY_NAME = "glossary"


@dataclass(frozen=True)
class Quantity:
    """One named quantity of the report: its name in prose, its key in report.json, its definition."""

    name: str
    key: str
    definition: str


GLOSSARY: tuple[Quantity, ...] = (
    Quantity("health factor", "hf",
             "What the protocol compares with 1 to allow a liquidation: the borrower's collateral, each asset "
             "weighted by its liquidation threshold, divided by the debt, all valued at the oracle's prices. "
             "Below 1, anyone may repay part of the debt and take collateral."),
    Quantity("reported price", "reported_price",
             "The price the protocol's oracle gave at the time, the one the liquidation used."),
    Quantity("true price", "true_price",
             "What the asset was really worth then, by the incident's price model (for a capped-ratio asset: "
             "the same formula without the cap)."),
    Quantity("capped ratio", "capped_ratio",
             "A price built as (ETH price) × (exchange rate of the staked token to ETH), where the exchange rate "
             "is not allowed to grow faster than a set yearly rate from a recorded snapshot. When the snapshot or "
             "the yearly rate is wrong, the cap is below the real rate and the token is priced too low."),
    Quantity("eMode", "emode",
             "Efficiency mode: a borrower who only mixes correlated assets (here ETH and ETH-staking tokens) may "
             "borrow more against them, with a higher liquidation threshold and a smaller liquidation bonus."),
    Quantity("liquidation bonus", "liquidation_bonus",
             "The extra collateral a liquidator receives on top of the value of the debt it repays (1% in the "
             "ETH-correlated eMode); the protocol keeps a share of that bonus as its fee."),
    Quantity("wrongly eligible", "wrongly_eligible",
             "A liquidation whose borrower had a health factor below 1 at the reported price and at least 1 at the "
             "true price, just before it: it happened only because of the mispricing."),
    Quantity("eligible anyway", "eligible_anyway",
             "A liquidation whose borrower had a health factor below 1 at both prices."),
    Quantity("collateral seized", "collateral_seized",
             "Collateral taken from borrowers in wrongly eligible liquidations: what the liquidators received "
             "plus the protocol fee, in token units."),
    Quantity("collateral to liquidators", "liquidated_collateral_amount",
             "The part of the collateral seized that the liquidators received (the LiquidationCall log's amount), "
             "without the protocol fee."),
    Quantity("protocol fee", "protocol_fee",
             "The part of the collateral seized that went to the protocol's treasury."),
    Quantity("debt repaid", "debt_repaid",
             "The debt the liquidators repaid in wrongly eligible liquidations, in token units."),
    Quantity("oracle loss", "oracle_loss_wei",
             "For each liquidation: all the collateral that left the borrower (to the liquidator and as protocol "
             "fee) × (true price − reported price), in ETH at the true ETH price of its block. The report's total "
             "is the sum over every liquidation judged, wrongly eligible or not."),
    Quantity("oracle loss on the protocol fee", "oracle_loss_fee_part_wei",
             "The part of the oracle loss that comes from the collateral taken as protocol fee; included in the "
             "oracle loss, never added to it."),
    Quantity("bonus loss", "bonus_loss_wei",
             "For each wrongly eligible liquidation: the collateral seized at the reported price minus the debt "
             "repaid at the reported price, in ETH at the true ETH price — the liquidation bonus the borrower "
             "should never have paid. The report's total is the sum over the wrongly eligible liquidations only."),
    Quantity("owed", "owed_wei",
             "What the reimbursement list pays, under the report's policy: for each borrower, the oracle part plus "
             "the bonus part plus any goodwill, listing borrowers whose sum is positive. The total is the sum of "
             "the list's rows, to the wei, and is the same in the headline, the tables, report.json and "
             "reimbursements.csv. Under the chain's prices (the default) the oracle part is the borrower's oracle "
             "loss and the bonus part its bonus loss."),
    Quantity("oracle part", "owed_oracle_part_wei",
             "The part of owed for collateral handed over at the wrong price: the oracle loss at the chain's "
             "prices, or the policy's rate gap × collateral to liquidators when a rate gap is stated."),
    Quantity("bonus part", "owed_bonus_part_wei",
             "The part of owed for the liquidation bonus: the bonus loss at the chain's prices, or the policy's "
             "basis points × debt repaid when a bonus basis is stated."),
    Quantity("owed in USD", "owed_usd_base",
             "Owed × the true ETH price in USD at the last liquidation, as the warehouse holds it; a conversion "
             "for reading, the list itself is in ETH."),
    Quantity("liquidator gain", "liquidator_gain_wei",
             "For each liquidator, over every liquidation it made: the collateral it received valued at the true "
             "price, minus the debt it repaid, in ETH."),
)


def describe_glossary() -> str:
    """Text for ``postmortem schema glossary``: every named quantity of the report."""
    width = max(len(q.name) for q in GLOSSARY)
    lines = ["glossary", "========", "The quantities the report names, with the key each has in report.json.", ""]
    for q in GLOSSARY:
        lines.append(f"{q.name.ljust(width)}  [{q.key}]  {q.definition}")
    return "\n".join(lines)


# --- what-if and stress outputs (written by replay/whatif_store.py) ------------------------------------

_DEC = pa.decimal128(38, 0)
_WHATIF_TOTALS = [
    col("liquidations", pa.int64(), "LiquidationCalls in the window (as they happened)"),
    col("would_liquidate", pa.int64(), "Of them, those that would have happened: health factor below 1 under the "
        "counterfactual reported prices and executeLiquidationCall not reverting, on the state just before each"),
    col("prevented", pa.int64(), "Of them, those that would not have happened"),
    col("wrongly_eligible", pa.int64(), "Would have happened although the health factor under the true prices was at least 1"),
    col("eligible_anyway", pa.int64(), "Would have happened with the health factor below 1 under the true prices too"),
    col("liquidatable_positions", pa.int64(), "Borrowers (pool, user) liquidatable at some checkpoint of the window "
        "under the counterfactual reported prices"),
    col("liquidatable_not_liquidated", pa.int64(), "Of them, borrowers never liquidated in the window"),
    col("collateral_seized_base", _DEC, "Collateral the liquidations that would have happened take (protocol fee "
        "included), at the true collateral price; floored", UNIT_BASE),
    col("oracle_loss_base", _DEC, "Oracle loss (see the glossary) over the liquidations that would have happened: the "
        "collateral that left the borrower, protocol fee included, x (true - counterfactual reported collateral "
        "price); floored", UNIT_BASE),
    col("bonus_loss_base", _DEC, "Bonus loss (see the glossary) over the wrongly eligible ones among them: collateral "
        "incl. fee x reported price - debt repaid x reported debt price; floored", UNIT_BASE),
    col("borrower_loss_base", _DEC, "Sum of everything the borrowers lost at true prices over them; floored", UNIT_BASE),
    col("oracle_loss_eth_wei", _DEC, "The oracle loss in ETH at the true ETH price of each liquidation (sum of floored "
        "per-liquidation values, its two parts floored apart, as the report sums verdicts' oracle_loss_eth_wei and "
        "fee_oracle_loss_eth_wei)", UNIT_WEI),
    col("bonus_loss_eth_wei", _DEC, "The bonus loss in ETH (wrongly eligible liquidations only), the same way", UNIT_WEI),
    col("borrower_loss_eth_wei", _DEC, "The borrower loss in ETH, the same way", UNIT_WEI),
    col("bad_debt_base", _DEC, "Sum over borrowers at the end of the window of max(0, totalDebtBase - "
        "totalCollateralBase) under the counterfactual reported prices", UNIT_BASE),
    col("bad_debt_eth_wei", _DEC, "The bad debt in ETH at the true ETH price at the end of the window; floored", UNIT_WEI),
]

register_table(
    "whatif_runs",
    "One row per counterfactual of a what-if run (`postmortem whatif`): point 0 is the window as it happened, "
    "then the --set counterfactual or each point of a --sweep, with what it changes: liquidations that would and "
    "would not have happened, wrongly eligible ones, losses and bad debt. Exact integers.",
    [
        col("point", pa.int32(), "0 = as it happened; 1.. = the counterfactuals in order (a sweep's grid)"),
        col("kind", pa.string(), "'actual', 'set' or 'sweep'"),
        col("settings", pa.string(), "The counterfactual as KEY=VALUE settings, comma-separated"),
        col("sweep_key", pa.string(), "The swept KEY (NULL without --sweep)"),
        col("sweep_value", pa.string(), "The swept value at this point, exact, as a setting writes it"),
        col("sweep_value_int", _DEC, "The same as the integer the replay uses (ratio x 1e18, basis points, blocks, "
            "seconds)"),
        col("is_boundary", pa.bool_(), "The sweep's boundary point: for a snapshot ratio, the smallest grid value "
            "keeping the asset uncapped through the window; for another KEY, the last grid value from START that "
            "changes nothing against the window as it happened (none when the first already does)"),
        col("from_block", pa.int64(), "First block of the window", UNIT_BLOCK),
        col("to_block", pa.int64(), "Last block of the window", UNIT_BLOCK),
        col("replay_run_id", pa.string(), "The replay run (verdicts etc.) of the same inputs this compares against"),
        *_WHATIF_TOTALS,
    ],
    KIND_OUTPUT,
)

register_table(
    "whatif_results",
    "One row per LiquidationCall and counterfactual of a what-if run: would it have happened, its health factor "
    "under the counterfactual and the true prices, and (if it would) what it takes with the same debtToCover.",
    [
        col("point", pa.int32(), "The whatif_runs point"),
        col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
        col("block_number", pa.int64(), "Block of the LiquidationCall", UNIT_BLOCK),
        col("transaction_index", pa.int32(), "Its transaction's position in the block"),
        col("log_index", pa.int32(), "Its log index"),
        col("user", pa.string(), "Borrower"), col("liquidator", pa.string(), "Liquidator"),
        col("collateral_asset", pa.string(), "Collateral asset"), col("collateral_symbol", pa.string(), "Its symbol"),
        col("debt_asset", pa.string(), "Debt asset"), col("debt_symbol", pa.string(), "Its symbol"),
        col("debt_to_cover", _DEC, "debtToCover as logged", UNIT_WEI),
        col("liquidated_collateral_amount", _DEC, "liquidatedCollateralAmount as logged", UNIT_WEI),
        col("hf_counterfactual", _DEC, "Health factor just before it under the counterfactual reported prices; "
            "NULL above 1e20", UNIT_WAD),
        col("hf_true", _DEC, "Health factor just before it under the true prices (with the counterfactual risk "
            "parameters); NULL above 1e20", UNIT_WAD),
        col("collateral_price_counterfactual", _DEC, "Counterfactual reported collateral price", UNIT_BASE),
        col("collateral_price_true", _DEC, "True collateral price", UNIT_BASE),
        col("would_liquidate", pa.bool_(), "The liquidation would have happened"),
        col("revert_reason", pa.string(), "Why it would not have (the protocol's error name), else NULL"),
        col("wrongly_eligible", pa.bool_(), "It would have happened with hf_true >= 1"),
        col("debt_repaid_counterfactual", _DEC, "Debt it would repay (the logged debtToCover, capped by the close "
            "factor); 0 if it would not happen", UNIT_WEI),
        col("collateral_seized_counterfactual", _DEC, "Collateral it would take, protocol fee included", UNIT_WEI),
        col("protocol_fee_counterfactual", _DEC, "Of which the protocol fee", UNIT_WEI),
        col("oracle_loss_base", _DEC, "Collateral to the liquidator x (true - counterfactual price); floored (as "
            "verdicts' column: the protocol-fee part is fee_oracle_loss_*)", UNIT_BASE),
        col("oracle_loss_eth_wei", _DEC, "The same in ETH at the true ETH price; floored", UNIT_WEI),
        col("fee_oracle_loss_base", _DEC, "Protocol fee x (true - counterfactual price); floored", UNIT_BASE),
        col("fee_oracle_loss_eth_wei", _DEC, "The same in ETH; floored", UNIT_WEI),
        col("bonus_loss_base", _DEC, "The bonus as the protocol valued it; floored", UNIT_BASE),
        col("bonus_loss_eth_wei", _DEC, "The same in ETH; floored", UNIT_WEI),
        col("borrower_loss_base", _DEC, "All the borrower lost at true prices; floored", UNIT_BASE),
        col("borrower_loss_eth_wei", _DEC, "The same in ETH; floored", UNIT_WEI),
    ],
    KIND_OUTPUT,
)

register_table(
    "stress_results",
    "One row per borrower of a stress run (`postmortem stress`): the position at one block valued under shocked "
    "prices, whether it becomes liquidatable, what one liquidationCall could take (close factor applied once) and "
    "the bad debt. Exact integers.",
    [
        col("market", pa.string(), "Market name"), col("pool", pa.string(), "Pool address"),
        col("user", pa.string(), "Borrower"),
        col("block_number", pa.int64(), "The state is the one at the end of this block", UNIT_BLOCK),
        col("timestamp", pa.int64(), "Its timestamp", UNIT_SECONDS),
        col("shocks", pa.string(), "The shocks, e.g. 'wstETH=-30%'"),
        col("oracle_delay", pa.int32(), "Blocks before the oracle reports the shock"),
        col("emode_category", pa.int32(), "The borrower's eMode category (0 = none)"),
        col("hf_before", _DEC, "Health factor before the shock; NULL above 1e20", UNIT_WAD),
        col("hf_shocked", _DEC, "Health factor under the shocked prices; NULL above 1e20", UNIT_WAD),
        col("collateral_base_shocked", _DEC, "totalCollateralBase under the shocked prices", UNIT_BASE),
        col("debt_base_shocked", _DEC, "totalDebtBase under the shocked prices", UNIT_BASE),
        col("liquidatable_before", pa.bool_(), "hf_before < 1"),
        col("liquidatable_now", pa.bool_(), "Liquidatable at the block at the prices the protocol sees (the old ones "
            "while the oracle is delayed)"),
        col("liquidatable", pa.bool_(), "hf_shocked < 1: liquidatable once the oracle reports the shock"),
        col("liquidated_in_window", pa.bool_(), "The borrower was liquidated in the incident's window"),
        col("collateral_asset", pa.string(), "Collateral one liquidationCall would take (the largest)"),
        col("collateral_symbol", pa.string(), "Its symbol"),
        col("debt_asset", pa.string(), "Debt it would repay (the largest)"), col("debt_symbol", pa.string(), "Its symbol"),
        col("debt_to_cover", _DEC, "Most debt one liquidationCall could repay (close factor applied once)", UNIT_WEI),
        col("collateral_seized", _DEC, "Collateral it would take, protocol fee included", UNIT_WEI),
        col("collateral_seized_base", _DEC, "Its value at the shocked price; floored", UNIT_BASE),
        col("debt_repaid_base", _DEC, "The debt repaid at the shocked price; floored", UNIT_BASE),
        col("bad_debt_base", _DEC, "max(0, debt_base_shocked - collateral_base_shocked)", UNIT_BASE),
    ],
    KIND_OUTPUT,
)

# -- the Compound v2 lineage adapter's tables (ingest: chunked; replay: outputs) ----------------------------

UNIT_MANTISSA = "mantissa (integer; 1e18 = 1.0)"
UNIT_CTOKEN = "cToken base units (integer; 8 decimals for Compound's cTokens)"
UNIT_ORACLE = "oracle price (integer; USD x 1e(36 - underlying decimals) per underlying base unit)"
UNIT_USD18 = "USD x 1e18 (integer), as the Comptroller sums values"
UNIT_EXCHANGE = "exchange rate mantissa (integer; underlying base units per cToken base unit x 1e18)"


def register_compound_tables() -> None:
    """Document the Compound v2 lineage's tables (``postmortem schema`` lists them)."""
    dec = pa.decimal128(38, 0)
    logs = _REGISTRY.get("logs")
    register_table("compound_logs", "Raw logs of a Compound v2 lineage window (Comptroller, every market, the "
                   "oracle), as eth_getLogs returned them; the chunk's marker file.", logs.columns if logs else ())
    register_table("compound_markets", "Each market of a Comptroller at the block before the window: factors, "
                   "state and the Comptroller's parameters (getAllMarkets, markets(), the cToken's getters).", [
        col("block_number", pa.int64(), "The block read (from_block - 1)", UNIT_BLOCK),
        col("comptroller", pa.string(), "Comptroller (Unitroller) address"),
        col("market", pa.string(), "The cToken / vToken / mToken address"),
        col("symbol", pa.string(), "The incident's name for the market (its [markets] key), else the cToken's symbol"),
        col("ctoken_symbol", pa.string(), "cToken.symbol()"),
        col("vtoken_decimals", pa.int32(), "cToken decimals"),
        col("underlying", pa.string(), "Underlying token (0x0 for a native-currency market such as cETH)"),
        col("decimals", pa.int32(), "Underlying decimals"),
        col("is_listed", pa.bool_(), "markets(cToken).isListed"),
        col("collateral_factor", dec, "markets(cToken).collateralFactorMantissa", UNIT_MANTISSA),
        col("liquidation_threshold", dec, "Venus isolated pools' liquidationThresholdMantissa (NULL elsewhere)",
            UNIT_MANTISSA),
        col("exchange_rate_stored", dec, "exchangeRateStored()", UNIT_EXCHANGE),
        col("cash", dec, "getCash()", UNIT_WEI), col("total_borrows", dec, "totalBorrows()", UNIT_WEI),
        col("total_reserves", dec, "totalReserves()", UNIT_WEI), col("total_supply", dec, "totalSupply()", UNIT_CTOKEN),
        col("borrow_index", dec, "borrowIndex()", UNIT_MANTISSA),
        col("reserve_factor", dec, "reserveFactorMantissa()", UNIT_MANTISSA),
        col("protocol_seize_share", dec, "protocolSeizeShareMantissa() (0 where absent)", UNIT_MANTISSA),
        col("bad_debt", dec, "Venus isolated pools' badDebt() (0 elsewhere)", UNIT_WEI),
        col("accrual_block_number", pa.int64(), "accrualBlockNumber()", UNIT_BLOCK),
        col("price", dec, "oracle.getUnderlyingPrice(cToken)", UNIT_ORACLE),
        col("close_factor", dec, "Comptroller closeFactorMantissa()", UNIT_MANTISSA),
        col("liquidation_incentive", dec, "Comptroller liquidationIncentiveMantissa() (1.08e18 = 8% bonus)",
            UNIT_MANTISSA),
        col("oracle", pa.string(), "Comptroller oracle()"),
        col("min_liquidatable_collateral", dec, "Venus isolated pools' minLiquidatableCollateral (0 elsewhere)",
            UNIT_USD18),
    ])
    amount_docs = {
        "amount": ("The event's underlying amount: mint, redeem, borrow, repay, reserves added/reduced, bad "
                   "debt delta; for ProtocolSeize the underlying sent", UNIT_WEI),
        "tokens": ("cToken amount: minted, redeemed, transferred, or seized in a liquidation", UNIT_CTOKEN),
        "account_tokens": ("Venus Mint/Redeem: the account's cToken balance after", UNIT_CTOKEN),
        "account_borrows": ("Borrow/RepayBorrow: the account's borrow balance after (its new principal)", UNIT_WEI),
        "total_borrows": ("Borrow/RepayBorrow/AccrueInterest: the market's totalBorrows after", UNIT_WEI),
        "borrow_index": ("AccrueInterest: the market's new borrowIndex", UNIT_MANTISSA),
        "cash_prior": ("AccrueInterest: the market's cash before the operation", UNIT_WEI),
        "interest_accumulated": ("AccrueInterest: interest added to totalBorrows", UNIT_WEI),
        "new_total_reserves": ("ReservesAdded/ReservesReduced: totalReserves after", UNIT_WEI),
        "old_value": ("New* events: the old mantissa; BadDebtIncreased: bad debt before", UNIT_MANTISSA),
        "new_value": ("New* events: the new mantissa; BadDebtIncreased: bad debt after", UNIT_MANTISSA),
    }
    register_table("compound_events", "Every Compound v2 lineage cToken and Comptroller event of the window, "
                   "decoded, one row per log in chain order (catalogue: postmortem.ingest.compound_events).", [
        col("block_number", pa.int64(), "Block holding the log", UNIT_BLOCK),
        col("timestamp", pa.int64(), "That block's timestamp", UNIT_SECONDS),
        col("transaction_hash", pa.string(), "Transaction that emitted the log"),
        col("transaction_index", pa.int32(), "Position of the transaction in its block"),
        col("log_index", pa.int32(), "Position of the log in its block"),
        col("address", pa.string(), "Contract that emitted the log"),
        col("event", pa.string(), "Event name: Mint, Redeem, Borrow, RepayBorrow, LiquidateBorrow, Transfer, "
            "AccrueInterest, ReservesAdded, ReservesReduced, MarketEntered, MarketExited, NewCollateralFactor, ..."),
        col("account", pa.string(), "The account whose position the event changes (minter, redeemer, borrower, "
            "transfer sender, account entering or leaving a market)"),
        col("counterparty", pa.string(), "The other side: liquidator, payer, transfer receiver"),
        col("market", pa.string(), "The cToken concerned (the emitter for cToken events)"),
        col("collateral_market", pa.string(), "LiquidateBorrow: the cToken seized"),
        col("old_oracle", pa.string(), "NewPriceOracle: the old oracle"),
        col("new_oracle", pa.string(), "NewPriceOracle: the new oracle"),
        *[col(k, dec, d, u) for k, (d, u) in amount_docs.items()],
    ])
    register_table("compound_positions_at_start", "Each in-scope account's position per market at the block "
                   "before the window (getAccountSnapshot, getAssetsIn).", [
        col("account", pa.string(), "Account"), col("market", pa.string(), "cToken"),
        col("block_number", pa.int64(), "The block read (from_block - 1)", UNIT_BLOCK),
        col("ctoken_balance", dec, "cToken balance", UNIT_CTOKEN),
        col("borrow_balance", dec, "borrowBalanceStored", UNIT_WEI),
        col("entered", pa.bool_(), "The market is in getAssetsIn(account) (counts in the account's liquidity)"),
        col("borrow_principal", dec, "The stored borrow principal (the last accountBorrows logged since "
            "users_since), when it reproduces borrow_balance; NULL when not known", UNIT_WEI),
        col("borrow_interest_index", dec, "The borrow index stored with it; NULL when not known", UNIT_MANTISSA),
    ])
    register_table("compound_market_reads", "Each market's oracle price and state at the end of every block with "
                   "an event, of its parent block, and of the window's ends.", [
        col("block_number", pa.int64(), "The block read (its end state)", UNIT_BLOCK),
        col("market", pa.string(), "cToken"), col("oracle", pa.string(), "Comptroller oracle() at that block"),
        col("price", dec, "oracle.getUnderlyingPrice(cToken)", UNIT_ORACLE),
        col("exchange_rate_stored", dec, "exchangeRateStored()", UNIT_EXCHANGE),
        col("cash", dec, "getCash()", UNIT_WEI), col("total_borrows", dec, "totalBorrows()", UNIT_WEI),
        col("total_reserves", dec, "totalReserves()", UNIT_WEI), col("total_supply", dec, "totalSupply()", UNIT_CTOKEN),
        col("borrow_index", dec, "borrowIndex()", UNIT_MANTISSA),
        col("bad_debt", dec, "Venus isolated pools' badDebt() (0 elsewhere)", UNIT_WEI),
    ])
    _judged = [
        col("block_number", pa.int64(), "Block of the event", UNIT_BLOCK),
        col("transaction_index", pa.int32(), "Its transaction's position in the block"),
        col("log_index", pa.int32(), "Its log index"), col("transaction_hash", pa.string(), "Its transaction"),
        col("timestamp", pa.int64(), "Block timestamp", UNIT_SECONDS),
        col("user", pa.string(), "Borrower"),
    ]
    _liq = [
        col("liquidity_reported", dec, "Account liquidity just before, under the reported prices", UNIT_USD18),
        col("shortfall_reported", dec, "Account shortfall just before, under the reported prices", UNIT_USD18),
        col("liquidity_true", dec, "Account liquidity just before, under the true prices", UNIT_USD18),
        col("shortfall_true", dec, "Account shortfall just before, under the true prices", UNIT_USD18),
    ]
    register_table("compound_verdicts", "One row per LiquidateBorrow of a Compound v2 lineage replay: the "
                   "Comptroller's own rules at the reported and at the true prices, and what the borrower lost.", [
        *_judged, col("liquidator", pa.string(), "Liquidator"),
        col("debt_market", pa.string(), "cToken repaid"), col("debt_symbol", pa.string(), "Its symbol"),
        col("collateral_market", pa.string(), "cToken seized"), col("collateral_symbol", pa.string(), "Its symbol"),
        col("repay_amount", dec, "LiquidateBorrow.repayAmount", UNIT_WEI),
        col("seize_tokens", dec, "LiquidateBorrow.seizeTokens (the protocol's share included)", UNIT_CTOKEN),
        col("seize_tokens_replayed", dec, "liquidateCalculateSeizeTokens at the reported prices", UNIT_CTOKEN),
        col("protocol_seize_tokens", dec, "Of seize_tokens, the protocol's share", UNIT_CTOKEN),
        col("collateral_seized", dec, "seize_tokens x the collateral's exchange rate: underlying taken", UNIT_WEI),
        col("borrow_balance", dec, "The borrower's balance of the repaid market just before", UNIT_WEI),
        col("max_close", dec, "closeFactor x borrow_balance: the most one liquidation may repay", UNIT_WEI),
        *_liq,
        col("reason_reported", pa.string(), "liquidateBorrowAllowed at the reported prices: ok, "
            "insufficient_shortfall, too_much_repay, min_collateral, price_error"),
        col("reason_true", pa.string(), "The same at the true prices"),
        col("verdict", pa.string(), "'wrongly_eligible' (allowed only at the reported prices), 'eligible_anyway', "
            "or 'anomaly' (not allowed by the replay at the reported prices)"),
        col("debt_price_reported", dec, "Reported price of the debt", UNIT_ORACLE),
        col("debt_price_true", dec, "True price of the debt", UNIT_ORACLE),
        col("collateral_price_reported", dec, "Reported price of the collateral", UNIT_ORACLE),
        col("collateral_price_true", dec, "True price of the collateral", UNIT_ORACLE),
        col("liquidation_incentive", dec, "Comptroller liquidationIncentiveMantissa", UNIT_MANTISSA),
        col("repaid_usd_true", dec, "repay_amount x true debt price", UNIT_USD18),
        col("seized_usd_true", dec, "collateral_seized x true collateral price", UNIT_USD18),
        col("seized_usd_reported", dec, "collateral_seized x reported collateral price", UNIT_USD18),
        col("oracle_loss_usd", dec, "seized_usd_true - repaid_usd_true x incentive: collateral handed over beyond "
            "what the same repayment seizes at the true prices", UNIT_USD18),
        col("bonus_loss_usd", dec, "repaid_usd_true x (incentive - 1): the liquidation incentive at the true prices",
            UNIT_USD18),
        col("replay_matches_log", pa.bool_(), "liquidateCalculateSeizeTokens at the reported prices gives the "
            "logged seizeTokens"),
    ], KIND_OUTPUT)
    register_table("compound_borrow_verdicts", "One row per Borrow of a Compound v2 lineage replay: borrowAllowed's "
                   "liquidity check at the reported and at the true prices.", [
        *_judged, col("market", pa.string(), "cToken borrowed"), col("symbol", pa.string(), "Its symbol"),
        col("amount", dec, "Borrow.borrowAmount", UNIT_WEI),
        col("price_reported", dec, "Reported price of the borrowed asset", UNIT_ORACLE),
        col("price_true", dec, "True price of the borrowed asset", UNIT_ORACLE),
        *_liq,
        col("verdict", pa.string(), "'wrongly_allowed' (a shortfall after the borrow at the true prices only), "
            "'allowed', or 'anomaly' (refused by the replay at the reported prices)"),
        col("borrowed_usd_true", dec, "amount x true price", UNIT_USD18),
        col("insolvent_at_end", pa.bool_(), "At the window's end the account's collateral at the true prices is "
            "worth less than its debt (bad debt)"),
    ], KIND_OUTPUT)
    register_table("compound_bad_debt", "Bad debt per market at the end of a Compound v2 lineage replay: for every "
                   "account whose collateral at the true prices is worth less than its debt, the uncovered part, "
                   "shared across its debts in proportion to their value.", [
        col("market", pa.string(), "cToken"), col("symbol", pa.string(), "Its symbol"),
        col("accounts", pa.int32(), "Insolvent accounts borrowing it"),
        col("borrows", dec, "Their borrow balances of this market", UNIT_WEI),
        col("bad_debt", dec, "The uncovered part, in the market's underlying", UNIT_WEI),
        col("bad_debt_usd", dec, "The same at the true price", UNIT_USD18),
        col("price_true", dec, "True price at the end", UNIT_ORACLE),
    ], KIND_OUTPUT)
    register_table("compound_borrowers", "Per borrower of a Compound v2 lineage replay: liquidations suffered, "
                   "wrongly allowed borrows taken, and the bases of every payout policy.", [
        col("user", pa.string(), "Borrower"),
        col("role", pa.string(), "'victim' (liquidated), 'wrongly_allowed_borrower' (took debt the true prices "
            "would refuse), or 'both'"),
        col("liquidations", pa.int32(), "LiquidateBorrow logs"),
        col("wrongly_eligible_liquidations", pa.int32(), "Of which wrongly eligible"),
        col("wrongly_allowed_borrows", pa.int32(), "Borrows allowed only at the reported prices"),
        col("repaid_usd_true", dec, "Sum of repaid_usd_true", UNIT_USD18),
        col("seized_usd_true", dec, "Sum of seized_usd_true", UNIT_USD18),
        col("oracle_loss_usd", dec, "Sum of oracle_loss_usd", UNIT_USD18),
        col("bonus_loss_wrongly_eligible_usd", dec, "Sum of bonus_loss_usd over the wrongly eligible ones", UNIT_USD18),
        col("wrongly_allowed_usd_true", dec, "Sum of borrowed_usd_true of the wrongly allowed borrows", UNIT_USD18),
        col("insolvent_at_end", pa.bool_(), "Collateral worth less than debt at the true prices at the end"),
    ], KIND_OUTPUT)


register_compound_tables()
