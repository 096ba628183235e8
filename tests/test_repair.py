"""Repair never loses data silently (issue 10, item 1).

The sequence from the issue, for every kind of warehouse file: damage one file of a clean
ingest, `postmortem verify --repair`, re-run the same ingest; the warehouse must equal the clean
one row for row, `verify` must be clean, and `liquidations` must count what the chain holds.
Replay outputs: repair withdraws the whole run, the report refuses it, the next replay writes it
again.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import devchain_incident, warehouse_rows
from postmortem.ingest.pipeline import ingest
from postmortem.errors import PostmortemError
from postmortem.incidents import devchain_window
from postmortem.sql import run_sql
from postmortem.warehouse import Warehouse

pytestmark = pytest.mark.chain


def _cli(*args):
    from postmortem.cli import _register, cli

    _register()
    return CliRunner().invoke(cli, list(args))


def _count(root, table):
    return int(json.loads(run_sql(root, f"select count(*) as n from {table}", fmt="json"))[0]["n"])


@pytest.fixture(scope="module")
def clean_small(small_chain, tmp_path_factory):
    """One clean ingest of the small scenario, shared by every case (read-only)."""
    root = tmp_path_factory.mktemp("repair-clean")
    inc = devchain_window(small_chain.manifest, "small")
    summary = ingest(small_chain.url, incident=inc, warehouse=root, progress=False)
    return {"root": root, "incident": inc, "summary": summary}


def _append_bytes(path):
    with open(path, "ab") as f:
        f.write(b"\x00garbage")


def _one(root, dataset):
    (path,) = sorted(root.glob(f"31337/{dataset}/*.parquet"))
    return path


def _missing_line(root):
    # A manifest line vouching for a file that is not there (same dataset, another range).
    lines = [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]
    rec = next(x for x in lines if x.get("op") == "put" and x["dataset"] == "liquidations")
    rec = {**rec, "start": 1, "end": 1, "path": rec["path"].rsplit("__", 1)[0] + "__000000001_to_000000001.parquet"}
    with open(root / "manifest.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")


DAMAGE = {
    "decoded table (liquidations), bytes appended": lambda root: _append_bytes(_one(root, "liquidations")),
    "decoded table (repays), deleted": lambda root: _one(root, "repays").unlink(),
    "read table (oracle_prices), bytes appended": lambda root: _append_bytes(_one(root, "oracle_prices")),
    "blocks, bytes appended": lambda root: _append_bytes(_one(root, "blocks")),
    "logs, bytes appended": lambda root: _append_bytes(_one(root, "logs")),
    "holder_transfers, bytes appended": lambda root: _append_bytes(sorted(root.glob("31337/holder_transfers/*.parquet"))[0]),
    "positions_at_start, bytes appended": lambda root: _append_bytes(_one(root, "positions_at_start")),
    "reserve_states_at_start, deleted": lambda root: _one(root, "reserve_states_at_start").unlink(),
    "manifest line without its file": _missing_line,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_verify_repair_then_ingest_restores_a_clean_warehouse(small_chain, clean_small, tmp_path, damage):
    clean = clean_small["root"]
    root = tmp_path / "wh"
    shutil.copytree(clean, root)
    DAMAGE[damage](root)

    r = _cli("verify", "--warehouse", str(root))
    assert r.exit_code == 1, r.output  # the damage is seen
    r = _cli("verify", "--warehouse", str(root), "--repair")
    assert r.exit_code == 0, r.output
    again = ingest(small_chain.url, incident=clean_small["incident"], warehouse=root, progress=False)

    assert _count(root, "liquidations") == len(small_chain.ground_truth["liquidations"])
    assert warehouse_rows(root) == warehouse_rows(clean)
    assert Warehouse(root).verify() == []
    assert again["chunks"] + again["chunks_skipped"] == clean_small["summary"]["chunks"]
    assert again["logs"] == clean_small["summary"]["logs"]  # every log of the range, fetched now or before


def test_a_half_chunk_left_by_an_older_repair_is_found_and_refetched(small_chain, clean_small, tmp_path):
    """A warehouse where a chunk lost one dataset's manifest line (what the old repair did)."""
    clean = clean_small["root"]
    root = tmp_path / "wh"
    shutil.copytree(clean, root)
    wh = Warehouse(root)
    rec = wh.completed_chunks(31337, "liquidations")[0]
    wh.invalidate(31337, "liquidations", rec.start, rec.end, reason="as the old repair did")
    problems = wh.verify()
    assert [p.kind for p in problems] == ["incomplete_chunk"]
    assert "liquidations" in problems[0].description and "\n" not in problems[0].description
    again = ingest(small_chain.url, incident=clean_small["incident"], warehouse=root, progress=False)
    assert again["chunks"] == 1
    assert warehouse_rows(root) == warehouse_rows(clean)
    assert _count(root, "liquidations") == len(small_chain.ground_truth["liquidations"])


