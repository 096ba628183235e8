"""Read-only SQL over the warehouse (``postmortem sql``).

A query can read the warehouse's tables and nothing else: it cannot write, delete, ATTACH,
install or load extensions, change settings, write files, or read files outside the warehouse.
Two independent layers enforce this, so a gap in one is covered by the other:

1. **Statement check** (``check_query``), before DuckDB runs anything: the text must parse as
   exactly one statement, of type SELECT (which includes WITH, FROM-first, DESCRIBE, SHOW,
   SUMMARIZE, UNPIVOT), EXPLAIN of such a statement (EXPLAIN ANALYZE executes its statement, so
   the inner statement is checked too), or a PRAGMA from a short list of read-only ones
   (``table_info``, ``show_tables``, ...). COPY, EXPORT, ATTACH, INSTALL/LOAD, SET/RESET/USE,
   CALL, CREATE/INSERT/UPDATE/DELETE/DROP/ALTER, transactions and PIVOTs whose columns come from
   the data (DuckDB runs those as several statements) are refused, as are the few table
   functions that change state (``checkpoint``, ``enable_logging``, ...).
2. **Engine settings**: the catalog is opened with ``read_only=True``; then
   ``allowed_directories`` is set to the warehouse, ``enable_external_access=false`` (so no file
   outside the warehouse can be read or written and no extension can be installed),
   extension auto-install/auto-load and Python replacement scans (which would expose the
   caller's Python variables as tables) are turned off, and ``lock_configuration=true`` so no
   query can turn any of it back on. The views' ``read_parquet`` over the warehouse keeps
   working because the warehouse is an allowed directory.

Results are written only where the caller says (``output``); DuckDB itself never writes a file.
JSON output: DECIMAL, HUGEINT, UHUGEINT and UBIGINT columns are JSON *strings* holding the exact
decimal text (uint256 amounts in wei or ray exceed 2^53, where JSON readers that use doubles
silently round), other integers are JSON numbers, BLOBs are ``0x``-prefixed hex, NaN and
infinities are null, times are ISO 8601.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from postmortem import atomic
from postmortem.errors import PostmortemError
from postmortem.sql_quote import quote_literal
from postmortem.warehouse import CATALOG_NAME

FORMATS = ("table", "csv", "json", "parquet")
# The format a result file's extension implies (``postmortem sql --out FILE``).
EXTENSION_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".txt": "table"}


def format_for_output(fmt: str | None, output: Path | str | None) -> str:
    """The output format: ``fmt`` if given, else the one ``output``'s extension implies, else
    ``table``. A ``fmt`` that contradicts a known extension is an error, not a silent choice."""
    implied = EXTENSION_FORMATS.get(Path(output).suffix.lower()) if output is not None else None
    if fmt is None:
        if output is None:
            return "table"
        if implied is None:
            raise PostmortemError(
                f"cannot tell the format from the name {Path(output).name}; end it in "
                f"{', '.join(EXTENSION_FORMATS)} or pass --format {'|'.join(FORMATS)}"
            )
        return implied
    if fmt not in FORMATS:
        raise PostmortemError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if implied is not None and implied != fmt:
        raise PostmortemError(
            f"--format {fmt} conflicts with the file name {Path(output).name}, which says {implied}; "
            f"drop --format or give the file a {fmt} name"
        )
    return fmt

# PRAGMAs that only report; everything else (enable_profiling, threads, ...) changes state.
ALLOWED_PRAGMAS = frozenset({
    "table_info", "show_tables", "show_tables_expanded", "show", "database_list", "database_size",
    "version", "platform", "storage_info", "functions", "collations", "user_agent", "metadata_info",
})

# Table functions that change the session or the database even inside a SELECT. Most are also
# stopped by lock_configuration or read_only; refusing them by name gives a clear sentence.
REFUSED_FUNCTIONS = frozenset({
    "checkpoint", "force_checkpoint", "enable_logging", "disable_logging", "truncate_duckdb_logs",
    "enable_profiling", "disable_profiling", "create_external_resource", "destroy_external_resource",
    "register_external_resource", "deregister_external_resource", "register_external_resource_type",
    "json_execute_serialized_sql",
})

_REFUSALS = {
    "INSERT": "postmortem sql is read-only: INSERT is refused; the warehouse is written only by ingest, replay and report",
    "UPDATE": "postmortem sql is read-only: UPDATE is refused; the warehouse is written only by ingest, replay and report",
    "DELETE": "postmortem sql is read-only: DELETE is refused; to withdraw data invalidate its chunk instead",
    "MERGE_INTO": "postmortem sql is read-only: MERGE is refused; the warehouse is written only by ingest, replay and report",
    "CREATE": "postmortem sql is read-only: CREATE is refused; use a WITH clause for a temporary result",
    "CREATE_FUNC": "postmortem sql is read-only: CREATE MACRO/FUNCTION is refused; use a WITH clause instead",
    "DROP": "postmortem sql is read-only: DROP is refused; the catalog is rebuilt by the warehouse itself",
    "ALTER": "postmortem sql is read-only: ALTER is refused; the catalog is rebuilt by the warehouse itself",
    "COPY": "writing files from SQL (COPY) is refused; save results with --out FILE instead",
    "COPY_DATABASE": "copying databases from SQL is refused; save results with --out FILE instead",
    "EXPORT": "EXPORT DATABASE is refused; save results with --out FILE instead",
    "ATTACH": "ATTACH is refused; queries may only read this warehouse's tables",
    "DETACH": "DETACH is refused; queries may only read this warehouse's tables",
    "LOAD": "installing or loading DuckDB extensions is refused; queries run with the built-in functions only",
    "EXTENSION": "installing or loading DuckDB extensions is refused; queries run with the built-in functions only",
    "SET": "changing settings (SET, RESET, USE, PRAGMA x = y, SET VARIABLE) is refused; "
           "queries run with the warehouse's fixed settings",
    "VARIABLE_SET": "SET VARIABLE is refused; put the value in the query or a WITH clause",
    "CALL": "CALL is refused; use SELECT * FROM function(...) instead",
    "TRANSACTION": "transactions are refused; run a single SELECT",
    "PREPARE": "PREPARE is refused; run the SELECT directly",
    "EXECUTE": "EXECUTE is refused; run the SELECT directly",
    "VACUUM": "postmortem sql is read-only: VACUUM is refused",
    "ANALYZE": "postmortem sql is read-only: ANALYZE is refused",
    "MULTI": "this PIVOT reads its column names from the data, which DuckDB runs as several statements and is "
             "refused; list the values explicitly, as in PIVOT t ON col IN (v1, v2) USING count(*)",
}


def check_query(query: str) -> str:
    """Return the single statement in ``query`` if it is allowed; else raise ``PostmortemError``.

    Allowed: SELECT (incl. WITH, DESCRIBE, SHOW, SUMMARIZE), EXPLAIN of an allowed statement,
    and the PRAGMAs in ``ALLOWED_PRAGMAS``. See the module docstring for the reasons.
    """
    if not query or not query.strip():
        raise PostmortemError("the query is empty; pass a SELECT statement")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise PostmortemError(f"SQL syntax error: {_clean(exc)}; check the query") from None
    if len(statements) != 1:
        raise PostmortemError(
            f"only one statement per query is allowed and this has {len(statements)}; run them one at a time"
        )
    _check_statement(statements[0].type.name, statements[0].query)
    return statements[0].query


def _check_statement(kind: str, text: str) -> None:
    if kind == "SELECT":
        _check_functions(text)
        return
    if kind == "EXPLAIN":
        inner = _explain_target(text)
        try:
            inner_statements = duckdb.extract_statements(inner)
        except duckdb.Error as exc:
            raise PostmortemError(f"SQL syntax error: {_clean(exc)}; check the query") from None
        if len(inner_statements) != 1:
            raise PostmortemError("EXPLAIN must wrap exactly one SELECT statement")
        _check_statement(inner_statements[0].type.name, inner_statements[0].query)
        return
    if kind == "PRAGMA":
        name = _pragma_name(text)
        if name not in ALLOWED_PRAGMAS:
            raise PostmortemError(
                f"PRAGMA {name or '?'} is refused; only read-only pragmas are allowed ({', '.join(sorted(ALLOWED_PRAGMAS))})"
            )
        return
    raise PostmortemError(_REFUSALS.get(kind, f"{kind} statements are refused; postmortem sql runs read-only SELECT queries"))


def _tokens(text: str) -> list[tuple[str, str]]:
    """(word, token type) pairs of ``text`` without comments, from DuckDB's own tokenizer."""
    raw = duckdb.tokenize(text)
    out = []
    for i, (start, kind) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else len(text)
        if kind == duckdb.token_type.comment:
            continue
        out.append((text[start:end].strip(), kind.name))
    return out


