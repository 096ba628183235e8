"""Read-only SQL over a real warehouse: what runs, what is refused, and every output format."""

from __future__ import annotations

import re

import csv
import io
import json
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from postmortem.errors import PostmortemError
from postmortem.sql import check_query, run_sql
from postmortem.warehouse import Warehouse

from helpers.warehouse_tables import logs_table

MAX_DEC = 10**38 - 1


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    w = Warehouse(tmp_path_factory.mktemp("sql") / "warehouse")
    w.write_chunk(1, "logs", 0, 9, logs_table(5))
    w.write_chunk(1, "amounts", 0, 9, pa.table({
        "block_number": pa.array([1, 2, 3], pa.int64()),
        "amount_wei": pa.array([Decimal(MAX_DEC), Decimal(2**53 + 1), None], pa.decimal128(38, 0)),
        "ratio": pa.array([0.5, float("nan"), None], pa.float64()),
        "note": pa.array(["a,b", 'quote"d', None]),
    }))
    w.refresh_catalog()
    return w


def test_select_sees_big_decimals_exactly(wh):
    out = run_sql(wh.root, "SELECT amount_wei::VARCHAR AS v FROM amounts ORDER BY block_number", "csv")
    assert list(csv.reader(io.StringIO(out))) == [["v"], [str(MAX_DEC)], [str(2**53 + 1)], [""]]


