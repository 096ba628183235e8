"""The report end to end on the devchain: ingest and replay the reproduced incident, write the
report, and hold its figures to the scenario's ground truth and to the replay's own summary."""

from __future__ import annotations

import json

import pytest

from postmortem.sql import run_sql
from postmortem.reports.api import build_and_write

from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)

from helpers.chromium import ARTIFACTS, CHROMIUM, chromium, console_lines
from helpers.report_text import as_text, shaped

pytestmark = pytest.mark.chain
INCIDENT = "devchain-wsteth-capo-2026-03-10"


@pytest.fixture(scope="module")
def reported(incident_chain, tmp_path_factory):
    from postmortem.ingest.pipeline import ingest
    from postmortem.incidents import load_incident
    from postmortem.replay.engine import replay

    root = tmp_path_factory.mktemp("warehouse-report")
    inc = load_incident(INCIDENT, devchain_dir=incident_chain.directory)
    ingest(incident_chain.url, incident=inc, warehouse=root, progress=False)
    summary = replay(root, INCIDENT)
    model, paths = build_and_write(root, INCIDENT, tmp_path_factory.mktemp("report"))
    return {"root": root, "summary": summary, "model": model, "paths": paths,
            "truth": incident_chain.ground_truth["liquidations"]}


def test_figures_match_the_ground_truth(reported):
    m, truth = reported["model"], reported["truth"]
    wrong = [t for t in truth if t["wrongly_eligible"]]
    assert m.value("liquidations") == len(truth)
    assert m.value("wrongly_eligible") == len(wrong)
    assert m.value("borrowers_affected") == len({t["user"] for t in wrong})
    (seized,) = m.value("collateral_seized")
    assert seized["collateral_symbol"] == "wstETH"
    assert seized["liquidated_collateral_amount"] == sum(int(t["liquidated_collateral_amount"]) for t in wrong)
    debt = {r["debt_symbol"]: r["debt_repaid"] for r in m.value("debt_repaid")}
    expected: dict[str, int] = {}
    for t in wrong:
        expected[t["debt_asset"]] = expected.get(t["debt_asset"], 0) + int(t["debt_to_cover"])
    assert debt == expected
    rows = {(r["transaction_hash"], r["log_index"]): r for r in m.liquidations.rows}
    for t in truth:
        verdict = rows[(t["transaction_hash"], t["log_index"])]["verdict"]
        assert (verdict == "wrongly_eligible") == t["wrongly_eligible"], t["transaction_hash"]


def test_figures_match_the_replay_summary(reported):
    m, s = reported["model"], reported["summary"]
    # One number per concept (the glossary): the replay's summary and the report give the same oracle loss
    # (every liquidation, its protocol-fee part included) and bonus loss (the wrongly eligible only).
    ol = m.value("oracle_loss")
    assert 0 < ol["fee_part_eth_wei"] < ol["eth_wei"] == s["oracle_loss_eth_wei"]
    assert m.value("bonus_loss")["eth_wei"] == sum(r["bonus_loss_eth"] for r in m.wrongly_eligible) == s["bonus_loss_eth_wei"]
    assert m.value("owed_chain_prices")["eth_wei"] == m.reimbursement.total_wei == s["reimbursable_eth_wei"]
    q = m.quantities()
    assert q["owed_wei"] == q["oracle_loss_wei"] + q["bonus_loss_wei"] == s["reimbursable_eth_wei"]
    assert len(m.at_risk.rows) == s["at_risk"]


def test_the_incident_reads_like_the_incident(reported):
    """The capped wstETH rate and the live one, as the reference post-mortem gives them."""
    m = reported["model"]
    p = m.value("price_at_first_wrong_liquidation")
    assert abs(m.divergence_ppm() + 28_400) < 100  # priced about 2.84% low
    w = m.value("mispricing_window")
    blocks = [r["block_number"] for r in m.wrongly_eligible]
    assert w["first_block"] <= min(blocks) and max(blocks) <= w["last_block"] and p["block_number"] == min(blocks)


def test_every_check_passes_and_every_figure_reproduces(reported):
    m, root = reported["model"], reported["root"]
    assert {c.key: c.ok for c in m.checks} == {"raw_log_coverage": True, "log_coverage": True, "borrower_losses": True,
                                              "inputs_unchanged": True, "replay_matches_log": True, "one_number": True,
                                              "verdict_kinds": True}
    for key, f in m.figures.items():
        assert as_text(shaped(f.shape, json.loads(run_sql(root, f.sql, "json")))) == as_text(f.value), key


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
def test_the_html_renders_in_chromium(reported, tmp_path):
    html = reported["paths"]["html"]
    ARTIFACTS.mkdir(exist_ok=True)
    for name, size in (("desktop", "1280,2400"), ("phone", "390,2400")):
        shot = tmp_path / f"report-devchain-{name}.png"
        out = chromium(html.as_uri(), tmp_path / f"profile-{name}", f"--screenshot={shot}", f"--window-size={size}")
        assert out.returncode == 0 and console_lines(out.stderr) == []
        (ARTIFACTS / shot.name).write_bytes(shot.read_bytes())
