"""The CLI's edges: where `sql` reads its query and writes its result, did-you-mean for wrong
names, `schema` before any ingest, the environment variables, shell completion, option names
that agree across commands, help that teaches, and exit codes (2 usage, 1 runtime)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from postmortem.cli import _register, cli
from postmortem.warehouse import Warehouse

from helpers.warehouse_tables import logs_table

POSTMORTEM = Path(sys.executable).with_name("postmortem")
INCIDENT = "aave-v3-wsteth-capo-2026-03-10"
QUERY = "select block_number, log_index from logs order by log_index"


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    w = Warehouse(tmp_path_factory.mktemp("edges") / "warehouse")
    w.write_chunk(1, "logs", 0, 9, logs_table(5))
    w.refresh_catalog()
    return w.root


@pytest.fixture(scope="module")
def run():
    _register()

    def invoke(*args, **kw):
        return CliRunner().invoke(cli, [str(a) for a in args], **kw)

    return invoke


def one_error(result) -> str:
    assert "Traceback" not in result.output, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


# -- sql: where the result goes ----------------------------------------------------------------


def test_out_format_comes_from_the_extension(run, wh, tmp_path):
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "r.csv")
    assert r.exit_code == 0, r.output
    assert list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text()))) == [
        ["block_number", "log_index"], ["5", "0"], ["5", "1"], ["5", "2"]]
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r.json").read_text())[2] == {"block_number": 5, "log_index": 2}
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "r.parquet")
    assert r.exit_code == 0, r.output
    assert pq.read_table(tmp_path / "r.parquet").column("log_index").to_pylist() == [0, 1, 2]
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "r.txt")
    assert r.exit_code == 0 and "(3 rows)" in (tmp_path / "r.txt").read_text()


def test_explicit_format_agrees_or_conflicts_clearly(run, wh, tmp_path):
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "a.csv", "--format", "csv")
    assert r.exit_code == 0 and (tmp_path / "a.csv").read_text().startswith("block_number,log_index\n")
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "b.csv", "--format", "json")
    assert r.exit_code == 2
    assert "--format json conflicts with the file name b.csv, which says csv" in one_error(r)
    assert not (tmp_path / "b.csv").exists()
    # an extension that says nothing: --format decides, or the user is asked for one
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "c.dat", "--format", "json")
    assert r.exit_code == 0 and json.loads((tmp_path / "c.dat").read_text())[0]["log_index"] == 0
    r = run("sql", QUERY, "--warehouse", wh, "--out", tmp_path / "d.dat")
    assert r.exit_code == 2 and "cannot tell the format from the name d.dat" in one_error(r)


def test_output_is_the_old_name_of_out(run, wh, tmp_path):
    r = run("sql", QUERY, "--warehouse", wh, "--output", tmp_path / "old.csv")
    assert r.exit_code == 0 and (tmp_path / "old.csv").read_text().startswith("block_number,")
    assert "--output" not in run("sql", "--help").output  # hidden, --out is the documented name
    r = run("sql", QUERY, "--warehouse", wh, "--output", tmp_path / "x.csv", "--out", tmp_path / "y.csv")
    assert r.exit_code == 2 and "give --out FILE once" in one_error(r)


# -- sql: where the query comes from -----------------------------------------------------------


def test_query_from_stdin_and_from_a_file(run, wh, tmp_path):
    r = run("sql", "-", "--warehouse", wh, "--format", "csv", input=QUERY + "\n")
    assert r.exit_code == 0 and r.output.splitlines()[1:] == ["5,0", "5,1", "5,2"], r.output
    qfile = tmp_path / "q.sql"
    qfile.write_text("-- how many logs\nselect count(*) as n\nfrom logs;\n")
    r = run("sql", "--file", qfile, "--warehouse", wh, "--format", "csv")
    assert r.exit_code == 0 and r.output.splitlines() == ["n", "3"], r.output
    r = run("sql", QUERY, "--file", qfile, "--warehouse", wh)
    assert r.exit_code == 2 and "not both" in one_error(r)
    r = run("sql", "--warehouse", wh)
    assert r.exit_code == 2 and "give a QUERY" in one_error(r)
    r = run("sql", "--file", tmp_path / "missing.sql", "--warehouse", wh)
    assert r.exit_code == 2 and "missing.sql" in one_error(r)


def test_stdin_through_the_real_command(wh):
    out = subprocess.run([str(POSTMORTEM), "sql", "-", "--format", "json"], input="select 40 + 2 as answer",
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "POSTMORTEM_WAREHOUSE": str(wh)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"answer": 42}]


# -- did you mean ------------------------------------------------------------------------------


def test_unknown_table_and_column_suggest_the_closest_name(run, wh):
    r = run("sql", "select * from log", "--warehouse", wh)
    assert r.exit_code == 2
    assert one_error(r) == "Error: no table named log; did you mean logs? run `postmortem schema` to list tables"
    r = run("sql", "select block_numbr from logs", "--warehouse", wh)
    assert r.exit_code == 2
    assert "no column named block_numbr; did you mean block_number?" in one_error(r)
    r = run("sql", "select zzzzzz from logs", "--warehouse", wh)
    assert r.exit_code == 2 and "did you mean" not in one_error(r)


def test_schema_works_before_anything_is_ingested(run, tmp_path):
    r = run("schema", "--warehouse", tmp_path / "none")
    assert r.exit_code == 0, r.output
    names = {ln.split()[0] for ln in r.output.splitlines() if ln.strip()}
    assert {"liquidations", "logs", "positions_at_start", "oracle_prices"} <= names
    r = run("schema", "liquidations", "--warehouse", tmp_path / "none")
    assert r.exit_code == 0 and "debt_to_cover" in r.output
    r = run("schema", "liquidation", "--warehouse", tmp_path / "none")
    assert r.exit_code == 2
    assert one_error(r) == "Error: no table named liquidation; did you mean liquidations? run `postmortem schema` to list tables"
    assert not (tmp_path / "none").exists()


def test_unknown_incident_comes_before_the_rpc_url(run, tmp_path, monkeypatch):
    monkeypatch.delenv("POSTMORTEM_RPC_URL", raising=False)
    for command in ("ingest", "run"):
        r = run(command, "--incident", "nosuch", "--warehouse", tmp_path / "wh")
        assert r.exit_code == 2
        msg = one_error(r)
        assert "unknown incident 'nosuch'" in msg and "`postmortem incidents`" in msg and "--rpc-url" not in msg
    r = run("ingest", "--incident", "aave-v3-wsteth-capo-2026-03-1", "--warehouse", tmp_path / "wh")
    assert "did you mean aave-v3-wsteth-capo-2026-03-10?" in one_error(r)
    assert not (tmp_path / "wh").exists()


# -- environment, completion, names, help, exit codes ------------------------------------------


def test_postmortem_warehouse_is_the_default_warehouse(run, wh, tmp_path):
    r = run("sql", "select count(*) as n from logs", "--format", "csv", env={"POSTMORTEM_WAREHOUSE": str(wh)})
    assert r.exit_code == 0 and r.output.splitlines() == ["n", "3"], r.output
    missing = tmp_path / "elsewhere"
    for args in (["sql", "select 1"], ["verify"], ["report", "--incident", INCIDENT],
                 ["replay", "--incident", INCIDENT]):
        r = run(*args, env={"POSTMORTEM_WAREHOUSE": str(missing)})
        assert r.exit_code == 2 and str(missing) in r.output, (args, r.output)
    for command in ("ingest", "sql", "schema", "verify", "replay", "report", "run", "demo"):
        assert "POSTMORTEM_WAREHOUSE" in run(command, "--help").output, command


def test_shell_completion(tmp_path):
    env = {**os.environ, "_POSTMORTEM_COMPLETE": "bash_source"}
    out = subprocess.run([str(POSTMORTEM)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "_postmortem_completion" in out.stdout and "complete " in out.stdout
    env = {**os.environ, "_POSTMORTEM_COMPLETE": "bash_complete", "COMP_WORDS": "postmortem sq", "COMP_CWORD": "1"}
    out = subprocess.run([str(POSTMORTEM)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "plain,sql" in out.stdout.split(), out.stdout
    env.update(COMP_WORDS="postmortem ingest --ti", COMP_CWORD="2")
    out = subprocess.run([str(POSTMORTEM)], capture_output=True, text=True, env=env, timeout=60)
    assert "plain,--timeout" in out.stdout.split(), out.stdout


def test_option_names_agree_and_help_teaches(run):
    helps = {c: run(c, "--help").output for c in
             ("ingest", "sql", "schema", "incidents", "verify", "replay", "report", "run", "demo")}
    for command in ("sql", "report", "run", "demo"):  # every file or folder written
        assert "--out " in helps[command], command
    for command in ("sql", "report", "incidents"):  # every format choice
        assert "--format" in helps[command], command
    for command, text in helps.items():  # every command shows how it is used
        assert "Examples:" in text and f"postmortem {command} " in text, command


def test_exit_codes_usage_2_runtime_1(run, wh, tmp_path):
    assert run("sql", "select 1", "--no-such-option").exit_code == 2
    assert run("ingest", "--from-block", "zero").exit_code == 2
    r = run("incidents", "--format", "json")
    assert r.exit_code == 0 and any(d["id"] == "aave-v3-wsteth-capo-2026-03-10" for d in json.loads(r.output))
    assert json.loads(run("incidents", "--json").output) == json.loads(r.output)
    # a runtime failure: the query is right, a file it needs is gone
    damaged = tmp_path / "damaged"
    w = Warehouse(damaged)
    w.write_chunk(1, "logs", 0, 9, logs_table(5))
    w.refresh_catalog()
    r = run("verify", "--warehouse", damaged)
    assert r.exit_code == 0, r.output
    next(damaged.glob("1/logs/*.parquet")).unlink()
    r = run("verify", "--warehouse", damaged)
    assert r.exit_code == 1 and "Traceback" not in r.output
