"""The start snapshot's user scope (issue 12 section 2).

``--users incident`` reads the positions of the holders of the mispriced asset (found from that
reserve's own aToken and debt-token Transfer logs) and of every user in the window's logs;
``--users all`` reads every user who ever held a market token. On every devchain scenario both
scopes give the same replay (verdicts, borrower losses, liquidator gains, at-risk positions),
the incident scope reads less, and a snapshot built under one scope is never reused by the other.
"""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from conftest import _start, devchain_incident
from postmortem.errors import PostmortemError
from postmortem.incidents import devchain_window
from postmortem.ingest.pipeline import ingest
from postmortem.replay.engine import resolve_true_models, run_replay
from postmortem.replay.inputs import load_inputs
from postmortem.warehouse import Warehouse

pytestmark = pytest.mark.chain
COMPARED = ("verdicts", "borrower_losses", "liquidator_gains", "at_risk")


def _replay(root, inc) -> dict[str, list]:
    inputs = load_inputs(root, chain_id=inc.chain_id, pools=list(inc.pools.values()), from_block=inc.from_block,
                         to_block=inc.to_block)
    result = run_replay(inputs, resolve_true_models(None, ["wstETH=uncapped"]))
    return {k: sorted((json.dumps(r, sort_keys=True, default=str) for r in result.tables[k])) for k in COMPARED}


def _rows(root, q):
    files = sorted(str(p) for p in root.glob(f"*/{q}/*.parquet"))
    return duckdb.connect().execute("select * from read_parquet(?)", [files]).fetchall() if files else []


def _users(root) -> set[str]:
    files = sorted(str(p) for p in root.glob("*/positions_at_start/*.parquet"))
    return {r[0] for r in duckdb.connect().execute("select distinct user from read_parquet(?)", [files]).fetchall()}


def _both_scopes(dc, inc, tmp_path):
    roots = {}
    for scope in ("incident", "all"):
        roots[scope] = tmp_path / scope
        summary = ingest(dc.url, incident=inc, warehouse=roots[scope], progress=False, users=scope)
        assert summary["users_scope"] == scope
        roots[scope + "_summary"] = summary
    return roots


def _check_same_replay(dc, inc, tmp_path, wsteth: str):
    roots = _both_scopes(dc, inc, tmp_path)
    narrow, wide = _replay(roots["incident"], inc), _replay(roots["all"], inc)
    assert narrow["verdicts"], "the scenario has liquidations to judge"
    for k in COMPARED:
        assert narrow[k] == wide[k], k
    # The incident scope is a subset of the whole-market scan, and reads fewer start positions.
    users_narrow, users_wide = _users(roots["incident"]), _users(roots["all"])
    assert users_narrow <= users_wide
    # Its holder scan holds only the mispriced reserve's token transfers.
    scanned = {r[2] for r in _rows(roots["incident"], "holder_transfers")}
    reserves = Warehouse(roots["all"])  # noqa: F841 - the reserves table says which tokens are wstETH's
    files = sorted(str(p) for p in roots["all"].glob("*/reserves/*.parquet"))
    wsteth_tokens = {t for row in duckdb.connect().execute(
        "select a_token, variable_debt_token from read_parquet(?) where asset = ?", [files, wsteth]).fetchall()
        for t in row}
    assert scanned and scanned <= wsteth_tokens
    assert len(_rows(roots["incident"], "holder_transfers")) < len(_rows(roots["all"], "holder_transfers"))
    # Recorded: the runs record and the start snapshot's manifest meta name the scope.
    for scope in ("incident", "all"):
        wh = Warehouse(roots[scope])
        assert wh.runs("ingest")[-1]["params"]["users"] == scope
        rec = wh.completed_chunks(inc.chain_id, "positions_at_start")[0]
        assert rec.meta["users_scope"] == scope
    return roots, users_narrow, users_wide


def test_incident_scope_same_replay_on_the_incident(incident_chain, tmp_path):
    inc = devchain_incident(incident_chain)
    wsteth = incident_chain.addresses["tokens"]["wstETH"]["address"].lower()
    roots, narrow, wide = _check_same_replay(incident_chain, inc, tmp_path, wsteth)
    # Every borrower liquidated in the window is in scope.
    liquidated = {x["user"].lower() for x in incident_chain.ground_truth["liquidations"]}
    assert liquidated <= narrow
    # Cost: fewer logs received than the whole-market scan (its holder scan reads one reserve's tokens).
    cost_n, cost_w = roots["incident_summary"]["cost"], roots["all_summary"]["cost"]
    print("incident scope:", cost_n, "\nall:", cost_w)
    assert cost_n["logs_received"] < cost_w["logs_received"]


def test_incident_scope_same_replay_on_small(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    wsteth = small_chain.addresses["tokens"]["wstETH"]["address"].lower()
    _check_same_replay(small_chain, inc, tmp_path, wsteth)


def test_incident_scope_same_replay_on_mixed_v30(tmp_path_factory, tmp_path):
    dc = _start(tmp_path_factory, "mixed-v30")
    try:
        inc = devchain_window(dc.manifest, "mixed")
        wsteth = dc.addresses["tokens"]["wstETH"]["address"].lower()
        _check_same_replay(dc, inc, tmp_path, wsteth)
    finally:
        dc.node.stop()


def test_a_snapshot_of_another_scope_is_not_reused(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    root = tmp_path / "wh"
    ingest(small_chain.url, incident=inc, warehouse=root, progress=False, users="incident")
    narrow = _users(root)
    ingest(small_chain.url, incident=inc, warehouse=root, progress=False, users="all")
    fresh = tmp_path / "fresh-all"
    ingest(small_chain.url, incident=inc, warehouse=fresh, progress=False, users="all")
    assert _users(root) == _users(fresh) and narrow < _users(fresh)
    assert sorted(_rows(root, "positions_at_start")) == sorted(_rows(fresh, "positions_at_start"))
    assert sorted(_rows(root, "holder_transfers")) == sorted(_rows(fresh, "holder_transfers"))
    # And back: the incident scope rebuilds its own snapshot (reusing the wider holder scan).
    again = ingest(small_chain.url, incident=inc, warehouse=root, progress=False, users="incident")
    assert _users(root) == narrow
    assert again["cost"]["getlogs_calls"] == 0  # window chunks complete, holder scan covered by the wider one
    assert Warehouse(root).verify() == []


def test_unknown_scope_and_scope_without_mispriced_asset_are_refused(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    with pytest.raises(PostmortemError, match="--users incident or --users all"):
        ingest(small_chain.url, incident=inc, warehouse=tmp_path / "a", progress=False, users="some")
    pools = [m["pool"] for m in small_chain.addresses["markets"].values()]
    s = small_chain.manifest["summary"]
    with pytest.raises(PostmortemError, match="--users all"):
        ingest(small_chain.url, pools=pools, from_block=s["setup_end_block"] + 1, to_block=s["end_block"],
               warehouse=tmp_path / "b", progress=False, users="incident", allow_unfinalized=True)
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").rglob("*.parquet"))
