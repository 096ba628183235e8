"""The warehouse: chunk files, kill-safe manifest, verify/repair, the writer lock, run records, catalog.

Everything here uses real Parquet files, real DuckDB and real processes (for the lock and kill -9).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from postmortem import schema_docs
from postmortem.errors import PostmortemError
from postmortem.warehouse import Warehouse

from helpers.warehouse_tables import logs_table

MAX_DEC = Decimal(10**38 - 1)


def amounts_table(start: int, values: list[Decimal]) -> pa.Table:
    return pa.table({
        "block_number": pa.array(range(start, start + len(values)), pa.int64()),
        "amount_wei": pa.array(values, pa.decimal128(38, 0)),
    })


def query(wh: Warehouse, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def manifest_lines(wh: Warehouse) -> list[dict]:
    return [json.loads(line) for line in wh.manifest_path.read_text().splitlines() if line.strip()]


def run_python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


# --- chunks and the manifest ------------------------------------------------------------------------


def test_creating_a_warehouse_touches_nothing(tmp_path):
    Warehouse(tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_write_chunk_layout_manifest_and_embedded_metadata(wh):
    rec = wh.write_chunk(1, "logs", 100, 199, logs_table(150), {"end_block_hash": "0xbeef"})
    path = wh.root / "1" / "logs" / "1__logs__000000100_to_000000199.parquet"
    assert path.exists() and rec.path == "1/logs/1__logs__000000100_to_000000199.parquet"
    assert not list(path.parent.glob("*.tmp"))

    (line,) = manifest_lines(wh)
    assert line["op"] == "put" and line["dataset"] == "logs" and (line["start"], line["end"]) == (100, 199)
    assert line["rows"] == 3 and line["bytes"] == path.stat().st_size
    import hashlib
    assert line["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert line["meta"] == {"end_block_hash": "0xbeef"} and len(line["schema_fingerprint"]) == 16

    # The file describes itself too.
    meta = json.loads(pq.read_schema(path).metadata[b"postmortem"])
    assert meta["dataset"] == "logs" and meta["start"] == 100 and meta["meta"]["end_block_hash"] == "0xbeef"

    assert wh.is_complete(1, "logs", 100, 199) and wh.is_complete(1, "logs", 100, 199, verify=True)
    assert not wh.is_complete(1, "logs", 200, 299)
    assert [r.start for r in wh.completed_chunks(1, "logs")] == [100]
    # A fresh object (another process) reads the same state from disk.
    assert Warehouse(wh.root).is_complete(1, "logs", 100, 199)


def test_is_complete_needs_the_file_and_its_size(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    path = wh.chunk_path(1, "logs", 0, 9)
    with open(path, "ab") as f:
        f.write(b"x")
    assert not wh.is_complete(1, "logs", 0, 9)  # size differs: cheap check catches it
    path.unlink()
    assert not wh.is_complete(1, "logs", 0, 9)
    assert wh.completed_chunks(1, "logs") == []


def test_verify_flag_rehashes(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    path = wh.chunk_path(1, "logs", 0, 9)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    assert wh.is_complete(1, "logs", 0, 9)
    assert not wh.is_complete(1, "logs", 0, 9, verify=True)


def test_rewrite_same_range_replaces_and_withdraws_first(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5, n=1))
    rec = wh.write_chunk(1, "logs", 0, 9, logs_table(5, n=4))
    assert rec.rows == 4 and wh.record_for(1, "logs", 0, 9).rows == 4
    assert [line["op"] for line in manifest_lines(wh)] == ["put", "invalidate", "put"]


def test_overlapping_chunk_is_refused(wh):
    wh.write_chunk(1, "logs", 0, 99, logs_table(5))
    with pytest.raises(PostmortemError, match="overlaps the completed chunk 0..99"):
        wh.write_chunk(1, "logs", 50, 149, logs_table(60))
    wh.write_chunk(1, "logs", 100, 199, logs_table(150))  # adjacent is fine
    wh.write_chunk(10, "logs", 50, 149, logs_table(60))  # another chain is fine


def test_bad_names_and_ranges_are_refused(wh):
    t = amounts_table(0, [Decimal(1)])
    for bad in ("Logs", "a__b", "outputs", "runs", "../x", ""):
        with pytest.raises(PostmortemError, match="dataset name"):
            wh.write_chunk(1, bad, 0, 1, t)
    with pytest.raises(PostmortemError, match="block range"):
        wh.write_chunk(1, "amounts", 5, 4, t)
    with pytest.raises(PostmortemError, match="chain id"):
        wh.write_chunk(0, "amounts", 0, 4, t)
    assert not wh.root.exists() or not list(wh.root.rglob("*.parquet"))


def test_documented_schema_is_enforced(wh):
    wrong = logs_table(1).set_column(0, "block_number", pa.array([1, 1, 1], pa.int32()))
    with pytest.raises(PostmortemError, match="block_number is int32, documented as int64"):
        wh.write_chunk(1, "logs", 0, 9, wrong)
    with pytest.raises(PostmortemError, match="column topic0 .* is missing"):
        wh.write_chunk(1, "logs", 0, 9, logs_table(1).drop(["topic0"]))


def test_decimal256_is_refused_because_duckdb_would_round_it(wh):
    t = pa.table({"v": pa.array([Decimal(10**50)], pa.decimal256(76, 0))})
    with pytest.raises(PostmortemError, match="decimal256.*lose precision"):
        wh.write_chunk(1, "big", 0, 9, t)
    assert not list(wh.root.rglob("*.parquet*")) if wh.root.exists() else True


def test_decimal_38_digits_are_exact_in_sql(wh):
    wh.write_chunk(1, "amounts", 0, 9, amounts_table(0, [MAX_DEC, Decimal(-(10**38 - 1)), Decimal(1), Decimal(0)]))
    wh.refresh_catalog()
    rows = query(wh, "SELECT amount_wei::VARCHAR, typeof(amount_wei) FROM amounts ORDER BY block_number")
    assert rows[0] == ("99999999999999999999999999999999999999", "DECIMAL(38,0)")
    assert rows[1][0] == "-99999999999999999999999999999999999999"
    # Integer arithmetic stays exact too (HUGEINT holds 38 digits).
    assert query(wh, "SELECT (max(amount_wei) - 1)::VARCHAR FROM amounts") == [("99999999999999999999999999999999999998",)]


# --- kill safety ----------------------------------------------------------------------------------------


def test_torn_manifest_line_is_ignored_and_next_append_starts_clean(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    with open(wh.manifest_path, "ab") as f:  # a writer killed halfway through its line
        f.write(b'{"v":1,"op":"put","path":"1/logs/1__logs__0000000')
    fresh = Warehouse(wh.root)
    assert fresh.is_complete(1, "logs", 0, 9)
    fresh.write_chunk(1, "logs", 10, 19, logs_table(15))
    again = Warehouse(wh.root)
    assert again.is_complete(1, "logs", 0, 9) and again.is_complete(1, "logs", 10, 19)
    problems = again.verify()
    assert [p.kind for p in problems] == ["damaged_manifest_line"]
    assert "manifest line 2 is damaged" in problems[0].description
    again.repair(problems)
    assert Warehouse(wh.root).verify() == []
    assert Warehouse(wh.root).is_complete(1, "logs", 10, 19)


def test_leftover_tmp_is_invisible_to_sql_and_reported(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    tmp = wh.chunk_path(1, "logs", 10, 19).with_suffix(".parquet.tmp")
    pq.write_table(logs_table(15, n=7), tmp)  # a complete-looking but unrenamed file
    wh.refresh_catalog()
    assert query(wh, "SELECT count(*) FROM logs") == [(3,)]
    assert not wh.is_complete(1, "logs", 10, 19)
    (p,) = wh.verify()
    assert p.kind == "stray_tmp" and p.path.endswith(".parquet.tmp")
    assert wh.repair([p]) == [f"deleted {p.path} (stray tmp)"]
    assert not tmp.exists()


def test_file_renamed_but_not_recorded_counts_as_not_done(wh):
    # Crash between the rename and the manifest line: the file is there but unrecorded.
    path = wh.chunk_path(1, "logs", 0, 9)
    path.parent.mkdir(parents=True)
    pq.write_table(logs_table(5), path)
    assert not wh.is_complete(1, "logs", 0, 9)
    assert [p.kind for p in wh.verify()] == ["unrecorded_file"]
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))  # the re-run rewrites and records it
    assert wh.is_complete(1, "logs", 0, 9, verify=True) and wh.verify() == []


KILL_WRITER = """
import sys
import pyarrow as pa
from postmortem.warehouse import Warehouse
wh = Warehouse(sys.argv[1])
with wh.lock("kill -9 test writer"):
    for i in range(10_000):
        if wh.is_complete(1, "stress", i * 10, i * 10 + 9):
            continue
        t = pa.table({"x": pa.array(range(i * 20_000, (i + 1) * 20_000), pa.int64())})
        wh.write_chunk(1, "stress", i * 10, i * 10 + 9, t, {"i": i})
        print(i, flush=True)
