"""The report model: every figure of a post-mortem, built from SQL over the warehouse.

``build_model(warehouse_root, incident_id)`` reads the replay's output tables of one run
(``verdicts`` first; ``price_path``, ``liquidator_gains``, ``at_risk``, ``borrower_losses`` when
present) and the ingest tables used for decimals, checks and provenance (``reserves``,
``markets``, ``liquidations``, the manifest and run records), and returns a ``ReportModel``.
Renderers (``render_md``, ``render_html``, ``render_json``, ``render_csv``) only format it.

Every figure is a :class:`Figure` holding the exact SQL that produced it, with the incident,
run and chain written into it as literals, so the same text run through ``postmortem sql``
returns the same rows. Amounts stay Python ints in their raw unit (token base units, wei, base
currency units of 1e8 per USD, wads) until a renderer displays them.

Column names are resolved through :data:`COLUMNS` (logical name -> accepted physical names,
first present wins); when a table changes its names, that map is the one place to change.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from postmortem import __version__
from postmortem.errors import PostmortemError
from postmortem.redact import redact_url
from postmortem.warehouse import CATALOG_NAME, FileRecord, Warehouse
from postmortem.reports import policy as pol
from postmortem.reports.fmt import exact_units
from postmortem.reports.policy import Comparison, PaidList, Policy

VERDICT_WRONG = "wrongly_eligible"
VERDICT_ANYWAY = "eligible_anyway"
VERDICT_ANOMALY = "anomaly"
VERDICTS = (VERDICT_WRONG, VERDICT_ANYWAY, VERDICT_ANOMALY)

GROUP_HEADLINE = "headline"
GROUP_FIGURES = "figures"

# --- the column map: the one place that knows the physical column names ----------------------------

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "verdicts": {
        "transaction_hash": ("transaction_hash", "tx_hash"),
        "block_number": ("block_number",),
        "transaction_index": ("transaction_index", "tx_index"),
        "log_index": ("log_index",),
        "timestamp": ("timestamp", "block_timestamp"),
        "market": ("market", "market_name"),
        "pool": ("pool", "pool_address"),
        "user": ("user", "borrower"),
        "liquidator": ("liquidator",),
        "collateral_asset": ("collateral_asset",),
        "debt_asset": ("debt_asset",),
        "collateral_symbol": ("collateral_symbol",),
        "debt_symbol": ("debt_symbol",),
        "collateral_decimals": ("collateral_decimals",),  # else from reserves
        "debt_decimals": ("debt_decimals",),  # else from reserves
        "debt_to_cover": ("debt_to_cover",),
        "liquidated_collateral_amount": ("liquidated_collateral_amount",),
        "protocol_fee_amount": ("protocol_fee_amount", "protocol_fee"),
        "collateral_seized": ("collateral_seized", "collateral_seized_total"),
        "receive_a_token": ("receive_a_token",),
        "hf_reported": ("hf_reported", "health_factor_reported", "hf_reported_wad"),
        "hf_true": ("hf_true", "health_factor_true", "hf_true_wad"),
        "verdict": ("verdict",),
        "replay_matches_log": ("replay_matches_log",),
        "max_liquidatable_debt_reported": ("max_liquidatable_debt_reported",),
        "max_liquidatable_debt_true": ("max_liquidatable_debt_true",),
        "over_liquidated_debt": ("over_liquidated_debt",),
        "collateral_price_reported": ("collateral_price_reported", "reported_collateral_price"),
        "collateral_price_true": ("collateral_price_true", "true_collateral_price"),
        "debt_price_reported": ("debt_price_reported", "debt_price"),
        "debt_price_true": ("debt_price_true", "debt_price"),
        "eth_price": ("eth_price_true", "eth_price", "eth_price_base"),
        "oracle_loss_eth": ("oracle_loss_eth_wei", "oracle_loss_eth", "oracle_loss_wei"),
        "oracle_loss_usd": ("oracle_loss_base", "oracle_loss_usd"),
        "bonus_loss_eth": ("bonus_loss_eth_wei", "bonus_loss_eth", "bonus_loss_wei"),
        "bonus_loss_usd": ("bonus_loss_base", "bonus_loss_usd"),
        "fee_oracle_loss_eth": ("fee_oracle_loss_eth_wei", "fee_oracle_loss_eth", "fee_oracle_loss_wei"),
        "fee_oracle_loss_usd": ("fee_oracle_loss_base", "fee_oracle_loss_usd"),
        "borrower_loss_eth": ("borrower_loss_eth_wei", "borrower_loss_eth"),
        "borrower_loss_usd": ("borrower_loss_base", "borrower_loss_usd"),
    },
    "price_path": {
        "asset": ("asset",),
        "pool": ("pool",),
        "symbol": ("symbol",),
        "block_number": ("block_number",),
        "timestamp": ("timestamp", "block_timestamp"),
        "reported_price": ("reported_price", "price_reported"),
        "true_price": ("true_price", "price_true"),
    },
    "liquidator_gains": {
        "liquidator": ("liquidator",),
        "gain_eth": ("gain_eth_wei", "gain_eth", "gain_wei"),
        "gain_usd": ("gain_base", "gain_usd"),
    },
    "borrower_losses": {
        "user": ("user", "borrower"),
        "reimbursable_eth": ("reimbursable_eth_wei", "reimbursable_eth", "total_eth"),
    },
    "at_risk": {
        "user": ("user", "borrower"),
        "market": ("market", "market_name"),
        "first_block": ("first_block",),
        "last_block": ("last_block",),
        "seconds_exposed": ("seconds_wrongly_eligible", "seconds_exposed"),
        "min_hf": ("min_hf_reported", "min_hf"),
        "hf_true_at_min": ("hf_true_at_min",),
        "debt_usd": ("max_debt_base_reported", "debt_exposed_base", "debt_exposed_usd"),
        "exposed_loss_eth": ("exposed_loss_eth_wei", "exposed_loss_eth"),
    },
    "liquidations": {  # ingest: decoded LiquidationCall logs
        "block_number": ("block_number",),
        "transaction_hash": ("transaction_hash",),
        "log_index": ("log_index",),
        "address": ("pool", "address"),  # the catalog calls a Pool event's emitter `pool`
    },
    "reserves": {  # ingest: token decimals
        "asset": ("asset",),
        "decimals": ("decimals",),
    },
    "markets": {  # ingest: the math revision of each pool
        "market": ("market", "name"),
        "pool": ("pool",),
        "revision": ("aave_revision", "revision", "pool_revision"),
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "verdicts": ("transaction_hash", "block_number", "transaction_index", "log_index", "market", "pool", "user",
                 "liquidator", "collateral_asset", "debt_asset", "debt_to_cover", "liquidated_collateral_amount",
                 "hf_reported", "hf_true", "verdict", "oracle_loss_eth", "bonus_loss_eth"),
    "price_path": ("asset", "block_number", "reported_price", "true_price"),
    "liquidator_gains": ("liquidator", "gain_eth"),
    "borrower_losses": ("user", "reimbursable_eth"),
    "at_risk": ("user", "market"),
    "liquidations": ("block_number", "transaction_hash", "log_index", "address"),
    "reserves": ("asset", "decimals"),
    "markets": ("revision",),
}

# Table names as prose says them (notes are prose; table names belong in the SQL blocks).
_PLAIN = {"price_path": "price path", "liquidator_gains": "liquidator gains", "at_risk": "list of positions at risk",
          "borrower_losses": "per-borrower losses", "verdicts": "verdicts", "markets": "market list",
          "reserves": "reserve list", "liquidations": "decoded liquidations"}

_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
# Names that read better quoted (SQL keywords or DuckDB functions); quoting is always safe.
_QUOTE_ALWAYS = frozenset({"user", "timestamp", "order", "group", "from", "to", "select", "where", "table",
                           "default", "end", "index", "position"})


def ident(name: str) -> str:
    """A column name as SQL: bare when plain, double-quoted otherwise."""
    if _SIMPLE_IDENT.match(name) and name not in _QUOTE_ALWAYS:
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class Columns:
    """Logical -> physical column names of one table, resolved against the catalog."""

    def __init__(self, table: str, actual: list[str]):
        self.table = table
        present = set(actual)
        self.physical: dict[str, str] = {}
        for logical, candidates in COLUMNS.get(table, {}).items():
            found = next((c for c in candidates if c in present), None)
            if found is not None:
                self.physical[logical] = found
        self.missing = [c for c in REQUIRED.get(table, ()) if c not in self.physical]

    def has(self, *logical: str) -> bool:
        return all(x in self.physical for x in logical)

    def __call__(self, logical: str, alias: str | None = None) -> str:
        """The physical column as SQL, optionally qualified with a table alias."""
        try:
            name = ident(self.physical[logical])
        except KeyError:
            raise PostmortemError(
                f"the {self.table} table has no column for {logical} (looked for "
                f"{', '.join(COLUMNS[self.table][logical])}); update COLUMNS in reports/model.py"
            ) from None
        return f"{alias}.{name}" if alias else name

    def sel(self, logical: str, alias: str | None = None, default: str | None = None) -> str:
        """``physical AS logical`` for a SELECT list (just the name when they agree).

        With ``default`` (SQL text) a missing optional column is selected as that value.
        """
        if logical not in self.physical:
            if default is None:
                return self(logical)  # raises the one-sentence error
            return f"{default} AS {ident(logical)}"
        expr = self(logical, alias)
        return expr if self.physical[logical] == logical else f"{expr} AS {ident(logical)}"

    def sum0(self, logical: str, alias: str | None = None, where: str | None = None) -> str:
        """``coalesce(sum(col) [FILTER (WHERE ...)], 0)``, or ``NULL`` when the column is absent."""
        if logical not in self.physical:
            return "NULL"
        f = f" FILTER (WHERE {where})" if where else ""
        return f"coalesce(sum({self(logical, alias)}){f}, 0)"


def _q(text: str) -> str:
    """SQL text as stored and shown: the template's indentation removed, no blank edges or trailing spaces.

    The indentation of the first line is taken off every line that has it, so text interpolated
    without indentation (a join built elsewhere) does not stop the rest from being dedented.
    """
    lines = text.rstrip().lstrip("\n").splitlines()
    first = next((line for line in lines if line.strip()), "")
    n = len(first) - len(first.lstrip(" "))
    return "\n".join((line[n:] if line[:n].strip() == "" else line).rstrip() for line in lines)


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One figure of the report with the SQL that reproduces it.

    ``shape`` says how ``rows`` (the SQL result, exact) becomes ``value``: ``scalar`` (first
    column of the only row), ``row`` (the only row as a dict) or ``rows`` (every row).
    ``unit`` names the raw unit of the main amount: count, wei, base, token, block.
    """

    key: str
    label: str
    group: str
    shape: str
    unit: str
    sql: str
    rows: list[dict]
    note: str = ""

    @property
    def value(self) -> Any:
        if self.shape == "rows":
            return self.rows
        if not self.rows:
            return None
        if self.shape == "row":
            return self.rows[0]
        return next(iter(self.rows[0].values()))