def _explain_target(text: str) -> str:
    """The statement an EXPLAIN wraps: skips EXPLAIN, ANALYZE and option lists like (FORMAT json)."""
    raw = duckdb.tokenize(text)
    depth = 0
    for i, (start, kind) in enumerate(raw):
        if kind == duckdb.token_type.comment:
            continue
        end = raw[i + 1][0] if i + 1 < len(raw) else len(text)
        word = text[start:end].strip()
        if depth > 0:  # inside an option list; only operators can open or close it
            if kind == duckdb.token_type.operator:
                depth += word.count("(") - word.count(")")
        elif word.lower() in ("explain", "analyze"):
            continue
        elif kind == duckdb.token_type.operator and word.startswith("("):
            depth = word.count("(") - word.count(")")
        else:
            return text[start:]
    raise PostmortemError("EXPLAIN must wrap a SELECT statement")


def _pragma_name(text: str) -> str:
    toks = [w for w, _ in _tokens(text)]
    return toks[1].lower() if len(toks) > 1 and toks[0].lower() == "pragma" else ""


def _check_functions(text: str) -> None:
    toks = _tokens(text)
    for (word, _kind), (nxt, _) in zip(toks, toks[1:]):
        # Quoted ("checkpoint") and qualified (system.main.checkpoint) names are the same function.
        name = word.strip('"').lower()
        if name in REFUSED_FUNCTIONS and nxt.startswith("("):
            raise PostmortemError(f"the function {name}() is refused because it changes the database or session state")