"""


def test_kill_9_at_random_points_never_leaves_a_bad_complete_chunk(wh):
    import random

    rng = random.Random(7)
    for _round in range(4):
        proc = run_python(KILL_WRITER, str(wh.root))
        proc.stdout.readline()  # at least one chunk done in this round
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    fresh = Warehouse(wh.root)
    with fresh.lock("after the kills"):  # the killed holder's lock is free again
        assert "kill -9 test writer" in (fresh.lock_note or "")
    done = fresh.completed_chunks(1, "stress")
    assert len(done) >= 4
    for rec in done:  # everything the manifest vouches for is intact
        assert fresh.is_complete(1, "stress", rec.start, rec.end, verify=True)
        assert pq.read_table(fresh.root / rec.path).num_rows == 20_000
    # Whatever else is there is leftovers a re-run or repair deals with, never a damaged chunk.
    assert {p.kind for p in fresh.verify()} <= {"stray_tmp", "unrecorded_file", "damaged_manifest_line"}
    fresh.repair()
    assert fresh.verify() == []


# --- verify and repair ------------------------------------------------------------------------------------


def test_verify_reports_each_kind_of_damage_in_one_sentence(wh):
    for i in range(4):
        wh.write_chunk(1, "logs", i * 10, i * 10 + 9, logs_table(i * 10 + 1))
    wh.chunk_path(1, "logs", 0, 9).unlink()  # missing
    changed = wh.chunk_path(1, "logs", 10, 19)  # valid Parquet, other content
    pq.write_table(logs_table(11, n=5), changed)
    truncated = wh.chunk_path(1, "logs", 20, 29)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    stray = wh.chunk_path(1, "logs", 40, 49).with_suffix(".parquet.tmp")
    stray.write_bytes(b"half a file")
    unrecorded = wh.chunk_path(1, "logs", 50, 59)
    pq.write_table(logs_table(55), unrecorded)

    problems = {p.kind: p for p in wh.verify()}
    assert set(problems) == {"missing_file", "hash_mismatch", "unreadable", "stray_tmp", "unrecorded_file"}
    assert problems["missing_file"].path.endswith("000000000_to_000000009.parquet")
    assert "5 rows now, 3 recorded" in problems["hash_mismatch"].description
    assert "truncated" in problems["unreadable"].description
    for p in problems.values():
        assert "\n" not in p.description and p.description.count(". ") == 0 and ";" in p.description

    quick = {p.kind for p in wh.verify(rehash=False)}
    assert {"missing_file", "hash_mismatch", "unreadable"} <= quick

    actions = wh.repair()
    assert len(actions) == 5
    assert wh.verify() == []
    assert [r.start for r in wh.completed_chunks(1, "logs")] == [30]
    assert not unrecorded.exists() and not stray.exists()


def test_invalidate_removes_file_and_marks_incomplete(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    wh.write_chunk(1, "logs", 10, 19, logs_table(15))
    wh.refresh_catalog()
    assert wh.invalidate(1, "logs", 10, 19, reason="reorg at 15")
    assert not wh.chunk_path(1, "logs", 10, 19).exists()
    assert not wh.is_complete(1, "logs", 10, 19)
    assert manifest_lines(wh)[-1]["op"] == "invalidate" and manifest_lines(wh)[-1]["reason"] == "reorg at 15"
    assert query(wh, "SELECT count(*) FROM logs") == [(3,)]  # the glob no longer sees it
    assert not wh.invalidate(1, "logs", 10, 19)  # nothing left to withdraw
    assert wh.verify() == []


# --- the lock ------------------------------------------------------------------------------------------


HOLDER = """
import sys, time
from postmortem.warehouse import Warehouse
with Warehouse(sys.argv[1]).lock("postmortem ingest --incident x"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_writer_is_refused_with_who_and_since(wh):
    proc = run_python(HOLDER, str(wh.root))
    try:
        assert proc.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in wh.root.iterdir())
        with pytest.raises(PostmortemError) as err:
            with wh.lock("second writer"):
                pytest.fail("got the lock twice")
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and "postmortem ingest --incident x" in msg and " since 20" in msg
        assert "\n" not in msg and "wait for it to finish" in msg
        # Write calls take the lock themselves and fail before touching anything.
        with pytest.raises(PostmortemError, match="is locked by"):
            wh.write_chunk(1, "logs", 0, 9, logs_table(5))
        with pytest.raises(PostmortemError, match="is locked by"):
            wh.refresh_catalog()
        assert sorted(p.name for p in wh.root.iterdir()) == before
        assert not wh.manifest_path.exists()
    finally:
        proc.kill()
        proc.wait()
    with wh.lock("after holder died") as w:
        assert w.holds_lock()
        assert "postmortem ingest --incident x" in wh.lock_note and f"pid {proc.pid}" in wh.lock_note


