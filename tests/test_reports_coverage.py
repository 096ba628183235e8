"""The report refuses to publish from incomplete data: on the ingested devchain incident, a decoded
chunk that is withdrawn from the manifest or emptied makes ``report`` fail in one sentence naming
the table and the fix, write nothing, and leave the previous report as it was."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from postmortem.errors import PostmortemError
from postmortem.warehouse import Warehouse
from postmortem.reports.api import write_report

pytestmark = pytest.mark.chain
INCIDENT = "devchain-wsteth-capo-2026-03-10"


@pytest.fixture(scope="module")
def replayed(incident_warehouse, tmp_path_factory):
    """A copy of the session's ingested incident, replayed (the shared warehouse stays untouched)."""
    from postmortem.replay.engine import replay

    root = tmp_path_factory.mktemp("coverage") / "warehouse"
    shutil.copytree(incident_warehouse["root"], root)
    replay(root, INCIDENT)
    return root


def damaged_copy(replayed, tmp_path):
    root = tmp_path / "warehouse"
    shutil.copytree(replayed, root)
    return root, Warehouse(root)


def previous_report(root, tmp_path):
    out = tmp_path / "report"
    paths = write_report(root, INCIDENT, out)
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def test_complete_warehouse_passes_the_coverage_check(replayed, tmp_path):
    from postmortem.reports.model import build_model

    m = build_model(replayed, INCIDENT)
    (c,) = [c for c in m.checks if c.key == "raw_log_coverage"]
    assert c.ok is True and "every one decoded" in c.detail


def test_a_decoded_chunk_out_of_the_manifest_is_refused(replayed, tmp_path):
    root, wh = damaged_copy(replayed, tmp_path)
    out, before = previous_report(root, tmp_path)
    (rec,) = [r for r in wh.completed_chunks(31337, "liquidations")]
    assert wh.invalidate(31337, "liquidations", rec.start, rec.end, reason="test: withdrawn")
    with pytest.raises(PostmortemError) as e:
        write_report(root, INCIDENT, out)
    msg = str(e.value)
    assert msg.startswith("the warehouse's liquidations table has 0 rows for 50 matching raw logs in blocks")
    assert "postmortem verify --repair" in msg and f"postmortem ingest --incident {INCIDENT}" in msg
    assert "\n" not in msg and msg.count(". ") == 0  # one sentence
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written, nothing lost


def test_an_emptied_decoded_chunk_is_refused(replayed, tmp_path):
    root, wh = damaged_copy(replayed, tmp_path)
    out, before = previous_report(root, tmp_path)
    rec = max(wh.completed_chunks(31337, "token_mints"), key=lambda r: r.rows)
    path = root / rec.path
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 0), path)  # same schema, no rows
    with pytest.raises(PostmortemError, match=r"^the warehouse's token_mints table has 0 rows for [0-9,]+ matching raw "
                                              r"logs in blocks .*; run `postmortem verify --repair"):
        write_report(root, INCIDENT, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_missing_raw_logs_chunk_is_refused(replayed, tmp_path):
    root, wh = damaged_copy(replayed, tmp_path)
    out, before = previous_report(root, tmp_path)
    for rec in wh.completed_chunks(31337, "logs"):
        wh.invalidate(31337, "logs", rec.start, rec.end, reason="test: withdrawn")
    with pytest.raises(PostmortemError, match=r"has no raw logs for chain 31337|no raw logs for blocks"):
        write_report(root, INCIDENT, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
