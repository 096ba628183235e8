"""The same data gives the same report, to the byte (issue 16, last point).

A report shows only what derives from the data: the replay run id is a digest of the run's
inputs (so a replay of the same inputs is the same run, rewritten, never a second one), and the
times of the runs and the node's URL (its port changes from one devchain to the next) stay in
the ``runs`` records, where the report's SQL finds them.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import _start
from postmortem.sql import run_sql

from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.chain

# The small scenario is replayed under the devchain incident's catalog entry (its true-price model).
INCIDENT = "devchain-wsteth-capo-2026-03-10"
FILES = ("report.md", "report.html", "report.json", "reimbursements.csv")


def _ingest(dc, root) -> None:
    from postmortem.incidents import devchain_window, incident_file
    from postmortem.ingest.pipeline import ingest

    inc = devchain_window(dc.manifest, INCIDENT, raw=incident_file(INCIDENT)[0])
    ingest(dc.url, incident=inc, warehouse=root, progress=False)


def _replay_and_report(root, out) -> tuple[dict, dict[str, bytes]]:
    from postmortem.replay.engine import replay
    from postmortem.reports.api import write_report

    summary = replay(root, INCIDENT)
    paths = write_report(root, INCIDENT, out)
    assert sorted(p.name for p in paths.values()) == sorted(FILES)
    return summary, {name: (out / name).read_bytes() for name in FILES}


def _first_difference(a: bytes, b: bytes) -> str:
    la, lb = a.decode().splitlines(), b.decode().splitlines()
    for n, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            return f"line {n}: {x[:200]!r} vs {y[:200]!r}"
    return f"{len(la)} vs {len(lb)} lines"


def _assert_same(one: dict[str, bytes], two: dict[str, bytes]) -> None:
    for name in FILES:
        assert one[name] == two[name], f"{name} differs at {_first_difference(one[name], two[name])}"


@pytest.fixture(scope="module")
def small_warehouse(small_chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism") / "wh"
    _ingest(small_chain, root)
    return root


def test_the_same_warehouse_replayed_and_reported_twice_gives_the_same_bytes(small_warehouse, tmp_path):
    root = tmp_path / "wh"
    shutil.copytree(small_warehouse, root)
    first, one = _replay_and_report(root, tmp_path / "a")
    second, two = _replay_and_report(root, tmp_path / "b")
    _assert_same(one, two)
    # The same inputs are the same run: rewritten in place, recorded twice in runs, counted once.
    assert first["run_id"] == second["run_id"]
    ids = json.loads(run_sql(root, "select distinct run_id from verdicts_all_runs", fmt="json"))
    assert ids == [{"run_id": first["run_id"]}]
    (n,) = json.loads(run_sql(root, "select count(*) n from verdicts", fmt="json"))
    assert n["n"] == first["liquidations"] == 5
    runs = json.loads(run_sql(root, "select run_id, started_at from runs where kind = 'replay' order by started_at",
                              fmt="json"))
    assert [r["run_id"] for r in runs] == [first["run_id"]] * 2 and runs[0]["started_at"] < runs[1]["started_at"]
    # What the report leaves out is still in the runs records: when each run ran, and the node's URL.
    text = one["report.md"].decode()
    assert "started_at" in text and "FROM runs" in text
    port = str(json.loads((root / "runs.jsonl").read_text().splitlines()[0])["params"]["rpc_url"]).rsplit(":", 1)[-1]
    assert port.strip("/").isdigit() and f":{port.strip('/')}" not in text


def test_other_inputs_are_another_run(small_warehouse, tmp_path):
    from postmortem.replay.engine import replay

    root = tmp_path / "wh"
    shutil.copytree(small_warehouse, root)
    default = replay(root, INCIDENT)
    constant = replay(root, INCIDENT, true_price_overrides=["wstETH=constant:2345.67"])
    assert constant["run_id"] != default["run_id"]
    every = json.loads(run_sql(root, "select run_id, count(*) n from verdicts_all_runs group by 1 order by 1",
                               fmt="json"))
    assert sorted(r["run_id"] for r in every) == sorted([default["run_id"], constant["run_id"]])
    latest = json.loads(run_sql(root, "select distinct run_id from verdicts", fmt="json"))
    assert latest == [{"run_id": constant["run_id"]}]
    # Replaying the first inputs again makes that run the latest once more, without a third run.
    again = replay(root, INCIDENT)
    assert again["run_id"] == default["run_id"]
    latest = json.loads(run_sql(root, "select distinct run_id from verdicts", fmt="json"))
    assert latest == [{"run_id": default["run_id"]}]
    assert len(json.loads(run_sql(root, "select distinct run_id from verdicts_all_runs", fmt="json"))) == 2


def test_two_devchains_of_the_same_scenario_give_the_same_report(small_chain, small_warehouse, tmp_path_factory):
    other = _start(tmp_path_factory, "small")
    try:
        assert other.url != small_chain.url  # another node, on another port, started later
        root = tmp_path_factory.mktemp("determinism-other") / "wh"
        _ingest(other, root)
    finally:
        other.node.stop()
    copy = tmp_path_factory.mktemp("determinism-first") / "wh"
    shutil.copytree(small_warehouse, copy)
    out = tmp_path_factory.mktemp("determinism-reports")
    first, one = _replay_and_report(copy, out / "one")
    second, two = _replay_and_report(root, out / "two")
    assert first["run_id"] == second["run_id"]
    _assert_same(one, two)
