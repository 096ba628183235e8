"""`postmortem plan` / `run --dry-run`: the estimate made from cheap questions is of the same order
of magnitude as what the run then costs (both printed), writes nothing, and prints text or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import devchain_incident
from postmortem.incidents import devchain_window
from postmortem.ingest.pipeline import ingest
from postmortem.ingest.plan import estimate, render

pytestmark = pytest.mark.chain
COMPARED = (("requests", "requests"), ("calls", "calls"), ("getlogs_calls", "getlogs_calls"),
            ("eth_calls", "eth_calls"), ("reads", "reads"), ("logs", "logs_received"),
            ("bytes_received", "bytes_received"))


def _compare(plan: dict, cost: dict, label: str) -> None:
    print(f"\n{label}: estimate vs actual")
    for est_key, act_key in COMPARED:
        print(f"  {est_key:15} {plan['expected'][est_key]:>12,} {cost[act_key]:>12,}")
    for est_key, act_key in COMPARED:
        est, act = plan["expected"][est_key], cost[act_key]
        assert act > 0 and est > 0, (label, est_key, est, act)
        assert 0.1 <= est / act <= 10, (label, est_key, est, act)  # the same order of magnitude


@pytest.mark.parametrize("users", ["incident", "all"])
def test_plan_matches_the_run_in_order_of_magnitude(small_chain, tmp_path, users):
    inc = devchain_window(small_chain.manifest, "small")
    plan = estimate(small_chain.url, incident=inc, users=users, requests_per_second=25, allow_unfinalized=True)
    assert plan["chain_id"] == 31337 and plan["users"] == users and plan["markets"] >= 1
    assert plan["plan_cost"]["calls"] < plan["expected"]["calls"]  # the plan is cheaper than the run
    text = render(plan)
    assert "expected:" in text and "25 requests/s" in text
    summary = ingest(small_chain.url, incident=inc, warehouse=tmp_path / "wh", progress=False, users=users)
    _compare(plan, summary["cost"], f"small, users {users}")


def test_plan_on_the_incident(incident_chain, incident_warehouse):
    inc = devchain_incident(incident_chain)
    plan = estimate(incident_chain.url, incident=inc, allow_unfinalized=True)
    _compare(plan, incident_warehouse["summary"]["cost"], "devchain incident, default scope")


def test_plan_and_dry_run_cli(incident_chain, tmp_path):
    env = {**os.environ, "POSTMORTEM_DEVCHAIN_DIR": str(incident_chain.directory)}
    cmd = [sys.executable, "-m", "postmortem.cli"]
    exe = os.path.join(os.path.dirname(sys.executable), "postmortem")
    if os.path.exists(exe):
        cmd = [exe]
    wh = tmp_path / "wh"
    r = subprocess.run([*cmd, "plan", "--incident", "devchain-wsteth-capo-2026-03-10", "--format", "json",
                        "--requests-per-second", "10"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["expected"]["requests_per_second"] == 10 and p["expected"]["seconds"] >= p["expected"]["calls"] / 10
    r = subprocess.run([*cmd, "run", "--incident", "devchain-wsteth-capo-2026-03-10", "--dry-run",
                        "--warehouse", str(wh)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "expected:" in r.stdout and "HTTP requests" in r.stdout
    assert not wh.exists()  # a dry run writes nothing
