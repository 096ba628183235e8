"""Runs never double-count, and a warehouse is a folder you can move (issue 10, items 6 and 7).

Two replays of one incident with different parameters: the plain output views hold the latest run
only, every run stays under ``*_all_runs``; a replay of the same inputs again is the same run
(its id is a digest of them), rewritten, never a third; ``postmortem schema`` documents every
column it shows. A copied or moved
warehouse answers ``postmortem sql`` the same without a node.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from postmortem.sql import run_sql

pytestmark = pytest.mark.chain

INCIDENT = "devchain-wsteth-capo-2026-03-10"
OUTPUT_TABLES = ("health", "verdicts", "borrower_losses", "liquidator_gains", "at_risk", "price_path")


def _cli(*args):
    from postmortem.cli import _register, cli

    _register()
    return CliRunner().invoke(cli, list(args))


def _one(root, sql):
    (row,) = json.loads(run_sql(root, sql, fmt="json"))
    return row


def _register_docs():
    # Other test modules may leave the schema registry without these (they restore a saved copy).
    from postmortem.ingest import tables as ingest_tables
    from postmortem.schema_docs import register_table
    from postmortem.replay import tables as replay_tables

    ingest_tables.register_docs()
    for doc in [*replay_tables.TABLES.values(), *replay_tables.VIEW_DOCS.values()]:
        register_table(doc.name, doc.description, doc.columns, doc.kind)


@pytest.fixture(scope="module")
def twice_replayed(incident_chain, incident_warehouse, tmp_path_factory):
    from postmortem.replay.engine import replay

    _register_docs()

    root = tmp_path_factory.mktemp("runs-views") / "wh"
    shutil.copytree(incident_warehouse["root"], root)
    # A wider health band is another run (more health rows, the same verdicts and losses).
    first = replay(root, INCIDENT, devchain_dir=incident_chain.directory, health_band=1.5)
    second = replay(root, INCIDENT, devchain_dir=incident_chain.directory)
    again = replay(root, INCIDENT, devchain_dir=incident_chain.directory)
    assert first["run_id"] != second["run_id"] == again["run_id"]
    return {"root": root, "first": first, "second": second}


def test_two_replays_never_double_count(incident_chain, twice_replayed):
    root, first, second = twice_replayed["root"], twice_replayed["first"], twice_replayed["second"]
    n = len(incident_chain.ground_truth["liquidations"])
    assert int(_one(root, "select count(*) n from verdicts")["n"]) == n == int(
        _one(root, "select count(*) n from liquidations")["n"])
    assert _one(root, "select count(distinct run_id) r, min(run_id) id from verdicts") == {"r": 1, "id": second["run_id"]}
    # A naive sum equals one run's total (the oracle loss is its two columns: the liquidator's part and the fee's).
    total = _one(root, "select sum(oracle_loss_eth_wei) + sum(fee_oracle_loss_eth_wei) s from verdicts")["s"]
    assert int(total) == second["oracle_loss_eth_wei"] == first["oracle_loss_eth_wei"]
    owed = _one(root, "select sum(reimbursable_eth_wei) s from borrower_losses")["s"]
    assert int(owed) == second["reimbursable_eth_wei"]
    for table in OUTPUT_TABLES:
        plain = _one(root, f"select count(*) n from {table}")["n"]
        every = json.loads(run_sql(root, f"select run_id, count(*) n from {table}_all_runs group by 1 order by 1", fmt="json"))
        assert sorted(r["run_id"] for r in every) == sorted([first["run_id"], second["run_id"]]), table
        assert {r["run_id"]: r["n"] for r in every} == {run["run_id"]: run["rows"][table] for run in (first, second)}, table
        assert plain == second["rows"][table], table
    assert first["rows"]["health"] > second["rows"]["health"]


def test_schema_documents_every_column_it_shows(twice_replayed):
    from postmortem import schema_docs

    root = twice_replayed["root"]
    _register_docs()
    listing = schema_docs.describe(warehouse_root=root)
    assert "(undocumented)" not in listing
    names = [line.split()[0] for line in listing.splitlines() if line and not line.startswith("Run ")]
    assert "verdicts_all_runs" in names and "health_all_runs" in names
    for name in names:
        text = schema_docs.describe(name, root)
        assert "(undocumented)" not in text, text


def test_timestamps_read_in_utc_beside_unix_seconds(twice_replayed):
    root = twice_replayed["root"]
    for table in ("blocks", "health", "price_path"):
        row = _one(root, f"select count(*) n, count(*) filter (where timestamp_utc = make_timestamp(timestamp * 1000000)) ok, "
                         f"min(typeof(timestamp_utc)) t from {table}")
        assert row["n"] > 0 and row["ok"] == row["n"] and row["t"] == "TIMESTAMP", table


QUERIES = (
    "select count(*) n, count(distinct user) b from liquidations",
    "select block_number, block_hash, timestamp_utc from blocks order by 1",
    "select verdict, count(*) n, sum(oracle_loss_eth_wei) s from verdicts group by 1 order by 1",
)


@pytest.mark.parametrize("how", ["copy", "move"])
def test_a_copied_or_moved_warehouse_answers_sql_without_a_node(twice_replayed, tmp_path, how):
    source = tmp_path / "source"
    shutil.copytree(twice_replayed["root"], source)
    before = [run_sql(source, q, fmt="csv") for q in QUERIES]
    target = tmp_path / "elsewhere" / "wh"
    target.parent.mkdir()
    if how == "copy":
        shutil.copytree(source, target)
    else:
        shutil.move(source, target)
    for q, want in zip(QUERIES, before):
        r = _cli("sql", q, "--warehouse", str(target), "--format", "csv")
        assert r.exit_code == 0, r.output
        assert r.output == want
    assert run_sql(target, "select root from catalog_info", fmt="csv").splitlines()[1] == target.resolve().as_posix()