@dataclass(frozen=True)
class Table:
    """Rows for a table of the report, with their SQL. ``rows`` use logical column names."""

    key: str
    title: str
    sql: str
    rows: list[dict]
    note: str = ""


@dataclass(frozen=True)
class Check:
    """A consistency check the report ran; ``ok`` is None when it could not run."""

    key: str
    title: str
    ok: bool | None
    detail: str
    sql: str = ""


@dataclass
class Reimbursement:
    """The per-borrower reimbursement list under a policy (amounts in wei)."""

    policy: Policy
    rows: list[dict]  # user, markets, liquidations, wrongly_eligible, oracle_loss_wei (the oracle part, fee part
    #                   included), fee_oracle_loss_wei (of which on the protocol fee), bonus_loss_wei, goodwill_wei,
    #                   total_wei = oracle_loss_wei + bonus_loss_wei + goodwill_wei, chain_owed_wei
    inputs: Table  # one row per liquidation in scope
    chain_sql: str  # the list at the chain's prices, directly in SQL (goodwill included)
    rules: list[str]  # the formulas in words

    @property
    def total_wei(self) -> int:
        return sum(r["total_wei"] for r in self.rows)

    def totals(self) -> dict:
        keys = ("liquidations", "oracle_loss_wei", "fee_oracle_loss_wei", "bonus_loss_wei", "goodwill_wei", "total_wei")
        return {"borrowers": len(self.rows), **{k: sum(r[k] for r in self.rows) for k in keys}}

    def owed(self) -> dict[str, int]:
        return {r["user"]: r["total_wei"] for r in self.rows}


@dataclass
class Provenance:
    report_tool_version: str
    replay: dict  # run_id, tool_version, verdicts file and hash, parameters as recorded
    block_range: dict  # first_block, last_block, source
    rpc_endpoints: list[str]  # redacted
    outputs: Table  # the replay run's output files with hashes
    inputs: Table  # input chunk files overlapping the block range, with hashes
    input_digests: Table  # per dataset: chunks, rows, range, digest over (path, sha256)
    runs: Table  # ingest/replay run records of this incident


@dataclass
class ReportModel:
    incident_id: str
    title: str | None  # from the incident catalog, when it has the incident
    chain_id: int
    run_id: str
    figures: dict[str, Figure]
    liquidations: Table
    liquidators: Table
    at_risk: Table
    price_path: Table
    reimbursement: Reimbursement
    comparison: Comparison | None
    checks: list[Check]
    provenance: Provenance
    methodology: dict
    mispriced: dict | None  # asset, symbol, decimals, pool
    eth_asset: str | None
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str) -> Figure | None:
        return self.figures.get(key)

    def value(self, key: str, default: Any = None) -> Any:
        f = self.figures.get(key)
        return default if f is None or f.value is None else f.value

    def quantities(self) -> dict[str, int | None]:
        """Every named quantity of the glossary that is one number, by its report.json key (exact ints).

        The headline, the figure cards, the tables, report.json and reimbursements.csv all take their
        numbers from here or from the rows these sum, so one concept has one number.
        """
        ol = self.value("oracle_loss") or {}
        bl = self.value("bonus_loss") or {}
        lg = self.value("liquidator_gains") or {}
        ep = self.value("eth_price") or {}
        t = self.reimbursement.totals()
        price = ep.get("eth_price")
        return {
            "oracle_loss_wei": ol.get("eth_wei"),
            "oracle_loss_fee_part_wei": ol.get("fee_part_eth_wei"),
            "bonus_loss_wei": bl.get("eth_wei"),
            "owed_wei": t["total_wei"],
            "owed_oracle_part_wei": t["oracle_loss_wei"],
            "owed_oracle_fee_part_wei": t["fee_oracle_loss_wei"],
            "owed_bonus_part_wei": t["bonus_loss_wei"],
            "owed_goodwill_wei": t["goodwill_wei"],
            "owed_borrowers": t["borrowers"],
            "eth_price_base": price,
            "eth_price_block": ep.get("block_number"),
            "owed_usd_base": None if not price else t["total_wei"] * int(price) // 10**18,
            "liquidator_gain_wei": lg.get("eth_wei"),
        }

    @property
    def wrongly_eligible(self) -> list[dict]:
        return [r for r in self.liquidations.rows if r["verdict"] == VERDICT_WRONG]

    def symbol(self, asset: str | None) -> str:
        if self.mispriced and asset == self.mispriced["asset"] and self.mispriced.get("symbol"):
            return self.mispriced["symbol"]
        for r in self.liquidations.rows:
            if r.get("collateral_asset") == asset and r.get("collateral_symbol"):
                return r["collateral_symbol"]
            if r.get("debt_asset") == asset and r.get("debt_symbol"):
                return r["debt_symbol"]
        return asset or "?"

    def divergence_ppm(self) -> int | None:
        """Reported vs true collateral price at the first wrongly eligible liquidation, in ppm.

        ``(reported - true) / true``, rounded half away from zero; negative = priced low.
        """
        row = self.value("price_at_first_wrong_liquidation")
        if not row or not row.get("collateral_price_true"):
            return None
        return ppm(row["collateral_price_reported"], row["collateral_price_true"])