def test_stale_lock_from_dead_pid_is_taken_over_with_a_note(wh):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    wh.root.mkdir(parents=True)
    wh.lock_path.write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                        "started_at": "2026-03-10T00:00:00Z", "command": "old ingest"}))
    with wh.lock("new ingest"):
        held = json.loads(wh.lock_path.read_text())
        assert held["pid"] == os.getpid() and held["command"] == "new ingest"
        assert "stale lock" in wh.lock_note and f"pid {dead.pid}" in wh.lock_note and "2026-03-10" in wh.lock_note
    assert wh.lock_path.read_text() == ""  # released cleanly


def test_lock_is_reentrant_within_a_process(wh):
    other = Warehouse(wh.root)
    with wh.lock("outer"):
        with other.lock("inner"):  # another object, same process: shares the lock
            other.write_chunk(1, "logs", 0, 9, logs_table(5))
        assert wh.holds_lock()
        wh.write_chunk(1, "logs", 10, 19, logs_table(15))
    assert not wh.holds_lock() and wh.lock_note is None


def test_threads_share_the_process_lock(wh):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: wh.write_chunk(1, "logs", i * 10, i * 10 + 9, logs_table(i * 10)), range(32)))
    assert len(Warehouse(wh.root).completed_chunks(1, "logs")) == 32
    assert wh.verify() == []