def test_table_format_is_aligned(wh):
    out = run_sql(wh.root, "SELECT block_number, amount_wei, note FROM amounts ORDER BY block_number")
    lines = out.splitlines()
    assert lines[0].split() == ["block_number", "amount_wei", "note"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert str(MAX_DEC) in lines[2] and "NULL" in lines[4]
    assert lines[-1] == "(3 rows)"
    # numbers right-aligned: every amount ends in the same column
    ends = {line.index(v) + len(v) for line, v in zip(lines[2:4], [str(MAX_DEC), str(2**53 + 1)])}
    assert len(ends) == 1


def test_csv_format(wh):
    out = run_sql(wh.root, "SELECT block_number, amount_wei, ratio, note FROM amounts ORDER BY block_number", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["block_number", "amount_wei", "ratio", "note"]
    assert rows[1] == ["1", str(MAX_DEC), "0.5", "a,b"]
    assert rows[2][3] == 'quote"d' and rows[3] == ["3", "", "", ""]


def test_json_big_integers_are_exact_strings_never_floats(wh):
    out = run_sql(wh.root, "SELECT block_number, amount_wei, ratio, amount_wei::HUGEINT AS h, "
                           "amount_wei::UBIGINT // 1 AS u FROM amounts WHERE block_number > 1 "
                           "UNION ALL SELECT 1, " + str(MAX_DEC) + ", 0.5, " + str(MAX_DEC) + ", NULL "
                           "ORDER BY block_number", "json")
    data = json.loads(out)
    assert data[0]["block_number"] == 1  # small integer types stay numbers
    assert data[0]["amount_wei"] == str(MAX_DEC) and data[0]["h"] == str(MAX_DEC)
    assert data[1]["amount_wei"] == "9007199254740993"  # 2^53 + 1: a double would say ...992
    assert data[1]["ratio"] is None  # NaN is not JSON
    assert data[2]["amount_wei"] is None
    assert data[1]["u"] == "9007199254740993" and data[0]["u"] is None


def test_json_blobs_are_hex(wh):
    data = json.loads(run_sql(wh.root, "SELECT topic0, topic1 FROM logs ORDER BY log_index LIMIT 2", "json"))
    assert data[1]["topic0"] == "0x" + "01" * 32 and data[1]["topic1"] is None


def test_output_files_each_format(wh, tmp_path):
    q = "SELECT block_number, amount_wei FROM amounts ORDER BY block_number"
    for fmt in ("table", "csv", "json"):
        target = tmp_path / f"out.{fmt}"
        assert run_sql(wh.root, q, fmt, output=target) is None
        assert target.read_text() == run_sql(wh.root, q, fmt)
    target = tmp_path / "out.parquet"
    assert run_sql(wh.root, q, "parquet", output=target) is None
    t = pq.read_table(target)
    assert t.schema.field("amount_wei").type == pa.decimal128(38, 0)
    assert t.column("amount_wei")[0].as_py() == Decimal(MAX_DEC)
    assert not list(tmp_path.glob(".*.tmp"))


def test_output_rules(wh, tmp_path):
    with pytest.raises(PostmortemError, match="parquet output is binary; pass --output FILE"):
        run_sql(wh.root, "SELECT 1", "parquet")
    with pytest.raises(PostmortemError, match="inside the warehouse"):
        run_sql(wh.root, "SELECT 1", "csv", output=wh.root / "1" / "logs" / "x.parquet")
    with pytest.raises(PostmortemError, match="does not exist"):
        run_sql(wh.root, "SELECT 1", "csv", output=tmp_path / "no" / "x.csv")
    with pytest.raises(PostmortemError, match="unknown format"):
        run_sql(wh.root, "SELECT 1", "xml")


def test_read_only_statements_that_are_allowed(wh):
    for q in ["WITH x AS (SELECT count(*) AS n FROM logs) SELECT n FROM x",
              "FROM logs SELECT count(*)",
              "DESCRIBE logs", "SHOW TABLES", "SUMMARIZE logs",
              "PRAGMA table_info('logs')", "PRAGMA show_tables",
              "EXPLAIN SELECT * FROM logs", "EXPLAIN ANALYZE SELECT count(*) FROM logs",
              "SELECT * FROM warehouse_files", "SELECT * FROM runs",
              "PIVOT amounts ON block_number IN (1, 2) USING count(*)",
              f"SELECT count(*) FROM read_parquet('{wh.root}/1/logs/*.parquet')",  # inside the warehouse
              "SELECT 1;"]:
        run_sql(wh.root, q)


REFUSED = [
    ("SELECT * FROM read_csv('/etc/passwd')", "outside the warehouse (/etc/passwd)"),
    ("SELECT * FROM read_text('/etc/hostname')", "outside the warehouse"),
    ("SELECT * FROM glob('/etc/*')", "outside the warehouse"),
    ("SELECT * FROM 'WAREHOUSE/../outside.parquet'", "outside the warehouse"),
    ("SELECT 1; DROP VIEW logs", "only one statement per query"),
    ("SELECT 1; SELECT 2", "only one statement per query"),
    ("COPY (SELECT 1) TO 'OUTSIDE'", "writing files from SQL (COPY) is refused"),
    ("COPY (SELECT 1) TO 'WAREHOUSE/x.csv'", "writing files from SQL (COPY) is refused"),
    ("COPY logs TO 'OUTSIDE' (FORMAT parquet)", "COPY"),
    ("EXPORT DATABASE 'OUTSIDE'", "EXPORT DATABASE is refused"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'WAREHOUSE/x.csv'", "COPY"),
    ("EXPLAIN /* hidden */ ANALYZE (FORMAT json) COPY (SELECT 1) TO 'WAREHOUSE/x.csv'", "COPY"),
    ("SET enable_external_access = true", "changing settings"),
    ("SET allowed_directories = ['/']", "changing settings"),
    ("RESET lock_configuration", "changing settings"),
    ("USE memory", "changing settings"),
    ("ATTACH 'OUTSIDE' AS other", "ATTACH is refused"),
    ("ATTACH ':memory:' AS scratch", "ATTACH is refused"),
    ("DETACH catalog", "DETACH is refused"),
    ("INSTALL httpfs", "extensions is refused"),
    ("LOAD httpfs", "extensions is refused"),
    ("FORCE INSTALL sqlite", "extensions is refused"),
    ("CALL checkpoint()", "CALL is refused"),
    ("CHECKPOINT", "CALL is refused"),
    ("SELECT * FROM checkpoint()", "checkpoint() is refused"),
    ("SELECT * FROM force_checkpoint()", "force_checkpoint() is refused"),
    ("SELECT * FROM enable_logging()", "enable_logging() is refused"),
    ('SELECT * FROM main . "enable_logging" ()', "enable_logging() is refused"),
    ("SELECT * FROM system.main.checkpoint()", "checkpoint() is refused"),
    ("SELECT * FROM truncate_duckdb_logs()", "truncate_duckdb_logs() is refused"),
    ("PRAGMA enable_profiling", "PRAGMA enable_profiling is refused"),
    ("PRAGMA threads = 1", "changing settings"),
    ("PRAGMA version; PRAGMA enable_profiling", "only one statement"),
    ("DROP VIEW logs", "DROP is refused"),
    ("CREATE TABLE t AS SELECT 1", "CREATE is refused"),
    ("CREATE TEMP TABLE t AS SELECT 1", "CREATE is refused"),
    ("CREATE OR REPLACE VIEW logs AS SELECT 1", "CREATE is refused"),
    ("CREATE MACRO m(x) AS x + 1", "CREATE"),
    ("INSERT INTO warehouse_files (path) VALUES ('x')", "INSERT is refused"),
    ("UPDATE warehouse_files SET rows = 0", "UPDATE is refused"),
    ("DELETE FROM warehouse_files", "DELETE is refused"),
    ("ALTER VIEW logs RENAME TO l2", "ALTER is refused"),
    ("BEGIN TRANSACTION", "transactions are refused"),
    ("PREPARE p AS SELECT 1", "PREPARE is refused"),
    ("VACUUM", "VACUUM is refused"),
    ("SET VARIABLE x = 1", "changing settings"),
    ("PIVOT amounts ON block_number USING count(*)", "list the values explicitly"),
    ("CREATE TABLE t AS (PIVOT amounts ON block_number USING count(*))", "refused"),
    ("", "the query is empty"),
]


@pytest.mark.parametrize("query,expected", REFUSED, ids=[q[:50] or "empty" for q, _ in REFUSED])
def test_unsafe_queries_are_refused_in_one_sentence(wh, tmp_path, query, expected):
    outside = tmp_path / "outside"
    query = query.replace("WAREHOUSE", str(wh.root)).replace("OUTSIDE", str(outside))
    with pytest.raises(PostmortemError) as err:
        run_sql(wh.root, query)
    msg = str(err.value)
    assert expected in msg
    assert "\n" not in msg and msg.count(". ") == 0
    assert not outside.exists() and not (wh.root / "x.csv").exists()
    # and the warehouse is untouched
    assert run_sql(wh.root, "SELECT count(*) AS n FROM logs", "csv") == "n\n3\n"


def test_python_variables_are_not_tables(wh):
    import pandas as pd

    secret_frame = pd.DataFrame({"secret": ["s3cr3t"]})  # DuckDB would scan this by name
    assert len(secret_frame) == 1
    with pytest.raises(PostmortemError, match="no table named secret_frame"):
        run_sql(wh.root, "SELECT * FROM secret_frame")


def test_engine_settings_stand_even_without_the_statement_check(wh, tmp_path):
    # The second layer alone: a connection as run_sql opens it refuses outside files and changes.
    import duckdb

    from postmortem.sql import connect_read_only

    con = connect_read_only(wh.root)
    try:
        for q in ["SELECT * FROM read_csv('/etc/passwd')", f"COPY (SELECT 1) TO '{tmp_path}/x.csv'",
                  f"ATTACH '{tmp_path}/y.db'", "SET enable_external_access = true", "INSTALL httpfs",
                  "DROP VIEW logs", "SELECT * FROM enable_logging()"]:
            with pytest.raises(duckdb.Error):
                con.execute(q)
        assert con.execute("SELECT count(*) FROM logs").fetchall() == [(3,)]
    finally:
        con.close()
    assert not list(tmp_path.iterdir())


def test_check_query_returns_the_statement():
    assert check_query("  SELECT 1 ;").strip().rstrip(";").strip() == "SELECT 1"


# --- errors with the fix ----------------------------------------------------------------------------


def test_unknown_table(wh):
    with pytest.raises(PostmortemError, match=r"no table named nope; run `postmortem schema` to list tables"):
        run_sql(wh.root, "SELECT * FROM nope")


def test_unknown_column(wh):
    with pytest.raises(PostmortemError, match=r"nope.*run `postmortem schema TABLE`"):
        run_sql(wh.root, "SELECT nope FROM logs")


def test_syntax_error(wh):
    with pytest.raises(PostmortemError, match=r"SQL syntax error: .*; check the query"):
        run_sql(wh.root, "SELEC 1")


def test_missing_warehouse_and_missing_catalog(tmp_path):
    with pytest.raises(PostmortemError, match="no warehouse at .*pass --warehouse"):
        run_sql(tmp_path / "nowhere", "SELECT 1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PostmortemError, match="has no catalog yet"):
        run_sql(tmp_path / "empty", "SELECT 1")


def test_moved_warehouse_answers_without_a_refresh(wh, tmp_path):
    # A warehouse is a folder you can move: its catalog is rebuilt for the new place on open.
    moved = tmp_path / "moved"
    shutil.copytree(wh.root, moved)
    assert run_sql(moved, "SELECT count(*) AS n FROM logs", "csv") == "n\n3\n"
    assert run_sql(moved, "SELECT root FROM catalog_info", "csv") == f"root\n{moved.resolve().as_posix()}\n"


def test_dataset_files_removed_after_refresh(tmp_path):
    w = Warehouse(tmp_path / "w")
    w.write_chunk(1, "amounts", 0, 9, pa.table({"x": [1]}))
    w.refresh_catalog()
    w.invalidate(1, "amounts", 0, 9)
    with pytest.raises(PostmortemError, match="refresh the catalog"):
        run_sql(w.root, "SELECT * FROM amounts")


# --- postmortem schema ------------------------------------------------------------------------------


def test_describe_lists_documented_and_actual_tables(wh):
    from postmortem import schema_docs

    text = schema_docs.describe()
    assert "logs " in text and "blocks " in text and "Run `postmortem schema TABLE`" in text
    logs = schema_docs.describe("logs")
    assert "block_number       BIGINT" in logs and "[block number]" in logs and "chain_id" in logs

    actual = schema_docs.describe(warehouse_root=wh.root)
    assert "amounts" in actual and "(undocumented)" in actual and "catalog_info" in actual
    amounts = schema_docs.describe("amounts", wh.root)
    assert "amount_wei" in amounts and "DECIMAL(38,0)" in amounts
    with pytest.raises(PostmortemError, match="no table named nope; run `postmortem schema`"):
        schema_docs.describe("nope", wh.root)


def test_describe_shows_registered_view_descriptions(tmp_path):
    from postmortem import schema_docs

    w = Warehouse(tmp_path / "w")
    w.write_chunk(1, "amounts", 0, 9, pa.table({"amount_wei": pa.array([Decimal(10**18)], pa.decimal128(38, 0))}))
    w.refresh_catalog()
    w.register_view("amounts_eth", "SELECT amount_wei / 1e18 AS amount_eth FROM amounts", "Amounts in ETH.")
    # Column widths follow the longest registered name, so match any run of spaces.
    assert re.search(r"^amounts_eth +Amounts in ETH\.$", schema_docs.describe(warehouse_root=w.root), re.M)
    assert "Amounts in ETH." in schema_docs.describe("amounts_eth", w.root)
    assert run_sql(w.root, "SELECT amount_eth FROM amounts_eth", "csv") == "amount_eth\n1.0\n"


def test_schema_docs_types_match_what_duckdb_reads(tmp_path):
    # The documented SQL type of every column must be what DuckDB shows for the written Arrow type.
    from postmortem import schema_docs

    w = Warehouse(tmp_path / "w")
    w.write_chunk(1, "logs", 0, 9, logs_table(5))
    w.refresh_catalog()
    rows = run_sql(w.root, "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'logs'", "json")
    actual = {r["column_name"]: r["data_type"] for r in json.loads(rows)}
    for c in schema_docs.get("logs").columns:
        assert actual[c.name] == c.sql_type, c.name