def ppm(reported: int, true: int) -> int:
    """``(reported - true) / true`` in parts per million, rounded half away from zero."""
    q = Fraction((int(reported) - int(true)) * 1_000_000, int(true))
    sign = -1 if q < 0 else 1
    q = abs(q)
    return sign * int((2 * q.numerator + q.denominator) // (2 * q.denominator))


def _canon(value: Any) -> Any:
    """A fetched value in the model's exact form: integral decimals become ints."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


# --- building ------------------------------------------------------------------------------------


def build_model(warehouse_root: Path | str, incident_id: str, *, run_id: str | None = None,
                policy: Policy | None = None, compare_paid: PaidList | Path | str | None = None,
                tolerance_wei: int = 0) -> ReportModel:
    """Read the warehouse and build the report model of ``incident_id``.

    ``run_id`` picks a replay run (default: the most recently written ``verdicts`` of the
    incident). ``policy`` values the reimbursements (default: the chain's prices, the replay's
    reimbursable rule). ``compare_paid`` is a paid list (``PaidList`` or the path of a
    ``user,amount_eth`` CSV) compared line by line.
    """
    policy = policy or Policy()
    if compare_paid is not None and not isinstance(compare_paid, PaidList):
        compare_paid = pol.read_paid_csv(compare_paid)
    builder = _Builder(Path(warehouse_root), incident_id, run_id)
    try:
        return builder.build(policy, compare_paid, tolerance_wei)
    finally:
        builder.close()


def _incident_title(incident_id: str) -> str | None:
    """The title in the incident catalog (data/incidents/ID.toml), if the catalog has the incident."""
    from postmortem.incidents import incident_file

    try:
        title = incident_file(incident_id)[0].get("title")
    except PostmortemError:
        return None
    return title if isinstance(title, str) and title.strip() else None


class _Builder:
    def __init__(self, root: Path, incident_id: str, run_id: str | None):
        self.root = root.expanduser()
        self.incident_id = incident_id
        self.notes: list[str] = []
        if not self.root.is_dir():
            raise PostmortemError(f"no warehouse at {self.root}; run `postmortem ingest` and `postmortem replay` "
                                  "first or pass --warehouse with the right folder")
        self.wh = Warehouse(self.root)
        self.record = self._pick_run(run_id)
        self.run_id = self.record.run_id
        self.chain_id = self.record.chain_id
        meta = self.record.meta if isinstance(self.record.meta, dict) else {}
        self.recorded_inputs = meta.get("inputs") or meta.get("input_hashes") or {}
        params = meta.get("parameters")
        self.recorded_params = params if isinstance(params, dict) else {
            k: v for k, v in meta.items() if k not in ("inputs", "input_hashes", "tool_version")}
        self.con = self._connect()
        self._read_older_run()
        self.tables = self._tables()
        self.cols: dict[str, Columns] = {}
        written = {r.dataset for r in self.wh.records()
                   if r.chain_id == self.chain_id and (r.kind == "chunk" or r.run_id == self.run_id)}
        for name in COLUMNS:
            # A documented table has an (empty) view even when nothing wrote it; only use what was written.
            if name not in self.tables or name not in written:
                if name in ("price_path", "liquidator_gains", "at_risk", "borrower_losses"):
                    self.notes.append(f"the replay wrote no {_PLAIN.get(name, name.replace('_', ' '))}")
                continue
            c = Columns(name, self._columns_of(name))
            if name == "verdicts" and c.missing:
                raise PostmortemError(f"the verdicts table lacks {', '.join(c.missing)}; the replay output changed, "
                                      "so update COLUMNS in reports/model.py")
            if c.missing:
                self.notes.append(f"the {_PLAIN.get(name, name.replace('_', ' '))} in the warehouse lack "
                                  f"{', '.join(x.replace('_', ' ') for x in c.missing)} and were not used")
                continue
            self.cols[name] = c
        self.v = self.cols["verdicts"]

    # ---- connection and run selection

    def _pick_run(self, run_id: str | None) -> FileRecord:
        outputs = [r for r in self.wh.records() if r.kind == "output" and r.dataset == "verdicts"]
        recs = [r for r in outputs if r.incident_id == self.incident_id and (self.root / r.path).exists()]
        if not recs:
            known = sorted({r.incident_id for r in outputs})
            hint = f" (it has verdicts for {', '.join(known)})" if known else ""
            raise PostmortemError(
                f"the warehouse {self.root} has no verdicts for incident {self.incident_id}{hint}; "
                f"run `postmortem replay --incident {self.incident_id}` first"
            )
        if run_id is not None:
            chosen = [r for r in recs if r.run_id == run_id]
            if not chosen:
                raise PostmortemError(f"incident {self.incident_id} has no replay run {run_id}; its runs are "
                                      f"{', '.join(sorted(r.run_id for r in recs))}")
            rec = chosen[0]
        else:
            rec = max(recs, key=lambda r: (r.written_at, r.run_id))
        # A run with an output missing (removed by repair, deleted) is never published.
        return self.wh.check_run_complete(rec.chain_id, "verdicts", rec.incident_id, rec.run_id)

    def _connect(self):
        from postmortem.sql import connect_read_only

        stale = not (self.root / CATALOG_NAME).exists()
        con = None
        if not stale:
            try:
                con = connect_read_only(self.root)
            except PostmortemError:
                stale = True  # built for another folder (the warehouse moved) or damaged: rebuild it
            else:
                known = con.execute("SELECT count(*) FROM warehouse_files WHERE path = ?", [self.record.path]).fetchone()[0]
                runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
                stale = not known or runs != len(self.wh.runs())
        if stale:
            # The catalog predates the replay run (views, file list or run records): rebuild it.
            usable = con is not None
            if con is not None:
                con.close()
            try:
                self.wh.refresh_catalog()
            except PostmortemError as exc:
                if not usable:
                    raise PostmortemError(f"the warehouse catalog is missing or outdated and cannot be rebuilt now: {exc}") from None
                self.notes.append(f"the catalog could not be refreshed ({exc}); provenance may miss the latest runs")
            con = connect_read_only(self.root)
        return con

    def _read_older_run(self) -> None:
        """The plain output views hold the latest complete run of each incident; a report of an
        older run reads that run from the ``*_all_runs`` views, under the plain names."""
        if self.wh.latest_complete_runs().get((self.chain_id, self.incident_id)) == self.run_id:
            return
        suffix = "_all_runs"
        for (name,) in self.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
            if name.endswith(suffix):
                self.con.execute(f"CREATE TEMP VIEW {ident(name[:-len(suffix)])} AS SELECT * FROM main.{ident(name)}")
        self.notes.append(f"run {self.run_id} is not the latest of {self.incident_id}: to reproduce a figure with "
                          "`postmortem sql`, read each replay output table under its `_all_runs` name")

    def close(self) -> None:
        if getattr(self, "con", None) is not None:
            self.con.close()
            self.con = None

    def _tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database() "
            "UNION SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        return {r[0] for r in rows}

    def _columns_of(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(f"DESCRIBE {ident(table)}").fetchall()]

    def rows(self, sql: str) -> list[dict]:
        import duckdb

        try:
            cur = self.con.execute(sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise PostmortemError(f"a report query failed ({first}); the warehouse tables may have changed, "
                                  "see COLUMNS in reports/model.py") from None
        names = [d[0] for d in cur.description]
        return [{n: _canon(v) for n, v in zip(names, row)} for row in cur.fetchall()]

    def where(self, alias: str | None = None) -> str:
        p = f"{alias}." if alias else ""
        return (f"{p}incident_id = {literal(self.incident_id)} AND {p}run_id = {literal(self.run_id)} "
                f"AND {p}chain_id = {self.chain_id}")

    def figure(self, key: str, label: str, group: str, shape: str, unit: str, sql: str, note: str = "") -> Figure:
        sql = _q(sql)
        return Figure(key, label, group, shape, unit, sql, self.rows(sql), note)

    def decimals(self, side: str) -> tuple[str, str]:
        """(select expression, join) giving ``{side}_decimals`` for verdicts aliased ``v``.

        From the verdicts' own column when it has one, else from the ingest's ``reserves``.
        """
        v = self.v
        if v.has(f"{side}_decimals"):
            return v.sel(f"{side}_decimals", "v"), ""
        r = self.cols.get("reserves")
        if r is None:
            return f"NULL AS {side}_decimals", ""
        a = f"{side[0]}d"
        join = (f"LEFT JOIN (SELECT {r.sel('asset')}, max({r('decimals')}) AS decimals FROM reserves "
                f"WHERE chain_id = {self.chain_id} GROUP BY {r('asset')}) {a} ON {a}.asset = {v(f'{side}_asset', 'v')}")
        return f"{a}.decimals AS {side}_decimals", join

    # ---- the whole model

    def build(self, policy: Policy, paid: PaidList | None, tolerance_wei: int) -> ReportModel:
        figures: dict[str, Figure] = {}
        liquidations = self._liquidations()
        self.liquidations_rows = liquidations.rows
        mispriced = self._mispriced(figures, liquidations)
        eth_asset = self._eth_asset(liquidations)
        self._headline(figures, mispriced)
        self._figures(figures)
        provenance = self._provenance(figures)
        reimbursement = self._reimbursement(policy, figures, mispriced, eth_asset)
        comparison = pol.compare(reimbursement.owed(), paid, tolerance_wei) if paid is not None else None
        return ReportModel(
            incident_id=self.incident_id, title=_incident_title(self.incident_id), chain_id=self.chain_id,
            run_id=self.run_id, figures=figures, liquidations=liquidations, liquidators=self._liquidators(),
            at_risk=self._at_risk(), price_path=self._price_path(mispriced), reimbursement=reimbursement,
            comparison=comparison, checks=self._checks(figures, reimbursement),
            provenance=provenance, methodology=self._methodology(), mispriced=mispriced,
            eth_asset=eth_asset, notes=self.notes,
        )

    # ---- liquidations

    def _liquidations(self) -> Table:
        v = self.v
        cd, cjoin = self.decimals("collateral")
        dd, djoin = self.decimals("debt")
        wanted = [
            "transaction_hash", "block_number", "transaction_index", "log_index", "timestamp", "market", "pool",
            "user", "liquidator", "collateral_asset", "collateral_symbol", "@collateral_decimals", "debt_asset",
            "debt_symbol", "@debt_decimals",
            "debt_to_cover", "liquidated_collateral_amount", "collateral_seized", "protocol_fee_amount",
            "receive_a_token", "hf_reported", "hf_true", "verdict", "replay_matches_log",
            "max_liquidatable_debt_reported", "max_liquidatable_debt_true", "over_liquidated_debt",
            "collateral_price_reported", "collateral_price_true", "debt_price_reported", "debt_price_true", "eth_price",
            "oracle_loss_eth", "oracle_loss_usd", "bonus_loss_eth", "bonus_loss_usd",
            "fee_oracle_loss_eth", "fee_oracle_loss_usd", "borrower_loss_eth", "borrower_loss_usd",
        ]
        special = {"@collateral_decimals": cd, "@debt_decimals": dd}
        select = ",\n       ".join(special.get(c) or v.sel(c, "v", "NULL") for c in wanted)
        joins = "".join(f"\n{j}" for j in (cjoin, djoin) if j)
        sql = _q(f"""
            SELECT {{select}}
            FROM verdicts v{{joins}}
            WHERE {self.where('v')}
            ORDER BY {v('block_number', 'v')}, {v('transaction_index', 'v')}, {v('log_index', 'v')}
        """).replace("{select}", select).replace("{joins}", joins)
        return Table("liquidations", "Every liquidation the replay judged", sql, self.rows(sql))

    def _eth_asset(self, liquidations: Table) -> str | None:
        """The WETH reserve's address, from the symbols the replay carried (None when absent)."""
        for r in liquidations.rows:
            for side in ("debt", "collateral"):
                if (r.get(f"{side}_symbol") or "").upper() == "WETH":
                    return r[f"{side}_asset"]
        return None

    # ---- headline

    def _mispriced(self, figures: dict[str, Figure], liquidations: Table) -> dict | None:
        p = self.cols.get("price_path")
        v = self.v
        if p is not None and not self.rows(f"SELECT 1 AS x FROM price_path WHERE {self.where()} LIMIT 1"):
            del self.cols["price_path"]  # written, but empty: nothing to learn the mispricing from
            p = None
        if p is not None:
            extra = "".join(f",\n       min({p(c)}) AS {c}" for c in ("symbol", "pool") if p.has(c))
            f = self.figure("mispriced_assets", "Mispriced assets (price path blocks where reported ≠ true)",
                            GROUP_HEADLINE, "rows", "count", f"""
                SELECT {p.sel('asset')}{extra},
                       count(DISTINCT {p('block_number')}) AS mispriced_blocks,
                       min({p('block_number')}) AS first_block,
                       max({p('block_number')}) AS last_block
                FROM price_path
                WHERE {self.where()}
                  AND {p('reported_price')} <> {p('true_price')}
                GROUP BY {p('asset')}
                ORDER BY mispriced_blocks DESC, {p('asset')}
            """, note="when several pools quote the asset, the price path below is one of them")
        elif v.has("collateral_price_reported", "collateral_price_true"):
            self.notes.append("the mispriced asset is taken from the prices the verdicts carry (the replay wrote no price path)")
            f = self.figure("mispriced_assets", "Mispriced assets (liquidations where reported ≠ true collateral price)",
                            GROUP_HEADLINE, "rows", "count", f"""
                SELECT {v('collateral_asset')} AS asset,
                       count(DISTINCT {v('block_number')}) AS mispriced_blocks,
                       min({v('block_number')}) AS first_block,
                       max({v('block_number')}) AS last_block
                FROM verdicts
                WHERE {self.where()}
                  AND {v('collateral_price_reported')} <> {v('collateral_price_true')}
                GROUP BY {v('collateral_asset')}
                ORDER BY mispriced_blocks DESC, {v('collateral_asset')}
            """)
        else:
            return None
        figures[f.key] = f
        if not f.rows:
            return None
        top = f.rows[0]
        asset = top["asset"]
        decimals = next((r["collateral_decimals"] for r in liquidations.rows
                         if r["collateral_asset"] == asset and r.get("collateral_decimals") is not None), None)
        symbol = top.get("symbol") or next((r["collateral_symbol"] for r in liquidations.rows
                                            if r["collateral_asset"] == asset and r.get("collateral_symbol")), None)
        return {"asset": asset, "symbol": symbol or asset, "decimals": decimals, "pool": top.get("pool")}

    def _path_filter(self, mispriced: dict) -> str:
        p = self.cols["price_path"]
        f = f"{p('asset')} = {literal(mispriced['asset'])}"
        if p.has("pool") and mispriced.get("pool"):
            f += f" AND {p('pool')} = {literal(mispriced['pool'])}"
        return f

    def _headline(self, figures: dict[str, Figure], mispriced: dict | None) -> None:
        v, W = self.v, self.where()
        wrong = f"{v('verdict')} = {literal(VERDICT_WRONG)}"
        add = lambda f: figures.__setitem__(f.key, f)  # noqa: E731
        add(self.figure("markets", "Markets", GROUP_HEADLINE, "rows", "count", f"""
            SELECT {v.sel('market')}, {v.sel('pool')},
                   count(*) AS liquidations,
                   count(*) FILTER (WHERE {wrong}) AS wrongly_eligible
            FROM verdicts
            WHERE {W}
            GROUP BY {v('market')}, {v('pool')}
            ORDER BY {v('market')}, {v('pool')}
        """))
        ts = v('timestamp') if v.has("timestamp") else "NULL"
        add(self.figure("liquidation_window", "Liquidations, first to last", GROUP_HEADLINE, "row", "block", f"""
            SELECT min({v('block_number')}) AS first_block,
                   max({v('block_number')}) AS last_block,
                   min({ts}) AS first_timestamp,
                   max({ts}) AS last_timestamp
            FROM verdicts
            WHERE {W}
        """))
        if v.has("collateral_price_reported", "collateral_price_true"):
            add(self.figure("price_at_first_wrong_liquidation",
                            "Reported vs true collateral price at the first wrongly eligible liquidation",
                            GROUP_HEADLINE, "row", "base", f"""
                SELECT {v.sel('block_number')}, {v.sel('transaction_hash')},
                       {v.sel('collateral_asset')}, {v.sel('collateral_symbol', default='NULL')},
                       {v.sel('debt_asset')}, {v.sel('debt_symbol', default='NULL')},
                       {v.sel('collateral_price_reported')}, {v.sel('collateral_price_true')},
                       {v.sel('debt_price_reported', default='NULL')}, {v.sel('debt_price_true', default='NULL')}
                FROM verdicts
                WHERE {W}
                  AND {wrong}
                ORDER BY {v('block_number')}, {v('transaction_index')}, {v('log_index')}
                LIMIT 1
            """, note="the SQL gives prices in base currency units (1e8 = 1 USD)"))
        p = self.cols.get("price_path")
        if p is None or mispriced is None:
            return
        a = self._path_filter(mispriced)
        pts = p('timestamp') if p.has("timestamp") else "NULL"
        add(self.figure("mispricing_window", f"When the {mispriced['symbol']} mispricing started and ended",
                        GROUP_HEADLINE, "row", "block", f"""
            WITH path AS (
                SELECT {p.sel('block_number')}, {pts} AS ts,
                       {p('reported_price')} <> {p('true_price')} AS mispriced
                FROM price_path
                WHERE {W}
                  AND {a}
            ), bad AS (
                SELECT min(block_number) AS first_block, max(block_number) AS last_block
                FROM path WHERE mispriced
            )
            SELECT (SELECT max(block_number) FROM path
                     WHERE NOT mispriced AND block_number < bad.first_block) AS last_correct_block_before,
                   bad.first_block,
                   (SELECT min(ts) FROM path WHERE block_number = bad.first_block) AS first_timestamp,
                   bad.last_block,
                   (SELECT max(ts) FROM path WHERE block_number = bad.last_block) AS last_timestamp,
                   (SELECT min(block_number) FROM path
                     WHERE NOT mispriced AND block_number > bad.last_block) AS fixed_block,
                   (SELECT min(ts) FROM path
                     WHERE NOT mispriced AND block_number > bad.last_block) AS fixed_timestamp,
                   (SELECT count(*) FROM path) AS path_blocks
            FROM bad
        """, note="the price is known only at the blocks the warehouse holds, so the mispricing began after the last "
                  "correct block before the first mispriced one, and ended before the first correct block after "
                  "the last mispriced one"))
        add(self.figure("max_divergence", f"Largest {mispriced['symbol']} divergence on the price path",
                        GROUP_HEADLINE, "row", "base", f"""
            SELECT {p.sel('block_number')}, {p.sel('timestamp', default='NULL')},
                   {p.sel('reported_price')}, {p.sel('true_price')}
            FROM price_path
            WHERE {W}
              AND {a}
              AND {p('true_price')} > 0
            ORDER BY abs(CAST({p('reported_price')} AS DOUBLE) / CAST({p('true_price')} AS DOUBLE) - 1) DESC,
                     {p('block_number')}
            LIMIT 1
        """, note="the block where the reported price was furthest from the true one, in percent"))

    # ---- headline figures

    def _figures(self, figures: dict[str, Figure]) -> None:
        v, W = self.v, self.where()
        Wv = self.where("v")
        wrong = f"{v('verdict')} = {literal(VERDICT_WRONG)}"
        wrong_v = f"{v('verdict', 'v')} = {literal(VERDICT_WRONG)}"
        add = lambda f: figures.__setitem__(f.key, f)  # noqa: E731
        add(self.figure("liquidations", "Liquidations judged", GROUP_FIGURES, "scalar", "count", f"""
            SELECT count(*) AS liquidations
            FROM verdicts
            WHERE {W}
        """))
        add(self.figure("verdicts", "Liquidations by verdict", GROUP_FIGURES, "rows", "count", f"""
            SELECT {v.sel('verdict')}, count(*) AS liquidations
            FROM verdicts
            WHERE {W}
            GROUP BY {v('verdict')}
            ORDER BY {v('verdict')}
        """))
        add(self.figure("wrongly_eligible", "Wrongly eligible liquidations", GROUP_FIGURES, "scalar", "count", f"""
            SELECT count(*) AS wrongly_eligible
            FROM verdicts
            WHERE {W}
              AND {wrong}
        """, note="health factor below 1 at the reported price and at least 1 at the true price, "
                  "just before the liquidation"))
        add(self.figure("borrowers_affected", "Borrowers wrongly liquidated", GROUP_FIGURES, "scalar", "count", f"""
            SELECT count(DISTINCT {v('user')}) AS borrowers
            FROM verdicts
            WHERE {W}
              AND {wrong}
        """))
        cd, cjoin = self.decimals("collateral")
        dd, djoin = self.decimals("debt")
        seized = f"sum({v('collateral_seized', 'v')})" if v.has("collateral_seized") else "NULL"
        cjoin = f"\n{cjoin}" if cjoin else ""
        djoin = f"\n{djoin}" if djoin else ""
        add(self.figure("collateral_seized", "Collateral seized in wrongly eligible liquidations", GROUP_FIGURES,
                        "rows", "token", f"""
            SELECT {v.sel('collateral_asset', 'v')}, {v.sel('collateral_symbol', 'v', 'NULL')}, {cd},
                   count(*) AS liquidations,
                   {seized} AS collateral_seized,
                   sum({v('liquidated_collateral_amount', 'v')}) AS liquidated_collateral_amount
            FROM verdicts v{cjoin}
            WHERE {Wv}
              AND {wrong_v}
            GROUP BY ALL
            ORDER BY {v('collateral_asset', 'v')}
        """, note="collateral seized includes the protocol fee; collateral to liquidators is the amount the "
                  "liquidation's log gives (to the liquidator, fee excluded)"))
        add(self.figure("debt_repaid", "Debt repaid in wrongly eligible liquidations", GROUP_FIGURES, "rows", "token", f"""
            SELECT {v.sel('debt_asset', 'v')}, {v.sel('debt_symbol', 'v', 'NULL')}, {dd},
                   count(*) AS liquidations,
                   sum({v('debt_to_cover', 'v')}) AS debt_repaid
            FROM verdicts v{djoin}
            WHERE {Wv}
              AND {wrong_v}
            GROUP BY ALL
            ORDER BY {v('debt_asset', 'v')}
        """))
        # One number per concept (see the glossary): oracle loss over every liquidation, its protocol-fee
        # part included; bonus loss over the wrongly eligible ones only. owed = oracle part + bonus part.
        fee_eth = v.sum0("fee_oracle_loss_eth") if v.has("fee_oracle_loss_eth") else "0"
        fee_usd = v.sum0("fee_oracle_loss_usd") if v.has("fee_oracle_loss_usd") else "0"
        usd = (f"{v.sum0('oracle_loss_usd')} + {fee_usd}" if v.has("oracle_loss_usd") else "NULL")
        add(self.figure("oracle_loss", "Oracle loss", GROUP_FIGURES, "row", "wei", f"""
            SELECT {v.sum0('oracle_loss_eth')} + {fee_eth} AS eth_wei,
                   {fee_eth} AS fee_part_eth_wei,
                   {usd} AS usd_base,
                   count(*) AS liquidations
            FROM verdicts
            WHERE {W}
        """, note="every liquidation judged: the collateral that left the borrower (to the liquidator and as "
                  "protocol fee) valued at the true price minus at the reported price, in ETH"))
        add(self.figure("bonus_loss", "Bonus loss", GROUP_FIGURES, "row", "wei", f"""
            SELECT {v.sum0('bonus_loss_eth')} AS eth_wei,
                   {v.sum0('bonus_loss_usd')} AS usd_base,
                   count(*) AS liquidations
            FROM verdicts
            WHERE {W}
              AND {wrong}
        """, note="wrongly eligible liquidations only: the liquidation bonus they should never have paid, "
                  "in ETH"))
        if v.has("eth_price"):
            add(self.figure("eth_price", "True ETH price at the last liquidation", GROUP_HEADLINE, "row", "base", f"""
                SELECT {v.sel('block_number')}, {v('eth_price')} AS eth_price
                FROM verdicts
                WHERE {W}
                  AND {v('eth_price')} IS NOT NULL
                ORDER BY {v('block_number')} DESC, {v('transaction_index')} DESC, {v('log_index')} DESC
                LIMIT 1
            """, note="base currency units (1e8 = 1 USD); used to show owed amounts in USD"))
        if v.has("protocol_fee_amount"):
            add(self.figure("protocol_fees", "Protocol fees taken in wrongly eligible liquidations", GROUP_FIGURES,
                            "rows", "token", f"""
                SELECT {v.sel('collateral_asset', 'v')}, {v.sel('collateral_symbol', 'v', 'NULL')}, {cd},
                       sum({v('protocol_fee_amount', 'v')}) AS protocol_fee_amount
                FROM verdicts v{cjoin}
                WHERE {Wv}
                  AND {wrong_v}
                GROUP BY ALL
                ORDER BY {v('collateral_asset', 'v')}
            """, note="collateral sent to the treasury as aTokens"))
        g = self.cols.get("liquidator_gains")
        if g is not None:
            add(self.figure("liquidator_gains", "Liquidator gains (all liquidations)", GROUP_FIGURES, "row", "wei", f"""
                SELECT count(DISTINCT {g('liquidator')}) AS liquidators,
                       {g.sum0('gain_eth')} AS eth_wei,
                       {g.sum0('gain_usd')} AS usd_base
                FROM liquidator_gains
                WHERE {W}
            """, note="collateral received valued at the true price, minus the debt repaid, over every liquidation"))
        else:
            self.notes.append("liquidator gains are taken as the oracle loss and bonus of every liquidation "
                              "(an upper bound: the bonus includes the protocol fee)")
            add(self.figure("liquidator_gains", "Liquidator gains (all liquidations, upper bound)", GROUP_FIGURES,
                            "row", "wei", f"""
                SELECT count(DISTINCT {v('liquidator')}) AS liquidators,
                       {v.sum0('oracle_loss_eth')} + {v.sum0('bonus_loss_eth')} AS eth_wei,
                       {v.sum0('oracle_loss_usd')} + {v.sum0('bonus_loss_usd')} AS usd_base
                FROM verdicts
                WHERE {W}
            """))
        fee = f" + {v.sum0('fee_oracle_loss_eth')}" if v.has("fee_oracle_loss_eth") else ""
        add(self.figure("owed_chain_prices", "Owed to borrowers at the chain's prices", GROUP_FIGURES, "row", "wei", f"""
            WITH per_borrower AS (
                SELECT {v('user')} AS borrower,
                       {v.sum0('oracle_loss_eth')}{fee} + {v.sum0('bonus_loss_eth', where=wrong)} AS owed_wei
                FROM verdicts
                WHERE {W}
                GROUP BY {v('user')}
            )
            SELECT count(*) FILTER (WHERE owed_wei > 0) AS borrowers,
                   coalesce(sum(owed_wei) FILTER (WHERE owed_wei > 0), 0) AS eth_wei
            FROM per_borrower
        """, note="oracle loss and its protocol-fee part of every liquidation, plus the bonus of the wrongly "
                  "eligible ones (the replay's reimbursable)"))

    # ---- tables

    def _price_path(self, mispriced: dict | None) -> Table:
        p = self.cols.get("price_path")
        if p is None or mispriced is None:
            return Table("price_path", "Price path", "", [], note="no price path in the warehouse")
        sql = _q(f"""
            SELECT {p.sel('block_number')}, {p.sel('timestamp', default='NULL')},
                   {p.sel('reported_price')}, {p.sel('true_price')}
            FROM price_path
            WHERE {self.where()}
              AND {self._path_filter(mispriced)}
            ORDER BY {p('block_number')}
        """)
        return Table("price_path", f"{mispriced['symbol']} reported and true price", sql, self.rows(sql),
                     note="base currency units (1e8 = 1 USD)")

    def _liquidators(self) -> Table:
        v, W = self.v, self.where()
        wrong = f"{v('verdict')} = {literal(VERDICT_WRONG)}"
        g = self.cols.get("liquidator_gains")
        judged = f"""
                SELECT {v.sel('liquidator')},
                       count(*) AS liquidations,
                       count(*) FILTER (WHERE {wrong}) AS wrongly_eligible,
                       {v.sum0('oracle_loss_eth')} AS oracle_gain_eth_wei,
                       {v.sum0('bonus_loss_eth')} AS bonus_eth_wei
                FROM verdicts
                WHERE {W}
                GROUP BY {v('liquidator')}"""
        if g is not None:
            sql = _q(f"""
                WITH judged AS ({textwrap.dedent(judged).rstrip()}
                ), gains AS (
                    SELECT {g.sel('liquidator')},
                           sum({g('gain_eth')}) AS gain_eth_wei,
                           {"sum(" + g('gain_usd') + ")" if g.has('gain_usd') else 'NULL'} AS gain_usd_base
                    FROM liquidator_gains
                    WHERE {W}
                    GROUP BY {g('liquidator')}
                )
                SELECT judged.*, gains.gain_eth_wei, gains.gain_usd_base
                FROM judged LEFT JOIN gains USING (liquidator)
                ORDER BY gains.gain_eth_wei DESC NULLS LAST, liquidator
            """)
        else:
            sql = _q(f"""
                WITH judged AS ({textwrap.dedent(judged).rstrip()}
                )
                SELECT judged.*, oracle_gain_eth_wei + bonus_eth_wei AS gain_eth_wei, NULL AS gain_usd_base
                FROM judged
                ORDER BY gain_eth_wei DESC, liquidator
            """)
        return Table("liquidators", "Liquidators and what they gained", sql, self.rows(sql))

    def _at_risk(self) -> Table:
        a = self.cols.get("at_risk")
        if a is None:
            return Table("at_risk", "Positions at risk that were not liquidated", "", [],
                         note="the replay wrote no list of positions at risk")
        v = self.v
        cols = ",\n       ".join(a.sel(c, "a", "NULL") for c in (
            "user", "market", "first_block", "last_block", "seconds_exposed", "min_hf", "hf_true_at_min", "debt_usd",
            "exposed_loss_eth"))
        order = f"{a('exposed_loss_eth', 'a')} DESC NULLS LAST, " if a.has("exposed_loss_eth") else ""
        sql = _q(f"""
            SELECT {{cols}}
            FROM at_risk a
            WHERE {self.where('a')}
              AND NOT EXISTS (
                  SELECT 1 FROM verdicts v
                  WHERE {self.where('v')}
                    AND {v('user', 'v')} = {a('user', 'a')} AND {v('market', 'v')} = {a('market', 'a')})
            ORDER BY {order}{a('user', 'a')}, {a('market', 'a')}
        """).replace("{cols}", cols)
        return Table("at_risk", "Positions at risk that were not liquidated", sql, self.rows(sql),
                     note="largest debt: the most it owed while wrongly eligible, in base currency units (1e8 = 1 USD); "
                          "would have lost: what the largest single liquidation then would have cost it, in ETH")

    # ---- reimbursement

    def _reimbursement(self, policy: Policy, figures: dict[str, Figure], mispriced: dict | None,
                       eth_asset: str | None) -> Reimbursement:
        v, W = self.v, self.where("v")
        wrong = f"{v('verdict', 'v')} = {literal(VERDICT_WRONG)}"
        if policy.scope == "reimbursable":
            scope, bonus_only_wrong = None, True
        elif policy.scope == "wrongly_eligible":
            scope, bonus_only_wrong = wrong, False
        else:
            window = figures.get("mispricing_window")
            first = window.value.get("first_block") if window and window.value else None
            if mispriced is None or first is None:
                raise PostmortemError("the warehouse has no price path showing when the mispricing started and "
                                      "ended, so the window scope cannot be applied; use another --scope")
            scope = (f"{v('collateral_asset', 'v')} = {literal(mispriced['asset'])}\n"
                     f"  AND {v('block_number', 'v')} BETWEEN {first} AND {window.value['last_block']}\n"
                     f"  AND {v('verdict', 'v')} <> {literal(VERDICT_ANOMALY)}")
            bonus_only_wrong = False
        cd, cjoin = self.decimals("collateral")
        dd, djoin = self.decimals("debt")
        joins = [j for j in (cjoin, djoin) if j]
        eth_price = "NULL"
        p = self.cols.get("price_path")
        if v.has("eth_price"):
            eth_price = v("eth_price", "v")
        elif policy.bonus_bps is not None and p is not None and eth_asset is not None:
            eth_price = "e.eth_price"
            joins.append(_q(f"""
                ASOF LEFT JOIN (
                    SELECT DISTINCT {p.sel('block_number')}, {p('reported_price')} AS eth_price
                    FROM price_path
                    WHERE {self.where()} AND {p('asset')} = {literal(eth_asset)}
                ) e ON {v('block_number', 'v')} >= e.block_number"""))
        cols = [v.sel(c, "v", "NULL") for c in (
            "user", "market", "transaction_hash", "block_number", "transaction_index", "log_index", "verdict",
            "collateral_asset", "collateral_symbol")] + [cd, v.sel("liquidated_collateral_amount", "v")] + \
            [v.sel(c, "v", "NULL") for c in ("collateral_price_reported", "collateral_price_true", "debt_asset",
                                              "debt_symbol")] + [dd] + \
            [v.sel(c, "v", "NULL") for c in ("debt_to_cover", "debt_price_true", "oracle_loss_eth",
                                              "fee_oracle_loss_eth", "bonus_loss_eth")] + [f"{eth_price} AS eth_price"]
        select = ",\n       ".join(cols)
        join_sql = "".join(f"\n{j}" for j in joins)
        scope_sql = f"\n  AND {scope}" if scope else ""
        sql = (f"SELECT {select}\nFROM verdicts v{join_sql}\nWHERE {W}{scope_sql}\n"
               f"ORDER BY {v('user', 'v')}, {v('block_number', 'v')}, {v('transaction_index', 'v')}, {v('log_index', 'v')}")
        inputs = Table("reimbursement_inputs", "Liquidations in the reimbursement scope", sql, self.rows(sql))

        symbol = (mispriced or {}).get("symbol") or "unit of collateral"
        per_user: dict[str, dict] = {}
        for r in inputs.rows:
            where = f"{r['transaction_hash']} (log {r['log_index']})"
            mispriced_here = (mispriced is not None and r["collateral_asset"] == mispriced["asset"]
                              and r["collateral_price_reported"] != r["collateral_price_true"])
            oracle = pol.oracle_loss_wei(
                policy, chain_value=r["oracle_loss_eth"], collateral_amount=r["liquidated_collateral_amount"],
                collateral_decimals=18 if r["collateral_decimals"] is None else r["collateral_decimals"],
                is_mispriced_collateral=mispriced_here)
            fee = int(r["fee_oracle_loss_eth"] or 0) if policy.rate_gap_eth is None else 0
            bonus = 0
            if r["verdict"] == VERDICT_WRONG or not bonus_only_wrong:
                bonus = pol.bonus_loss_wei(
                    policy, chain_value=r["bonus_loss_eth"], debt_to_cover=r["debt_to_cover"],
                    debt_decimals=18 if r["debt_decimals"] is None else r["debt_decimals"],
                    debt_is_eth=eth_asset is not None and r["debt_asset"] == eth_asset,
                    debt_price=r["debt_price_true"], eth_price=r["eth_price"], where=where)
            u = per_user.setdefault(r["user"], {
                "user": r["user"], "markets": set(), "liquidations": 0, "wrongly_eligible": 0, "oracle_loss_wei": 0,
                "fee_oracle_loss_wei": 0, "bonus_loss_wei": 0, "chain_owed_wei": 0})
            u["markets"].add(r["market"])
            u["liquidations"] += 1
            u["wrongly_eligible"] += r["verdict"] == VERDICT_WRONG
            u["oracle_loss_wei"] += oracle + fee  # the oracle part, its protocol-fee part included
            u["fee_oracle_loss_wei"] += fee  # of which on the protocol fee (already in oracle_loss_wei)
            u["bonus_loss_wei"] += bonus
            u["chain_owed_wei"] += int(r["oracle_loss_eth"] or 0) + int(r["fee_oracle_loss_eth"] or 0) + (
                int(r["bonus_loss_eth"] or 0) if r["verdict"] == VERDICT_WRONG or not bonus_only_wrong else 0)
        rows = []
        for u in per_user.values():
            owed = u["oracle_loss_wei"] + u["bonus_loss_wei"]
            if owed <= 0:
                continue  # nothing lost to the mispricing (or it worked in the borrower's favour)
            u["markets"] = ", ".join(sorted(u["markets"]))
            u["goodwill_wei"] = policy.goodwill_wei
            u["total_wei"] = owed + policy.goodwill_wei
            rows.append(u)
        rows.sort(key=lambda r: (-r["total_wei"], r["user"]))

        g = policy.goodwill_wei
        fee_sum = v.sum0("fee_oracle_loss_eth", "v") if v.has("fee_oracle_loss_eth") else "0"
        bonus_sum = v.sum0("bonus_loss_eth", "v", wrong if bonus_only_wrong else None)
        owed = f"{v.sum0('oracle_loss_eth', 'v')} + {fee_sum} + {bonus_sum}"
        chain_sql = (
            f"SELECT {v.sel('user', 'v')},\n"
            f"       string_agg(DISTINCT {v('market', 'v')}, ', ' ORDER BY {v('market', 'v')}) AS markets,\n"
            f"       count(*) AS liquidations,\n"
            f"       count(*) FILTER (WHERE {wrong}) AS wrongly_eligible,\n"
            f"       {v.sum0('oracle_loss_eth', 'v')} + {fee_sum} AS oracle_loss_wei,\n"
            f"       {fee_sum} AS fee_oracle_loss_wei,\n"
            f"       {bonus_sum} AS bonus_loss_wei,\n"
            f"       {g} AS goodwill_wei,\n"
            f"       {owed} + {g} AS total_wei\n"
            f"FROM verdicts v\nWHERE {W}{scope_sql}\n"
            f"GROUP BY {v('user', 'v')}\n"
            f"HAVING {owed} > 0\n"
            f"ORDER BY total_wei DESC, {ident('user')}")
        rules = [f"Scope: {policy.scope_rule()}.",
                 f"Oracle part per liquidation: {policy.oracle_rule(symbol)}.",
                 f"Bonus part per liquidation: {policy.bonus_rule()}."]
        if policy.goodwill_wei:
            rules.append(f"Goodwill: {exact_units(policy.goodwill_wei, 18)} ETH per borrower owed something.")
        rules.append("Owed per borrower: oracle part + bonus part over the borrower's liquidations in scope, plus "
                     "goodwill; borrowers whose sum is not positive are not listed. Owed in total is the sum of the list.")
        return Reimbursement(policy, rows, inputs, chain_sql, rules)

    # ---- checks

    def _fix(self) -> str:
        w = f" --warehouse {self.root}"
        return (f"run `postmortem verify --repair{w}` and then `postmortem ingest --incident {self.incident_id}{w}` "
                "to fetch the damaged chunks again")

    def _raw_log_coverage(self) -> Check:
        """Every decodable log in the raw ``logs`` table has its row in its decoded table (matched by topic0).

        Counts per decoded table over the replayed block range; a table short of rows means a chunk
        file is missing, emptied or out of the manifest, so the report refuses (PostmortemError).
        """
        from postmortem.ingest.events import EVENTS_BY_TOPIC0, UNDECODED_TABLE

        first, last, _ = self.block_range
        title = "Every decodable raw log has its row in its decoded table"
        if "logs" not in self.tables or not any(r.dataset == "logs" and r.chain_id == self.chain_id
                                                for r in self.wh.records()):
            raise PostmortemError(
                f"the warehouse {self.root} has no raw logs for chain {self.chain_id}, so the report cannot show "
                f"that its decoded tables are complete; run `postmortem ingest --incident {self.incident_id} "
                f"--warehouse {self.root}` first")
        if first is not None:
            chunks = sorted((r.start, r.end) for r in self.wh.records()
                            if r.dataset == "logs" and r.kind == "chunk" and r.chain_id == self.chain_id
                            and r.start is not None and r.end >= first and r.start <= last)
            covered = first
            for s_, e_ in chunks:
                if s_ > covered:
                    break
                covered = max(covered, e_ + 1)
            if covered <= last:
                raise PostmortemError(
                    f"the warehouse has no raw logs for blocks {covered:,}–{last:,} of the replayed range "
                    f"{first:,}–{last:,} (chain {self.chain_id}), so the report would be built from incomplete data; "
                    f"run `postmortem ingest --incident {self.incident_id} --warehouse {self.root}` to fetch them")
        # topic0 -> decoded table (a topic0 shared by two layouts of one table stays one table).
        group: dict[str, str] = {}
        for topic0, events in sorted(EVENTS_BY_TOPIC0.items()):
            group[topic0.hex()] = "+".join(sorted({e.table for e in events}))
        tables = sorted(set(group.values()))
        def where(a: str = "") -> str:
            rng = f" AND {a}block_number BETWEEN {first} AND {last}" if first is not None else ""
            return f"{a}chain_id = {self.chain_id}{rng}"
        values = ",\n                   ".join(f"({literal(t)}, {literal(tbl)})" for t, tbl in group.items())
        import duckdb

        readable = set()
        for x in sorted(self.tables & {t for tbl in tables for t in tbl.split("+")} | {UNDECODED_TABLE}):
            try:  # a view whose every file is gone cannot be read: it holds no rows
                self.con.execute(f"SELECT 1 FROM {ident(x)} LIMIT 1").fetchall()
                readable.add(x)
            except duckdb.Error:
                pass
        decoded = []
        for tbl in tables:
            present = [x for x in tbl.split("+") if x in readable]
            if not present:
                decoded.append(f"SELECT {literal(tbl)} AS decoded_table, 0 AS decoded_rows")
            else:
                decoded.append(" UNION ALL ".join(
                    f"SELECT {literal(tbl)} AS decoded_table, count(*) AS decoded_rows FROM {ident(x)} WHERE {where()}"
                    for x in present))
        if UNDECODED_TABLE in readable:
            decoded.append(f"SELECT t.decoded_table, count(*) AS decoded_rows FROM {UNDECODED_TABLE} u "
                           f"JOIN topics t ON t.topic0 = lower(hex(u.topic0)) WHERE {where('u.')} "
                           "GROUP BY t.decoded_table")
        union = "\n                UNION ALL ".join(decoded)
        sql = _q(f"""
            WITH topics(topic0, decoded_table) AS (
                VALUES {values}
            ), raw AS (
                SELECT t.decoded_table, count(*) AS raw_logs
                FROM logs l JOIN topics t ON t.topic0 = lower(hex(l.topic0))
                WHERE {where('l.')}
                GROUP BY t.decoded_table
            ), decoded AS (
                {union}
            )
            SELECT t.decoded_table,
                   coalesce((SELECT raw_logs FROM raw r WHERE r.decoded_table = t.decoded_table), 0) AS raw_logs,
                   coalesce((SELECT sum(decoded_rows) FROM decoded d WHERE d.decoded_table = t.decoded_table), 0)
                       AS decoded_rows
            FROM (SELECT DISTINCT decoded_table FROM topics) t
            ORDER BY t.decoded_table
        """)
        rows = self.rows(sql)
        bad = [r for r in rows if r["raw_logs"] != r["decoded_rows"]]
        span = f"blocks {first:,}–{last:,}" if first is not None else "the whole chain"
        if bad:
            r = bad[0]
            more = f" (and {len(bad) - 1} more tables)" if len(bad) > 1 else ""
            raise PostmortemError(
                f"the warehouse's {r['decoded_table']} table has {r['decoded_rows']:,} rows for {r['raw_logs']:,} "
                f"matching raw logs in {span}{more}, so a decoded chunk is missing or damaged and the report would "
                f"be built from incomplete data; {self._fix()}")
        n = sum(r["raw_logs"] for r in rows)
        used = sum(1 for r in rows if r["raw_logs"])
        return Check("raw_log_coverage", title, True,
                     f"{n:,} raw logs in {span} with a known event, every one decoded, across {used} tables", sql)

    def _checks(self, figures: dict[str, Figure], reimbursement: Reimbursement) -> list[Check]:
        checks: list[Check] = [self._raw_log_coverage()]
        v = self.v
        # 1. Every LiquidationCall log of the replayed pools in the block range has a verdict.
        l = self.cols.get("liquidations")
        pools = sorted({r["pool"] for r in figures["markets"].rows if r.get("pool")})
        first, last, _ = self.block_range
        pool_filter = (f"AND lower({l('address', 'l')}) IN ({', '.join(literal(p.lower()) for p in pools)})"
                       if l is not None and pools else "")
        if l is not None and first is not None:
            sql = _q(f"""
                SELECT count(*) AS logs,
                       count(*) FILTER (WHERE v.transaction_hash IS NULL) AS without_verdict
                FROM liquidations l
                LEFT JOIN (
                    SELECT {v.sel('transaction_hash')}, {v.sel('log_index')}
                    FROM verdicts
                    WHERE {self.where()}
                ) v ON v.transaction_hash = {l('transaction_hash', 'l')}
                   AND v.log_index = {l('log_index', 'l')}
                WHERE l.chain_id = {self.chain_id}
                  AND {l('block_number', 'l')} BETWEEN {first} AND {last}
                  {pool_filter}
            """).replace("{pool_filter}", pool_filter)
            r = self.rows(sql)[0]
            ok = r["without_verdict"] == 0 and r["logs"] == figures["liquidations"].value
            if not ok:
                raise PostmortemError(
                    f"{r['without_verdict']} of the {r['logs']} LiquidationCall logs in blocks {first:,}–{last:,} have "
                    f"no verdict in replay run {self.run_id} ({figures['liquidations'].value} verdicts), so the report "
                    f"would be incomplete; run `postmortem replay --incident {self.incident_id} --warehouse {self.root}` "
                    "again")
            checks.append(Check(
                "log_coverage", "Every LiquidationCall log has a verdict", ok,
                f"{r['logs']} LiquidationCall logs of the replayed pools in blocks {first:,}–{last:,}; "
                f"{r['without_verdict']} without a verdict; {figures['liquidations'].value} verdicts", sql))
        else:
            raise PostmortemError(
                f"the warehouse has no decoded liquidations{'' if first is not None else ' or no replayed block range'} "
                f"to hold the verdicts against, so the report cannot show that every liquidation was judged; "
                f"run `postmortem ingest --incident {self.incident_id} --warehouse {self.root}` first")
        # 2. The replay's own per-borrower reimbursable agrees with the list at the chain's prices.
        b = self.cols.get("borrower_losses")
        if b is not None:
            sql = _q(f"""
                SELECT {b.sel('user')}, sum({b('reimbursable_eth')}) AS reimbursable_wei
                FROM borrower_losses
                WHERE {self.where()}
                GROUP BY {b('user')}
                HAVING sum({b('reimbursable_eth')}) > 0
                ORDER BY {ident('user')}
            """)
            theirs = {r["user"]: r["reimbursable_wei"] for r in self.rows(sql)}
            title = "The replay's own per-borrower losses agree with the reimbursement list at the chain's prices"
            if reimbursement.policy.scope != "reimbursable":
                checks.append(Check("borrower_losses", title, None,
                                    "not compared: the report's scope is not the replay's reimbursable rule", sql))
            else:
                ours = {r["user"]: r["chain_owed_wei"] for r in reimbursement.rows}
                users = set(theirs) | set(ours)
                differ = sorted(u for u in users if theirs.get(u) != ours.get(u))
                checks.append(Check(
                    "borrower_losses", title, not differ,
                    f"{len(users) - len(differ)} of {len(users)} borrowers agree to the wei"
                    + (f"; differing: {', '.join(differ[:5])}{' …' if len(differ) > 5 else ''}" if differ else ""), sql))
        # 3. The input chunks the replay recorded are still the ones in the warehouse.
        if isinstance(self.recorded_inputs, dict) and self.recorded_inputs:
            live = {r.path: r.sha256 for r in self.wh.records()}
            changed = sorted(p for p, h in self.recorded_inputs.items() if live.get(p) != h)
            n = len(self.recorded_inputs)
            checks.append(Check(
                "inputs_unchanged", "The replay's input chunks are unchanged", not changed,
                f"{n - len(changed)} of {n} input chunks have the hash the replay recorded"
                + (f"; changed or missing: {', '.join(changed[:3])}{' …' if len(changed) > 3 else ''}" if changed else ""),
                _q(f"""
                    SELECT meta FROM warehouse_files
                    WHERE dataset = 'verdicts' AND incident_id = {literal(self.incident_id)}
                      AND run_id = {literal(self.run_id)} AND chain_id = {self.chain_id}
                """)))
        else:
            checks.append(Check("inputs_unchanged", "The replay's input chunks are unchanged", None,
                                "not checked: the replay recorded no input hashes"))
        # 4. The replay re-ran every liquidation to its logged amounts.
        if v.has("replay_matches_log"):
            sql = _q(f"""
                SELECT count(*) AS liquidations,
                       count(*) FILTER (WHERE NOT {v('replay_matches_log')}) AS not_matching
                FROM verdicts
                WHERE {self.where()}
            """)
            r = self.rows(sql)[0]
            checks.append(Check("replay_matches_log", "Replaying each liquidation gives its logged amounts",
                                r["not_matching"] == 0,
                                f"{r['liquidations'] - r['not_matching']} of {r['liquidations']} liquidations replay to "
                                "the logged debtToCover and liquidatedCollateralAmount", sql))
        checks.append(self._one_number(figures, reimbursement))
        # 5. Verdict rows are of the known kinds.
        unknown = [r for r in figures["verdicts"].rows if r["verdict"] not in VERDICTS]
        checks.append(Check("verdict_kinds", "Every verdict is a known kind", not unknown,
                            "verdicts: " + ", ".join(f"{r['verdict']} {r['liquidations']}" for r in figures["verdicts"].rows)
                            if figures["verdicts"].rows else "no liquidations", figures["verdicts"].sql))
        return checks

    def _one_number(self, figures: dict[str, Figure], reimbursement: Reimbursement) -> Check:
        """owed = Σ rows of the list = oracle part + bonus part + goodwill, and at the chain's prices the parts are
        the oracle loss and bonus loss figures (less borrowers not listed), to the wei; else the report refuses."""
        t = reimbursement.totals()
        parts = t["oracle_loss_wei"] + t["bonus_loss_wei"] + t["goodwill_wei"]
        problems = []
        if parts != t["total_wei"]:
            problems.append(f"oracle part + bonus part + goodwill is {parts} wei, the list's rows sum to {t['total_wei']}")
        if any(r["total_wei"] != r["oracle_loss_wei"] + r["bonus_loss_wei"] + r["goodwill_wei"] for r in reimbursement.rows):
            problems.append("a row of the list is not the sum of its parts")
        eth = lambda w: exact_units(w, 18) + " ETH"  # noqa: E731
        detail = (f"owed {eth(t['total_wei'])} = oracle part {eth(t['oracle_loss_wei'])} + bonus part "
                  f"{eth(t['bonus_loss_wei'])}" + (f" + goodwill {eth(t['goodwill_wei'])}" if t["goodwill_wei"] else "")
                  + f" = the sum of the list's {t['borrowers']} rows")
        policy = reimbursement.policy
        if policy.uses_chain_prices and policy.scope == "reimbursable":
            listed = {r["user"] for r in reimbursement.rows}
            oracle_out = bonus_out = 0
            for r in self.liquidations_rows:
                if r["user"] in listed:
                    continue
                oracle_out += int(r.get("oracle_loss_eth") or 0) + int(r.get("fee_oracle_loss_eth") or 0)
                if r["verdict"] == VERDICT_WRONG:
                    bonus_out += int(r.get("bonus_loss_eth") or 0)
            ol, bl = figures["oracle_loss"].value, figures["bonus_loss"].value
            sql_owed = figures["owed_chain_prices"].value["eth_wei"]
            if ol["eth_wei"] != t["oracle_loss_wei"] + oracle_out:
                problems.append(f"the oracle loss figure is {ol['eth_wei']} wei, the list's oracle part "
                                f"{t['oracle_loss_wei']} + {oracle_out} for borrowers not listed")
            if bl["eth_wei"] != t["bonus_loss_wei"] + bonus_out:
                problems.append(f"the bonus loss figure is {bl['eth_wei']} wei, the list's bonus part "
                                f"{t['bonus_loss_wei']} + {bonus_out} for borrowers not listed")
            if sql_owed != t["total_wei"] - t["goodwill_wei"]:
                problems.append(f"the SQL at the chain's prices gives {sql_owed} wei owed before goodwill")
            detail += ("; oracle part = the oracle loss figure" + (f" less {eth(oracle_out)} of borrowers not listed"
                                                                    if oracle_out else "")
                       + ", bonus part = the bonus loss figure" + (f" less {eth(bonus_out)}" if bonus_out else "")
                       + ", owed = the SQL at the chain's prices")
        else:
            detail += "; the policy's parts are not the chain-price figures, so those are not compared"
        if problems:
            raise PostmortemError("the report's numbers disagree (" + "; ".join(problems) + "); nothing was written, "
                                  "and this is a bug in postmortem's reports to report with the warehouse")
        return Check("one_number", "Owed is one number: headline, figures, list, report.json and reimbursements.csv",
                     True, detail + "; report.json and reimbursements.csv are checked to carry the same wei when written",
                     figures["owed_chain_prices"].sql)

    # ---- provenance and methodology

    def _provenance(self, figures: dict[str, Figure]) -> Provenance:
        run_sql = _q(f"""
            SELECT run_id, kind, tool_version, started_at, finished_at, params
            FROM runs
            WHERE run_id = {literal(self.run_id)}
               OR params LIKE {literal('%"' + self.incident_id + '"%')}
            ORDER BY started_at, run_id
        """)
        runs = self.rows(run_sql)
        rpc: set[str] = set()
        replay_params: dict = {}
        for r in runs:
            params = _redacted(_loads(r.get("params")))
            r["params"] = params
            # Run records hold URLs already redacted by their writer; redact again so nothing slips through.
            r["rpc"] = sorted({redact_url(val) for key, val in _walk(params)
                               if isinstance(val, str) and "://" in val and ("rpc" in key.lower() or "url" in key.lower())})
            rpc.update(r["rpc"])
            if r.get("run_id") == self.run_id and isinstance(params, dict):
                replay_params = params
        runs_table = Table("runs", "Runs of this incident (ingest, replay)", run_sql,
                           [{k: r.get(k) for k in ("run_id", "kind", "tool_version", "started_at", "finished_at", "rpc",
                                                   "params")} for r in runs])
        first, last, source = _block_range(replay_params, self.recorded_params, self.recorded_inputs, self.wh, figures)
        self.block_range = (first, last, source)
        out_sql = _q(f"""
            SELECT dataset, path, rows, sha256
            FROM warehouse_files
            WHERE file_kind = 'output' AND chain_id = {self.chain_id}
              AND incident_id = {literal(self.incident_id)} AND run_id = {literal(self.run_id)}
            ORDER BY dataset, path
        """)
        outputs = Table("outputs", "Replay outputs read by this report", out_sql, self.rows(out_sql))
        in_where = f"file_kind = 'chunk' AND chain_id = {self.chain_id}"
        if first is not None:
            in_where += f"\n  AND start_block <= {last} AND end_block >= {first}"
        in_sql = _q(f"""
            SELECT dataset, start_block, end_block, rows, sha256, path
            FROM warehouse_files
            WHERE {in_where}
            ORDER BY dataset, start_block, path
        """)
        inputs = Table("inputs", "Input chunks overlapping the block range", in_sql, self.rows(in_sql))
        dig_sql = _q(f"""
            SELECT dataset,
                   count(*) AS chunks,
                   sum(rows) AS rows,
                   min(start_block) AS first_block,
                   max(end_block) AS last_block,
                   sha256(string_agg(path || ' ' || sha256, chr(10) ORDER BY path)) AS digest
            FROM warehouse_files
            WHERE {in_where}
            GROUP BY dataset
            ORDER BY dataset
        """)
        digests = Table("input_digests", "Input chunks per dataset, with one digest over their hashes", dig_sql,
                        self.rows(dig_sql),
                        note="digest = sha256 of the lines 'path sha256' of every chunk, sorted by path, joined by newlines")
        replay = {
            "run_id": self.run_id,
            "tool_version": self.record.tool_version,
            "verdicts_file": self.record.path,
            "verdicts_sha256": self.record.sha256,
            "parameters": self.recorded_params,
            "input_hashes_recorded": len(self.recorded_inputs) if isinstance(self.recorded_inputs, dict) else 0,
        }
        return Provenance(
            report_tool_version=__version__, replay=replay,
            block_range={"first_block": first, "last_block": last, "source": source},
            rpc_endpoints=sorted(rpc), outputs=outputs, inputs=inputs, input_digests=digests, runs=runs_table,
        )

    def _methodology(self) -> dict:
        recorded = {}
        for key, value in _walk(self.recorded_params):
            k = key.lower()
            if any(w in k for w in ("model", "revision", "price", "rounding", "oracle", "band")):
                recorded[key] = value
        m = self.cols.get("markets")
        revisions: list[dict] = []
        if m is not None:
            sql = _q(f"""
                SELECT DISTINCT {m.sel('market', default='NULL')}, {m.sel('pool', default='NULL')}, {m.sel('revision')}
                FROM markets
                WHERE chain_id = {self.chain_id}
                ORDER BY ALL
            """)
            pools = {r["pool"] for r in self.rows(_q(f"SELECT DISTINCT {self.v('pool')} AS pool FROM verdicts WHERE {self.where()}"))}
            revisions = [r for r in self.rows(sql) if not pools or r.get("pool") in pools]
        return {"recorded_parameters": dict(sorted(recorded.items(), key=lambda kv: kv[0])), "pool_revisions": revisions}


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _redacted(obj: Any) -> Any:
    """``obj`` with every URL-like string passed through ``redact_url`` (run records are redacted by their
    writer already; a report is published, so it checks again)."""
    if isinstance(obj, dict):
        return {k: _redacted(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redacted(v) for v in obj]
    if isinstance(obj, str) and "://" in obj:
        return redact_url(obj)
    return obj


def _walk(obj: Any, prefix: str = ""):
    """(dotted key, value) for every leaf of nested dicts/lists, keys sorted."""
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _walk(obj[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _walk(item, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def flatten(obj: Any) -> dict[str, Any]:
    """Nested parameters as ``{"pools.core": "0x…", ...}`` for display."""
    return dict(_walk(obj))


_FROM_KEYS = ("from_block", "start_block", "first_block")
_TO_KEYS = ("to_block", "end_block", "last_block")


def _block_range(params: dict, recorded: dict, inputs: dict, wh: Warehouse,
                 figures: dict[str, Figure]) -> tuple[int | None, int | None, str]:
    """The replayed block range: as the replay recorded it, else from its input chunks, else the liquidations."""
    for source, d in (("replay run parameters", params), ("verdicts file provenance", recorded)):
        flat = flatten(d) if isinstance(d, dict) else {}
        lo = next((val for k, val in flat.items() if k.split(".")[-1] in _FROM_KEYS and isinstance(val, int)), None)
        hi = next((val for k, val in flat.items() if k.split(".")[-1] in _TO_KEYS and isinstance(val, int)), None)
        if lo is not None and hi is not None:
            return lo, hi, source
    if isinstance(inputs, dict) and inputs:
        recs = {r.path: r for r in wh.records()}
        spans = [(recs[p].start, recs[p].end) for p in inputs if p in recs and recs[p].start is not None]
        if spans:
            return min(s for s, _ in spans), max(e for _, e in spans), "the replay's input chunks"
    w = figures["liquidation_window"].value or {}
    if w.get("first_block") is not None:
        return w["first_block"], w["last_block"], "first and last liquidation (the replay recorded no range)"
    return None, None, "unknown"


def input_digest(rows: list[dict]) -> str:
    """The digest the input_digests SQL computes, for one dataset's chunk rows (used by tests)."""
    text = "\n".join(f"{r['path']} {r['sha256']}" for r in sorted(rows, key=lambda r: r["path"]))
    return hashlib.sha256(text.encode()).hexdigest()