# --- run records ----------------------------------------------------------------------------------------


def test_record_run_saves_a_summary_and_redacts_urls(wh):
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    rec = wh.record_run(
        "ingest",
        {"rpc_url": "https://eth-mainnet.g.alchemy.com/v2/SECRETKEY", "from_block": 1, "nested": ["wss://u:p@h:8546"]},
        {"chunks": 3, "logs": 1234, "requests": 17},
        started_at=t0, finished_at=t0 + timedelta(seconds=12.5),
    )
    assert rec["duration_s"] == 12.5 and rec["tool_version"] and rec["run_id"]
    text = wh.runs_path.read_text()
    assert "SECRETKEY" not in text and "u:p" not in text
    (saved,) = Warehouse(wh.root).runs("ingest")
    assert saved["params"]["rpc_url"] == "https://eth-mainnet.g.alchemy.com/***"
    assert saved["params"]["nested"] == ["wss://h:8546/***"]
    assert saved["summary"] == {"chunks": 3, "logs": 1234, "requests": 17}
    wh.refresh_catalog()
    assert query(wh, "SELECT kind, duration_s, summary->>'logs' FROM runs") == [("ingest", 12.5, "1234")]


# --- outputs ----------------------------------------------------------------------------------------------


def test_write_output_adds_keys_and_provenance(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    inputs = wh.input_hashes(1, ["logs"], 0, 100)
    assert list(inputs) == ["1/logs/1__logs__000000000_to_000000009.parquet"]
    verdicts = pa.table({"user": ["0x01", "0x02"], "loss_wei": pa.array([MAX_DEC, Decimal(5)], pa.decimal128(38, 0))})
    rec = wh.write_output(1, "toy_losses", "devchain-x", "run1", verdicts, {"params": {"model": "true"}, "inputs": inputs})
    assert rec.path == "1/outputs/toy_losses/devchain-x__run1.parquet"
    assert rec.meta["inputs"] == inputs and rec.meta["tool_version"]
    wh.write_output(1, "toy_losses", "devchain-x", "run2", verdicts, {})
    wh.refresh_catalog()
    # Every run stays queryable under {table}_all_runs; the plain view holds the latest run only.
    assert query(wh, "SELECT run_id, count(*), max(loss_wei)::VARCHAR FROM toy_losses_all_runs GROUP BY run_id ORDER BY 1") == [
        ("run1", 2, str(MAX_DEC)), ("run2", 2, str(MAX_DEC))]
    assert query(wh, "SELECT run_id, count(*) FROM toy_losses GROUP BY run_id") == [("run2", 2)]
    meta = json.loads(query(wh, "SELECT meta FROM warehouse_files WHERE run_id = 'run1'")[0][0])
    assert meta["params"] == {"model": "true"}
    assert [r.run_id for r in wh.outputs(1, "toy_losses", "devchain-x")] == ["run1", "run2"]

    bad = verdicts.append_column("run_id", pa.array(["other", "run3"]))
    with pytest.raises(PostmortemError, match="run_id column holds"):
        wh.write_output(1, "toy_losses", "devchain-x", "run3", bad, {})
    with pytest.raises(PostmortemError, match="run id"):
        wh.write_output(1, "toy_losses", "devchain-x", "a__b", verdicts, {})
    with pytest.raises(PostmortemError, match="already holds chunk files"):
        wh.write_output(1, "logs", "devchain-x", "run1", verdicts, {})


def test_a_streamed_output_is_the_same_file_content_as_a_table(wh):
    """A large output (the health table) is written batch by batch from a RecordBatchReader: the same
    rows, keys and record as the whole table gives."""
    verdicts = pa.table({"user": [f"0x{i:02x}" for i in range(7)],
                         "loss_wei": pa.array([Decimal(i) for i in range(6)] + [MAX_DEC], pa.decimal128(38, 0))})
    whole = wh.write_output(1, "toy_losses", "devchain-x", "whole", verdicts, {})
    reader = pa.RecordBatchReader.from_batches(verdicts.schema, verdicts.to_batches(max_chunksize=3))
    streamed = wh.write_output(1, "toy_losses", "devchain-x", "streamed", reader, {})
    assert streamed.rows == whole.rows == 7 and streamed.schema_fingerprint == whole.schema_fingerprint
    wh.refresh_catalog()
    rows = query(wh, "SELECT run_id, incident_id, user, loss_wei::VARCHAR FROM toy_losses_all_runs ORDER BY run_id, user")
    assert [r[1:] for r in rows if r[0] == "streamed"] == [r[1:] for r in rows if r[0] == "whole"]
    assert len(rows) == 14
    keyed_table = verdicts.append_column("run_id", pa.array(["x"] * 7))
    keyed = pa.RecordBatchReader.from_batches(keyed_table.schema, keyed_table.to_batches())
    with pytest.raises(PostmortemError, match="already has the column"):
        wh.write_output(1, "toy_losses", "devchain-x", "x", keyed, {})


# --- the catalog ----------------------------------------------------------------------------------------


def test_catalog_sees_new_chunks_without_refresh_and_new_datasets_after(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    summary = wh.refresh_catalog()
    assert "logs" in summary.views and "blocks" in summary.empty_views
    assert query(wh, "SELECT count(*) FROM logs") == [(3,)]
    wh.write_chunk(1, "logs", 10, 19, logs_table(15, n=4))
    assert query(wh, "SELECT count(*) FROM logs") == [(7,)]  # the glob picks it up
    wh.write_chunk(1, "amounts", 0, 9, amounts_table(0, [Decimal(1)]))
    with pytest.raises(duckdb.CatalogException):
        query(wh, "SELECT * FROM amounts")
    wh.refresh_catalog()
    assert query(wh, "SELECT count(*) FROM amounts") == [(1,)]


def test_views_span_chains_and_carry_chain_id(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    wh.write_chunk(31337, "logs", 0, 9, logs_table(6, n=2))
    wh.refresh_catalog()
    assert query(wh, "SELECT chain_id, count(*) FROM logs GROUP BY 1 ORDER BY 1") == [(1, 3), (31337, 2)]
    assert query(wh, "SELECT typeof(topic0), octet_length(topic0) FROM logs LIMIT 1") == [("BLOB", 32)]


def test_documented_table_without_files_gets_a_typed_empty_view(wh):
    wh.refresh_catalog()
    cols = query(wh, "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'blocks' ORDER BY column_index")
    assert cols == [("block_number", "BIGINT"), ("block_hash", "VARCHAR"), ("parent_hash", "VARCHAR"),
                    ("timestamp", "BIGINT"), ("chain_id", "BIGINT"), ("timestamp_utc", "TIMESTAMP")]
    assert query(wh, "SELECT count(*) FROM blocks") == [(0,)]
    comment = query(wh, "SELECT comment FROM duckdb_columns() WHERE table_name = 'blocks' AND column_name = 'timestamp'")
    assert "seconds since the Unix epoch" in comment[0][0]


def test_undocumented_output_without_files_has_no_view_and_documented_output_has_keys(wh):
    schema_docs.register_table("test_only_outputs", "Test output.",
                               [schema_docs.col("x", pa.int64(), "x")], kind=schema_docs.KIND_OUTPUT)
    try:
        wh.refresh_catalog()
        cols = [c for (c,) in query(wh, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'test_only_outputs'")]
        assert cols == ["x", "incident_id", "run_id", "chain_id"]
    finally:
        schema_docs._REGISTRY.pop("test_only_outputs")


def test_register_view_is_persisted_and_recreated(wh):
    wh.write_chunk(1, "amounts", 0, 9, amounts_table(0, [Decimal(10**18), Decimal(5 * 10**17)]))
    wh.refresh_catalog()
    wh.register_view("amounts_eth", "SELECT block_number, amount_wei / 1e18 AS amount_eth FROM amounts",
                     description="Amounts in ETH for humans.")
    assert json.loads(wh.views_path.read_text())["views"][0]["name"] == "amounts_eth"
    wh.refresh_catalog()  # re-created from views.json
    assert query(wh, "SELECT amount_eth FROM amounts_eth ORDER BY block_number") == [(1.0,), (0.5,)]
    assert query(wh, "SELECT comment FROM duckdb_views() WHERE view_name = 'amounts_eth'") == [("Amounts in ETH for humans.",)]

    with pytest.raises(PostmortemError, match="does not build"):
        wh.register_view("broken", "SELECT * FROM no_such_table")
    assert "broken" not in wh.registered_views()
    with pytest.raises(PostmortemError, match="single SELECT"):
        wh.register_view("evil", "SELECT 1; DROP VIEW logs")
    with pytest.raises(PostmortemError, match="already a dataset"):
        wh.register_view("logs", "SELECT 1")
    wh.unregister_view("amounts_eth")
    assert "amounts_eth" not in [n for (n,) in query(wh, "SELECT view_name FROM duckdb_views()")]


def test_refresh_does_not_wait_for_open_readers_and_a_killed_refresh_keeps_the_old_catalog(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    wh.refresh_catalog()
    reader = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        wh.write_chunk(1, "amounts", 0, 9, amounts_table(0, [Decimal(1)]))
        wh.refresh_catalog()  # the new file is renamed over the one the reader has open
        assert reader.execute("SELECT count(*) FROM logs").fetchall() == [(3,)]
    finally:
        reader.close()
    assert query(wh, "SELECT count(*) FROM amounts") == [(1,)]
    (wh.root / "catalog.duckdb.building").write_bytes(b"half-built")  # left by a killed refresh
    assert query(wh, "SELECT count(*) FROM amounts") == [(1,)]
    wh.refresh_catalog()
    assert not (wh.root / "catalog.duckdb.building").exists()


def test_catalog_bookkeeping_tables(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5), {"end_block_hash": "0x01"})
    wh.refresh_catalog()
    rows = query(wh, "SELECT dataset, start_block, end_block, rows, meta->>'end_block_hash' FROM warehouse_files")
    assert rows == [("logs", 0, 9, 3, "0x01")]
    assert query(wh, "SELECT root FROM catalog_info") == [(wh.root.as_posix(),)]


def test_compact_manifest_keeps_live_records_only(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    wh.write_chunk(1, "logs", 10, 19, logs_table(15))
    wh.invalidate(1, "logs", 0, 9)
    wh.compact_manifest()
    assert [line["path"] for line in manifest_lines(wh)] == ["1/logs/1__logs__000000010_to_000000019.parquet"]
    assert wh.is_complete(1, "logs", 10, 19) and not wh.is_complete(1, "logs", 0, 9)


def test_two_threads_writing_overlapping_ranges_is_refused(wh):
    # One thread claims blocks 0..99; a second thread writing 50..59 meanwhile must not slip past
    # the overlap check (neither is in the manifest yet) nor share its .tmp.
    with wh._in_flight(wh._rel(wh.chunk_path(1, "logs", 0, 99)), (1, "logs", 0, 99)):
        with pytest.raises(PostmortemError, match="another thread is writing right now"):
            wh.write_chunk(1, "logs", 50, 59, logs_table(55))
        wh.write_chunk(1, "logs", 100, 109, logs_table(105))  # a disjoint range is fine


def test_unstorable_meta_is_refused_before_anything_changes(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    with pytest.raises(TypeError, match="cannot store object"):
        wh.write_chunk(1, "logs", 0, 9, logs_table(5), {"bad": object()})
    assert wh.is_complete(1, "logs", 0, 9, verify=True)


def test_a_damaged_dataset_does_not_take_the_catalog_down(wh):
    wh.write_chunk(1, "logs", 0, 9, logs_table(5))
    wh.write_chunk(1, "amounts", 0, 9, amounts_table(0, [Decimal(1)]))
    broken = wh.chunk_path(1, "amounts", 0, 9)
    broken.write_bytes(broken.read_bytes()[:100])
    summary = wh.refresh_catalog()
    assert "logs" in summary.views and "amounts" in summary.skipped
    assert "run verify" in summary.skipped["amounts"]
    assert query(wh, "SELECT count(*) FROM logs") == [(3,)]


# --- a folder that holds no warehouse ---------------------------------------------------------------


def test_verify_on_a_folder_without_a_warehouse_says_so_and_creates_nothing(tmp_path):
    from click.testing import CliRunner

    from postmortem.cli import _register, cli

    folder = tmp_path / "not-a-warehouse"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(PostmortemError, match=r"no warehouse at .* \(no manifest.jsonl\); ingest into it first or give --warehouse"):
        Warehouse(folder).verify()
    with pytest.raises(PostmortemError, match="no warehouse at"):
        Warehouse(folder).repair()
    _register()
    for args in (["verify"], ["verify", "--repair"], ["sql", "select 1"], ["schema", "logs"]):
        r = CliRunner().invoke(cli, [*args, "--warehouse", str(folder)])
        assert r.exit_code != 0 and "OK" not in r.output, (args, r.output)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # reading never creates files


def test_repair_withdraws_a_whole_chunk_and_finds_half_ones(wh):
    meta = {"chunk_datasets": ["blocks", "toy_events"]}
    wh.write_chunk(1, "toy_events", 0, 9, pa.table({"x": [1, 2]}))
    wh.write_chunk(1, "blocks", 0, 9, pa.table({"block_number": pa.array([1], pa.int64()),
                                               "block_hash": ["0x1"], "parent_hash": ["0x0"],
                                               "timestamp": pa.array([1], pa.int64())}))
    wh.write_chunk(1, "logs", 0, 9, logs_table(1), meta)
    wh.write_chunk(1, "logs", 10, 19, logs_table(11), {"chunk_datasets": []})
    assert wh.is_chunk_complete(1, "logs", 0, 9)
    path = wh.chunk_path(1, "toy_events", 0, 9)
    path.write_bytes(path.read_bytes() + b"junk")
    (p,) = wh.verify()
    (action,) = wh.repair([p])
    assert "and with it" in action and "logs" in action and "blocks" in action
    assert not wh.is_complete(1, "logs", 0, 9) and not wh.is_complete(1, "blocks", 0, 9)
    assert wh.is_chunk_complete(1, "logs", 10, 19)  # another range is untouched
    assert wh.verify() == []
    # A chunk that lost a member's manifest line (what repair did before) is found as incomplete.
    wh.write_chunk(1, "toy_events", 0, 9, pa.table({"x": [1, 2]}))
    wh.write_chunk(1, "logs", 0, 9, logs_table(1), {"chunk_datasets": ["toy_events"]})
    wh.invalidate(1, "toy_events", 0, 9)
    assert not wh.is_chunk_complete(1, "logs", 0, 9)
    (p,) = wh.verify()
    assert p.kind == "incomplete_chunk" and "toy_events" in p.description
    wh.repair([p])
    assert wh.verify() == [] and not wh.is_complete(1, "logs", 0, 9)