def test_resumed_ingest_counts_every_log_of_the_range(small_chain, clean_small, tmp_path):
    root = tmp_path / "wh"
    shutil.copytree(clean_small["root"], root)
    again = ingest(small_chain.url, incident=clean_small["incident"], warehouse=root, progress=False)
    assert again["chunks"] == 0 and again["logs_fetched"] == 0
    assert again["logs"] == clean_small["summary"]["logs"] == _count(root, "logs") > 0


# --- replay outputs ---------------------------------------------------------------------------------


OUTPUT_TABLES = ("health", "verdicts", "borrower_losses", "liquidator_gains", "at_risk", "price_path")
INCIDENT = "devchain-wsteth-capo-2026-03-10"


def _output_rows(root, table):
    rows = json.loads(run_sql(root, f"select * exclude (run_id) from {table}", fmt="json"))
    return sorted((json.dumps(r, sort_keys=True) for r in rows))


def test_repaired_replay_output_is_written_again_and_never_reported_half(incident_chain, incident_warehouse, tmp_path):
    from postmortem.replay.engine import replay
    from postmortem.reports.api import write_report

    root = tmp_path / "wh"
    shutil.copytree(incident_warehouse["root"], root)
    first = replay(root, INCIDENT, devchain_dir=incident_chain.directory)
    before = {t: _output_rows(root, t) for t in OUTPUT_TABLES}
    assert before["verdicts"]

    # A missing output: the report refuses the run instead of publishing it without that table.
    wh = Warehouse(root)
    health = root / wh.outputs(31337, "health", INCIDENT)[0].path
    saved = health.read_bytes()
    health.unlink()
    with pytest.raises(PostmortemError, match="incomplete"):
        write_report(root, INCIDENT, out_dir=tmp_path / "report-half")
    health.write_bytes(saved)

    # Damage, repair: the whole run is withdrawn, the report says to replay, the replay writes it again.
    _append_bytes(root / wh.outputs(31337, "borrower_losses", INCIDENT)[0].path)
    r = _cli("verify", "--warehouse", str(root), "--repair")
    assert r.exit_code == 0, r.output
    assert Warehouse(root).verify() == []
    assert not [r for r in Warehouse(root).records() if r.kind == "output" and r.run_id == first["run_id"]]
    with pytest.raises(PostmortemError):
        write_report(root, INCIDENT, out_dir=tmp_path / "report-none")
    second = replay(root, INCIDENT, devchain_dir=incident_chain.directory)
    # The same inputs are the same run (its id is a digest of them): written again, every table of it.
    assert second["run_id"] == first["run_id"]
    assert sorted(r.dataset for r in Warehouse(root).records()
                  if r.kind == "output" and r.run_id == first["run_id"]) == sorted(OUTPUT_TABLES)
    assert {t: _output_rows(root, t) for t in OUTPUT_TABLES} == before
    write_report(root, INCIDENT, out_dir=tmp_path / "report")
    assert (tmp_path / "report" / "report.md").exists()


def test_devchain_incident_repair_sequence_from_the_issue(incident_chain, incident_warehouse, tmp_path):
    """The issue's exact sequence on the devchain incident: one chunk, liquidations damaged."""
    root = tmp_path / "wh"
    shutil.copytree(incident_warehouse["root"], root)
    _append_bytes(_one(root, "liquidations"))
    r = _cli("verify", "--warehouse", str(root), "--repair")
    assert r.exit_code == 0, r.output
    inc = devchain_incident(incident_chain)
    again = ingest(incident_chain.url, incident=inc, warehouse=root, progress=False)
    assert again["chunks"] == 1 and again["chunks_skipped"] == 0
    assert _count(root, "liquidations") == len(incident_chain.ground_truth["liquidations"])
    assert warehouse_rows(root) == warehouse_rows(incident_warehouse["root"])
