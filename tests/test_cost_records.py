"""Every ingest records its cost in the runs records (summary.cost), counted in the one RPC client and
checked here against what a proxy in front of the node saw; `postmortem sql` reads it from `runs`;
the pipeline prints one plain line per stage when stderr is not a terminal, and nothing when told so."""

from __future__ import annotations

import json

import pytest

from postmortem.devchain.faultproxy import FaultProxy
from postmortem.incidents import devchain_window
from postmortem.ingest.pipeline import ingest
from postmortem.sql import run_sql
from postmortem.warehouse import Warehouse

pytestmark = pytest.mark.chain
STAGES = ("connect", "discovery", "window", "holders", "positions")


def test_cost_record_equals_what_the_node_saw(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    plan = [{"kind": "http_429", "every": 6, "retry_after": 0},
            {"kind": "range_cap", "style": "alchemy", "max_range": 3}]
    root = tmp_path / "wh"
    with FaultProxy(small_chain.url, plan, seed=1) as proxy:
        summary = ingest(proxy.url, incident=inc, warehouse=root, progress=False, chunk_size=4)
        seen = proxy.counts()
    cost = summary["cost"]
    assert cost["requests"] == seen["requests"] and cost["calls"] == seen["calls"]
    assert cost["retries_by_cause"]["rate_limit"] == cost["retries"] == seen["http_429"]
    assert cost["getlogs_calls"] == summary["rpc"]["calls_by_method"]["eth_getLogs"]
    # Every refused range (the 3-block cap) was asked again in pieces: answered ranges + refusals
    # + rate-limited retries of getLogs = getLogs calls sent.
    assert cost["getlogs_ranges"] + seen["range_cap"] <= cost["getlogs_calls"]
    assert cost["getlogs_ranges"] > seen["range_cap"] > 0
    assert cost["logs_received"] >= summary["logs"] > 0
    # eth_calls counts what was sent, retries included; without Multicall3 each read is one eth_call.
    assert 0 < cost["reads"] <= cost["eth_calls"] and cost["multicall_reads"] == 0
    assert cost["bytes_received"] > 10_000
    assert set(STAGES) <= set(cost["stage_seconds"]) and cost["seconds"] > 0

    # Recorded in runs, and readable with SQL.
    rec = Warehouse(root).runs("ingest")[-1]
    assert rec["summary"]["cost"] == cost and rec["params"]["users"] == "incident"
    rows = json.loads(run_sql(root, "select json_extract(summary, '$.cost.requests')::bigint as requests, "
                                    "json_extract_string(params, '$.users') as users from runs where kind = 'ingest'",
                              fmt="json"))
    assert rows == [{"requests": cost["requests"], "users": "incident"}]


def test_plain_progress_lines_off_a_terminal(small_chain, tmp_path, capsys):
    inc = devchain_window(small_chain.manifest, "small")
    ingest(small_chain.url, incident=inc, warehouse=tmp_path / "a", progress=None)  # stderr is not a tty here
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("ingest: ")]
    for stage in STAGES:
        assert sum(x.startswith(f"ingest: {stage} done in ") for x in lines) == 1, (stage, err)
    assert "\r" not in err  # no bar drawn into a log file
    ingest(small_chain.url, incident=inc, warehouse=tmp_path / "b", progress=False)
    assert capsys.readouterr().err == ""


def test_bar_on_a_terminal_from_the_first_moment(small_chain, tmp_path, capsys):
    inc = devchain_window(small_chain.manifest, "small")
    ingest(small_chain.url, incident=inc, warehouse=tmp_path / "a", progress=True)
    err = capsys.readouterr().err
    for stage in STAGES:
        assert f"{stage}:" in err, (stage, err)  # a bar per stage, discovery included