# --- running --------------------------------------------------------------------------------------


def connect_read_only(warehouse_root: Path | str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the warehouse catalog that can read the warehouse and nothing else."""
    root = Path(warehouse_root).expanduser()
    if not root.is_dir():
        raise PostmortemError(
            f"no warehouse at {root}; run `postmortem ingest` first or pass --warehouse with the right folder"
        )
    root = root.resolve()
    catalog = root / CATALOG_NAME
    if not catalog.exists():
        raise PostmortemError(
            f"the warehouse at {root} has no catalog yet; ingest data first (ingest builds {CATALOG_NAME})"
        )
    try:
        con = duckdb.connect(
            str(catalog), read_only=True,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
    except duckdb.Error as exc:
        raise PostmortemError(f"cannot open {catalog}: {_clean(exc)}; refresh the catalog (re-run ingest)") from None
    try:
        # Order matters: allowed_directories can only be set while external access is still on,
        # and lock_configuration must come last.
        con.execute("SET python_enable_replacements = false")
        con.execute(f"SET allowed_directories = [{quote_literal(root.as_posix() + '/')}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        built_for = con.execute("SELECT root FROM catalog_info").fetchall()[0][0]
    except duckdb.Error as exc:
        con.close()
        raise PostmortemError(f"the catalog {catalog} is damaged or outdated ({_clean(exc)}); refresh it (re-run ingest)") from None
    if built_for != root.as_posix():
        con.close()  # copied or moved: rebuild its views for this folder, then open again
        from postmortem.warehouse import Warehouse

        Warehouse(root).relocate_catalog(built_for)
        return connect_read_only(root)
    return con


def run_sql(warehouse_root: Path | str, query: str, fmt: str = "table", output: Path | str | None = None) -> str | None:
    """Run one read-only query over the warehouse and return or save the result.

    ``fmt``: ``table`` (aligned text), ``csv``, ``json`` (array of objects; exact big integers
    as strings, see the module docstring) or ``parquet`` (needs ``output``). With ``output``
    the result is written to that file (atomically, never inside the warehouse) and None is
    returned; otherwise the text is returned.
    """
    if fmt not in FORMATS:
        raise PostmortemError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out_path = _check_output(warehouse_root, fmt, output)
    statement = check_query(query)
    con = connect_read_only(warehouse_root)
    try:
        if fmt == "parquet":
            table = con.sql(statement).to_arrow_table()  # Arrow keeps DECIMAL(38,0) exact
            with atomic.replacing(out_path) as tmp:  # a reader (or a crash) never sees half a result file
                pq.write_table(table, tmp, compression="zstd")
            return None
        cur = con.execute(statement)
        if cur.description is None:
            raise PostmortemError("the statement returned no result; run a SELECT")
        names = [d[0] for d in cur.description]
        types = [str(d[1]) for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        raise _explain_error(exc, con) from None
    finally:
        con.close()
    if fmt == "table":
        text = format_table(names, types, rows)
    elif fmt == "csv":
        text = format_csv(names, rows)
    else:
        text = format_json(names, types, rows)
    if out_path is None:
        return text
    atomic.write_text(out_path, text)
    return None


def _check_output(warehouse_root: Path | str, fmt: str, output: Path | str | None) -> Path | None:
    if output is None:
        if fmt == "parquet":
            raise PostmortemError("parquet output is binary; pass --output FILE (or --out FILE) to save it")
        return None
    path = Path(output).expanduser().resolve()
    root = Path(warehouse_root).expanduser().resolve()
    if path == root or root in path.parents:
        raise PostmortemError(f"refusing to write {path} inside the warehouse; choose an --out path outside {root}")
    if not path.parent.is_dir():
        raise PostmortemError(f"the folder {path.parent} does not exist; create it or choose another --out path")
    if path.is_dir():
        raise PostmortemError(f"{path} is a folder; pass a file name to --out")
    return path


def _catalog_names(con, what: str) -> list[str]:
    """Names of the catalog's tables and views (``what="table"``) or of all their columns."""
    sql = ("SELECT DISTINCT table_name FROM information_schema.tables" if what == "table"
           else "SELECT DISTINCT column_name FROM information_schema.columns")
    try:
        return [r[0] for r in con.execute(sql).fetchall() if r[0] != "catalog_info"]
    except duckdb.Error:
        return []


def _did_you_mean(name: str, con, what: str) -> str:
    if con is None:
        return ""
    names = _catalog_names(con, what)
    best = difflib.get_close_matches(name, names, n=1, cutoff=0.6) or difflib.get_close_matches(
        name.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
    return f"did you mean {best[0]}? " if best else ""


def _explain_error(exc: duckdb.Error, con=None) -> PostmortemError:
    msg = _clean(exc)
    m = re.search(r'Table with name (\S+) does not exist', msg)
    if m:
        name = m.group(1)
        return PostmortemError(f"no table named {name}; {_did_you_mean(name, con, 'table')}"
                               "run `postmortem schema` to list tables")
    m = re.search(r'Referenced column "([^"]+)" not found|does not have a column named "([^"]+)"', msg)
    if m:
        name = m.group(1) or m.group(2)
        return PostmortemError(f"no column named {name}; {_did_you_mean(name, con, 'column')}"
                               "run `postmortem schema TABLE` to list a table's columns")
    m = re.search(r'Table Function with name (\S+) does not exist', msg)
    if m:
        return PostmortemError(f"no table function named {m.group(1)}; check the name in the DuckDB documentation")
    if isinstance(exc, duckdb.ParserException):
        return PostmortemError(f"SQL syntax error: {msg}; check the query")
    if isinstance(exc, duckdb.PermissionException):
        m = re.search(r'"([^"]+)"', msg)
        what = f" ({m.group(1)})" if m else ""
        return PostmortemError(
            f"the query tried to access a file outside the warehouse{what}, which is refused; query the warehouse's tables instead"
        )
    if isinstance(exc, duckdb.BinderException) and "not found" in msg:
        return PostmortemError(f"{msg}; run `postmortem schema TABLE` to list a table's columns")
    if "No files found that match the pattern" in msg:
        return PostmortemError("a dataset's files were removed since the catalog was built; refresh the catalog (re-run ingest)")
    if isinstance(exc, duckdb.InvalidInputException) and "configuration has been locked" in msg:
        return PostmortemError("changing settings is refused; queries run with the warehouse's fixed settings")
    return PostmortemError(f"the query failed: {msg}")


def _clean(exc: BaseException) -> str:
    """DuckDB's message on one line, without its 'Catalog Error:'-style prefix and hints."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = re.sub(r"^[A-Za-z ]+ Error: ", "", first)
    return first.rstrip(".!")


# --- formatting -------------------------------------------------------------------------------------

_EXACT_STRING_TYPES = ("DECIMAL", "HUGEINT", "UHUGEINT", "UBIGINT")
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def _text(value: Any) -> str:
    """A value as exact human text (no float rounding of integers or decimals, hex for bytes)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # str() would give '0E-18' style exponents
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_jsonable(value), separators=(",", ":"))
    return str(value)


def _jsonable(value: Any) -> Any:
    """A value as JSON: integers exact (never through float), decimals as strings, bytes as hex."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)  # UUID, timedelta, ...


def format_json(names: list[str], types: list[str], rows: list[tuple]) -> str:
    """A JSON array of objects.

    DECIMAL, HUGEINT, UHUGEINT and UBIGINT columns come out as strings with the exact decimal
    text, whatever the value, so a column has one JSON type and no reader rounds a uint256
    through a double. Other integers are JSON numbers written exactly.
    """
    exact = [t.upper().startswith(_EXACT_STRING_TYPES) for t in types]
    objs = [
        {n: (_text(v) if e and v is not None else _jsonable(v)) for n, v, e in zip(names, row, exact)}
        for row in rows
    ]
    return json.dumps(objs, indent=2, ensure_ascii=False) + "\n"


def format_csv(names: list[str], rows: list[tuple]) -> str:
    """CSV with a header row; NULL is an empty field, numbers exact, bytes as 0x hex."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_text(v) for v in row])
    return buf.getvalue()


def format_table(names: list[str], types: list[str], rows: list[tuple]) -> str:
    """Aligned text: numbers right-aligned, NULL shown as NULL, a row count at the end."""
    cells = [["NULL" if v is None else _text(v) for v in row] for row in rows]
    numeric = [t.upper().startswith(_NUMERIC_TYPES) for t in types]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"
