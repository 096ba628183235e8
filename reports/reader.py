"""Reading one replay run from the warehouse: pick the run, open the catalog, resolve its columns.

:class:`RunReader` is what every part of the report model reads through (figures, tables,
reimbursement, checks, provenance): one read-only DuckDB connection, the run's record and
parameters, and the :class:`~reports.columns.Columns` of each table the replay and ingest wrote.
"""

from __future__ import annotations

import re

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from postmortem.errors import PostmortemError
from postmortem.reports.columns import COLUMNS, PLAIN, Columns, ident, literal, sql_text
from postmortem.reports.parts import Figure
from postmortem.warehouse import CATALOG_NAME, FileRecord, Warehouse

__all__ = ["RunReader"]


class RunReader:
    """One replay run of one incident, open for reading: its record, the catalog, its columns.

    ``rows(sql)`` runs a query (exact values), ``where()`` is the SQL filter of this run,
    ``figure(...)`` runs a figure's SQL; the run is the latest complete one unless ``run_id`` is given.
    """

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
                    self.notes.append(f"the replay wrote no {PLAIN.get(name, name.replace('_', ' '))}")
                continue
            c = Columns(name, self._columns_of(name))
            if name == "verdicts" and c.missing:
                raise PostmortemError(f"the verdicts table lacks {', '.join(c.missing)}; the replay output changed, "
                                      "so update COLUMNS in reports/columns.py")
            if c.missing:
                self.notes.append(f"the {PLAIN.get(name, name.replace('_', ' '))} in the warehouse lack "
                                  f"{', '.join(x.replace('_', ' ') for x in c.missing)} and were not used")
                continue
            self.cols[name] = c
        self.v = self.cols["verdicts"]
        self._note_price_sources()

    def _note_price_sources(self) -> None:
        """Name every reserve whose price source is neither a feed nor a known adapter: the replay
        valued it from the oracle's block-end ``getAssetPrice`` reads, not from the source itself."""
        if "reserves" not in self.tables or "source_kind" not in self._columns_of("reserves"):
            return
        v = self.v
        rows = self.rows(
            f"SELECT symbol, string_agg(DISTINCT market, ', ' ORDER BY market) AS markets, min(price_source) AS source "
            f"FROM reserves WHERE chain_id = {self.chain_id} AND source_kind = 'other' AND (pool IN "
            f"(SELECT DISTINCT {v('pool')} FROM verdicts WHERE {self.where()}) OR NOT EXISTS "
            f"(SELECT 1 FROM verdicts WHERE {self.where()})) GROUP BY symbol ORDER BY symbol")
        for r in rows:
            self.notes.append(
                f"{r['symbol']} ({r['markets']}) is priced by {r['source']}, which is neither a Chainlink-style feed "
                "nor a known adapter: the replay took its price from the oracle's getAssetPrice read at each block end")

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
                                  "see COLUMNS in reports/columns.py") from None
        names = [d[0] for d in cur.description]
        chain_text = {n for n in names if _CHAIN_TEXT.search(n)}
        return [{n: (display_text(v) if n in chain_text else _canon(v)) for n, v in zip(names, row)}
                for row in cur.fetchall()]

    def where(self, alias: str | None = None) -> str:
        p = f"{alias}." if alias else ""
        return (f"{p}incident_id = {literal(self.incident_id)} AND {p}run_id = {literal(self.run_id)} "
                f"AND {p}chain_id = {self.chain_id}")

    def figure(self, key: str, label: str, group: str, shape: str, unit: str, sql: str, note: str = "") -> Figure:
        sql = sql_text(sql)
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

    def fix(self) -> str:
        w = f" --warehouse {self.root}"
        return (f"run `postmortem verify --repair{w}` and then `postmortem ingest --incident {self.incident_id}{w}` "
                "to fetch the damaged chunks again")


# Columns whose text a token's deployer or a market's admin chose (an ERC-20 symbol, an eMode label).
_CHAIN_TEXT = re.compile(r"(^|_)(symbol|label)$")
_SAFE_CHAR = re.compile(r"[\w.+\-/() $€₮]")
DISPLAY_TEXT_MAX = 32


def display_text(value: Any) -> Any:
    """Text from the chain as a report shows it: every character that could be markup in HTML or
    Markdown (``<>&"'`|*[]`` ...) or a control character becomes ``?``, and more than 32 characters
    are cut with an ellipsis. The warehouse keeps the exact text; a report never interprets it."""
    if not isinstance(value, str):
        return value
    shown = "".join(c if _SAFE_CHAR.fullmatch(c) else "?" for c in value)
    return shown if len(shown) <= DISPLAY_TEXT_MAX else shown[: DISPLAY_TEXT_MAX - 1] + "…"


def _canon(value: Any) -> Any:
    """A fetched value in the model's exact form: integral decimals become ints."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
