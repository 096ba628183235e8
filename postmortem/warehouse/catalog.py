"""The DuckDB catalog: ``catalog.duckdb``, views over the Parquet files with documented names.

One view per dataset; an output table gets ``{table}_all_runs`` (every run) and ``{table}`` (the
latest complete run of each incident). Plus ``warehouse_files`` and ``runs`` (snapshots of the
manifest and run records) and ``catalog_info``, then the registered views. Every table and
column carries its description from ``schema_docs``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from postmortem import __version__, atomic, schema_docs
from postmortem.errors import PostmortemError
from postmortem.sql_quote import quote_ident, quote_literal
from postmortem.warehouse.jsonl import dumps
from postmortem.warehouse.layout import CATALOG_NAME, OUTPUTS_DIR, RESERVED_NAMES
from postmortem.warehouse.manifest import RUN_FAMILIES

log = logging.getLogger("postmortem.warehouse")

# An output table's view of every run is named like the table plus this; the plain name shows
# the latest complete run of each incident.
ALL_RUNS_SUFFIX = "_all_runs"
# The catalog adds this column beside a Unix-seconds ``timestamp`` column: the same instant, UTC.
TIMESTAMP_UTC = "timestamp_utc"
_TIMESTAMP_UTC_SQL = f'make_timestamp(CAST("timestamp" AS BIGINT) * 1000000) AS {TIMESTAMP_UTC}'

POOL_EVENT_TABLES = schema_docs.POOL_EVENT_TABLES  # their views call the emitting contract `pool`


@dataclass
class CatalogSummary:
    """What ``refresh_catalog`` built: views over files, empty typed views, and views it skipped (name -> why)."""

    path: Path
    views: list[str] = field(default_factory=list)
    empty_views: list[str] = field(default_factory=list)
    registered_views: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class CatalogMixin:
    """Building the catalog (the other parts come from the ``Warehouse`` it is mixed into)."""

    root: Path
    catalog_path: Path

    def datasets(self) -> dict[str, str]:
        """Names with files on disk (any chain) -> "chunk" or "output"."""
        found: dict[str, str] = {}
        if not self.root.exists():
            return found
        for chain_dir in self.root.iterdir():
            if not (chain_dir.is_dir() and chain_dir.name.isdigit()):
                continue
            for ds in chain_dir.iterdir():
                if ds.name == OUTPUTS_DIR and ds.is_dir():
                    for out in ds.iterdir():
                        if out.is_dir() and any(out.glob("*.parquet")):
                            found.setdefault(out.name, "output")
                elif ds.is_dir() and any(ds.glob("*.parquet")):
                    found.setdefault(ds.name, "chunk")
        return found

    def refresh_catalog(self) -> CatalogSummary:
        """(Re)build ``catalog.duckdb``: one view per dataset/output table, named like it.

        Views read ``read_parquet('root/*/{dataset}/*.parquet', union_by_name=true)`` across all
        chains and add a ``chain_id`` column from the folder. The glob picks up chunks written
        after the refresh and never matches ``*.parquet.tmp``; a refresh is needed only for a
        new dataset, or when every file of a dataset was removed. A documented table
        (schema_docs) with no files gets an empty view with its documented columns, so queries
        and registered views can rely on it; an undocumented one without files gets no view.
        Also builds ``warehouse_files`` and ``runs`` (snapshots of the manifest and run records
        as of this refresh) and ``catalog_info``, then the registered views in order.

        The new catalog is built in a side file and renamed over the old one, so readers
        holding the old catalog open are never blocked and a crash leaves the old one intact.
        """
        import duckdb

        with self._writing("refresh catalog"):
            self.root.mkdir(parents=True, exist_ok=True)
            building = self.root / (CATALOG_NAME + ".building")
            for leftover in (building, Path(str(building) + ".wal")):
                leftover.unlink(missing_ok=True)
            summary = CatalogSummary(self.catalog_path)
            # A fixed side-file name: the next refresh removes what a killed one left.
            with atomic.replacing(self.catalog_path, tmp=building):
                self._build_catalog(duckdb.connect(str(building)), summary)
            Path(str(building) + ".wal").unlink(missing_ok=True)
            return summary

    def _build_catalog(self, con, summary: CatalogSummary) -> None:
        """Fill the new catalog on ``con`` (and close it): base views, bookkeeping tables,
        registered views, comments."""
        import duckdb

        try:
            self._build_base_views(con, summary)
            self._build_bookkeeping_tables(con)
            base = set(summary.views) | set(summary.empty_views)
            for name, view in self.registered_views().items():
                if name in base:
                    summary.skipped[name] = "a dataset of that name exists; the registered view is not created"
                    continue
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(name)} AS {view['sql']}")
                    summary.registered_views.append(name)
                except duckdb.Error as exc:
                    summary.skipped[name] = _first_line(exc)
                    log.warning("view %s was not created: %s", name, _first_line(exc))
            # One transaction for every COMMENT ON: each on its own is a transaction, and the
            # catalog's few hundred of them took 2.2 s of a 25 s ingest (benchmarks/README.md).
            con.execute("BEGIN TRANSACTION")
            self._add_comments(con, self.registered_views())
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()

    def relocate_catalog(self, built_for: str) -> None:
        """Rebuild a catalog that was built for ``built_for`` (the folder was copied or moved).

        The catalog's views name the Parquet files by absolute path (DuckDB's sandbox for
        ``postmortem sql`` only reads absolute paths under the warehouse), so a moved warehouse
        gets its views rebuilt for where it is now; the data files are not touched."""
        log.info("the warehouse moved from %s to %s; rebuilding its catalog", built_for, self.root)
        try:
            self.refresh_catalog()
        except OSError as exc:
            raise PostmortemError(
                f"the warehouse at {self.root} was moved from {built_for} and its catalog cannot be rebuilt here "
                f"({exc.strerror or exc}); copy the warehouse to a writable folder"
            ) from None

    def _build_base_views(self, con, summary: CatalogSummary) -> None:
        """One view per dataset; an output table gets two: ``{name}_all_runs`` (every run, with
        its ``run_id``) and ``{name}`` (the latest complete run of each incident, so a naive
        ``sum`` or ``count`` never adds up two runs of one incident)."""
        on_disk = self.datasets()
        documented = {d.name: d for d in schema_docs.all_tables()
                      if d.kind in (schema_docs.KIND_CHUNKED, schema_docs.KIND_OUTPUT)}
        latest = self.latest_complete_runs()
        for name in sorted(set(on_disk) | set(documented)):
            if name in RESERVED_NAMES:
                summary.skipped[name] = "the name is reserved for the catalog's own tables"
                continue
            kind = on_disk.get(name) or ("output" if documented[name].kind == schema_docs.KIND_OUTPUT else "chunk")
            target = f"{name}{ALL_RUNS_SUFFIX}" if kind == "output" else name
            if not self._build_one_view(con, summary, name, target, kind, name in on_disk, documented.get(name)):
                continue
            if kind == "output":
                runs = sorted((c, i, r) for (c, i), r in latest.items())
                runs += sorted((c, i, r) for fam in RUN_FAMILIES[1:] for (c, i), r in self.latest_complete_runs(fam).items())
                cond = (f"(chain_id, incident_id, run_id) IN ({', '.join(f'({c}, {quote_literal(i)}, {quote_literal(r)})' for c, i, r in runs)})"
                        if runs else "false")
                con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM {quote_ident(target)} WHERE {cond}")
                (summary.views if name in on_disk else summary.empty_views).append(name)

    def _build_one_view(self, con, summary: CatalogSummary, name: str, target: str, kind: str, on_disk: bool,
                        doc) -> bool:
        import duckdb

        if on_disk:
            sub = f"{OUTPUTS_DIR}/{name}" if kind == "output" else name
            glob = f"{self.root.as_posix()}/*/{sub}/*.parquet"
            source = (f"read_parquet({quote_literal(glob)}, union_by_name=true, "
                      "filename='_pm_file', hive_partitioning=false)")
            try:
                described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
                columns = {r[0]: r[1] for r in described}
                select = "* EXCLUDE (_pm_file)"
                if name in POOL_EVENT_TABLES and "address" in columns and "pool" not in columns:
                    select += " RENAME (address AS pool)"
                if "chain_id" not in columns:
                    pattern = f"/([0-9]+)/{sub}/[^/]+$"
                    select += f", CAST(regexp_extract(_pm_file, {quote_literal(pattern)}, 1) AS BIGINT) AS chain_id"
                if _has_unix_timestamp(columns):
                    select += f", {_TIMESTAMP_UTC_SQL}"
                con.execute(f"CREATE VIEW {quote_ident(target)} AS SELECT {select} FROM {source}")
            except duckdb.Error as exc:
                # One damaged or inconsistent dataset must not take the whole catalog down.
                summary.skipped[name] = f"{_first_line(exc)} (run verify on the warehouse)"
                log.warning("view %s was not created: %s", name, summary.skipped[name])
                return False
            summary.views.append(target)
            return True
        cols = [(c.name, c.sql_type) for c in doc.columns]
        if name in POOL_EVENT_TABLES and "pool" not in dict(cols):
            cols = [("pool" if c == "address" else c, t) for c, t in cols]
        extra = [("incident_id", "VARCHAR"), ("run_id", "VARCHAR")] if doc.kind == schema_docs.KIND_OUTPUT else []
        names = {c for c, _ in cols}
        cols += [c for c in extra if c[0] not in names]
        if "chain_id" not in names:
            cols.append(("chain_id", "BIGINT"))
        if _has_unix_timestamp(dict(cols)):
            cols.append((TIMESTAMP_UTC, "TIMESTAMP"))
        select = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in cols)
        con.execute(f"CREATE VIEW {quote_ident(target)} AS SELECT {select} WHERE false")
        summary.empty_views.append(target)
        return True

    def _build_bookkeeping_tables(self, con) -> None:
        files = []
        for r in self.records():
            files.append({
                "path": r.path, "file_kind": r.kind, "chain_id": r.chain_id, "dataset": r.dataset,
                "start_block": r.start, "end_block": r.end, "incident_id": r.incident_id, "run_id": r.run_id,
                "rows": r.rows, "bytes": r.bytes, "sha256": r.sha256, "schema_fingerprint": r.schema_fingerprint,
                "written_at": _parse_utc(r.written_at), "meta": dumps(r.meta),
            })
        runs = []
        for r in self.runs():
            runs.append({
                "run_id": r.get("run_id"), "kind": r.get("kind"), "tool_version": r.get("tool_version"),
                "started_at": _parse_utc(r.get("started_at")), "finished_at": _parse_utc(r.get("finished_at")),
                "duration_s": r.get("duration_s"), "host": r.get("host"),
                "params": dumps(r.get("params")), "summary": dumps(r.get("summary")),
            })
        for name, rows in (("warehouse_files", files), ("runs", runs)):
            arrow = pa.Table.from_pylist(rows, schema=schema_docs.get(name).arrow_schema())
            con.register("_pm_src", arrow)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _pm_src")
            con.unregister("_pm_src")
        con.execute("CREATE TABLE catalog_info (root VARCHAR, refreshed_at TIMESTAMP, tool_version VARCHAR)")
        con.execute("INSERT INTO catalog_info VALUES (?, ?, ?)",
                    [self.root.as_posix(), datetime.now(timezone.utc).replace(tzinfo=None), __version__])

    def _add_comments(self, con, views: dict[str, dict]) -> None:
        # Descriptions travel with the catalog, so duckdb_columns() explains any table.
        existing = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
        ).fetchall():
            existing.setdefault(table, set()).add(column)
        kinds = dict(con.execute(
            "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE database_name = current_database() "
            "AND NOT internal").fetchall())
        for table, kind in kinds.items():
            doc = schema_docs.get(table)
            description = doc.description if doc else views.get(table, {}).get("description")
            if doc is None and table.endswith(ALL_RUNS_SUFFIX):
                doc = schema_docs.get(table[: -len(ALL_RUNS_SUFFIX)])
                if doc is not None:
                    description = schema_docs.ALL_RUNS_DOC.format(name=doc.name, description=doc.description)
            if description:
                con.execute(f"COMMENT ON {kind} {quote_ident(table)} IS {quote_literal(description)}")
            for column in existing.get(table, ()):
                c = doc.column(column) if doc else None
                if c is None and doc is not None and column == "pool" and table in POOL_EVENT_TABLES:
                    c = doc.column("address")  # the same column, called pool in the view
                text = c.comment() if c else schema_docs.CATALOG_COLUMN_DOCS.get(column)
                if text:
                    con.execute(f"COMMENT ON COLUMN {quote_ident(table)}.{quote_ident(column)} IS {quote_literal(text)}")


def _parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def _has_unix_timestamp(columns: dict[str, str]) -> bool:
    return (columns.get("timestamp") in ("BIGINT", "INTEGER", "UBIGINT", "UINTEGER")
            and TIMESTAMP_UTC not in columns)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
