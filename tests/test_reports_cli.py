"""`postmortem report` through click: it writes the documents, states policies, compares a paid
list, and fails in one sentence."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

import postmortem.cli_report  # noqa: F401  (registers the command; the lead wires it into cli._register)
from postmortem.cli import cli

from helpers.hand_specs import A, B, HAND_A, HAND_B, hand_specs
from helpers.synthetic import INCIDENT, build_warehouse
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("reports-cli") / "warehouse", hand_specs())


def run(*args: str):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def test_report_writes_every_format(syn, tmp_path):
    out = tmp_path / "out"
    r = run("--incident", INCIDENT, "--warehouse", str(syn.root), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["reimbursements.csv", "report.html", "report.json", "report.md"]
    assert "wrongly eligible" in r.output and f"html: {out / 'report.html'}" in r.output
    assert "borrowers are owed" in r.output
    assert json.loads((out / "report.json").read_text())["reimbursement"]["policy"]["scope"] == "reimbursable"


def test_stated_policy_and_paid_list(syn, tmp_path):
    paid = tmp_path / "paid.csv"
    paid.write_text(f"user,amount_eth\n{A},6.6366692734\n{B},0.4\n")
    out = tmp_path / "out"
    r = run("--incident", INCIDENT, "--warehouse", str(syn.root), "--out", str(out), "--format", "csv,json",
            "--rate-gap", "0.034902118", "--bonus-bps", "100", "--scope", "wrongly-eligible", "--compare-paid", str(paid))
    assert r.exit_code == 0, r.output
    lines = list(csv.DictReader(io.StringIO((out / "reimbursements.csv").read_text())))
    assert {x["user"]: int(x["total_wei"]) for x in lines} == {A: HAND_A, B: HAND_B}
    comparison = list(csv.DictReader(io.StringIO((out / "comparison.csv").read_text())))
    assert {x["user"]: x["status"] for x in comparison} == {A: "match", B: "underpaid"}
    data = json.loads((out / "report.json").read_text())
    assert data["reimbursement"]["policy"] == {"name": "the stated policy", "scope": "wrongly_eligible",
                                               "rate_gap_eth": "0.034902118", "bonus_bps": "100", "goodwill_wei": "0"}
    assert "1 match, 1 underpaid" in r.output


def test_tolerance_makes_rounded_payouts_match(syn, tmp_path):
    paid = tmp_path / "paid.csv"
    paid.write_text(f"user,amount_eth\n{A},6.636669\n{B},0.424119\n")
    r = run("--incident", INCIDENT, "--warehouse", str(syn.root), "--out", str(tmp_path / "o"), "--format", "csv",
            "--rate-gap", "0.034902118", "--bonus-bps", "100", "--scope", "wrongly-eligible",
            "--compare-paid", str(paid), "--tolerance-eth", "0.000001")
    assert r.exit_code == 0 and "2 match" in r.output


@pytest.mark.parametrize("args, message", [
    (["--format", "pdf"], "Error: unknown report format pdf; use any of md,html,json,csv"),
    (["--rate-gap", "3%"], "Error: the rate gap '3%' is not a plain non-negative decimal number"),
    (["--bonus-bps", "1.5"], "Error: the bonus basis '1.5' is not a whole number of basis points"),
    (["--goodwill-eth", "-1"], "Error: the goodwill amount '-1' is not a plain non-negative decimal number"),
    (["--compare-paid", "/nonexistent/paid.csv"], "Error: the paid list /nonexistent/paid.csv does not exist"),
    (["--run-id", "nope"], "Error: incident synthetic-wsteth-capo has no replay run nope"),
])
def test_errors_are_one_sentence(syn, tmp_path, args, message):
    r = CliRunner().invoke(cli, ["report", "--incident", INCIDENT, "--warehouse", str(syn.root),
                                 "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2
    assert r.output.startswith(message) and r.output.count("\n") == 1 and "Traceback" not in r.output


def test_unknown_incident_and_missing_warehouse(syn, tmp_path):
    r = CliRunner().invoke(cli, ["report", "--incident", "nope", "--warehouse", str(syn.root)])
    assert r.exit_code == 2 and "run `postmortem replay --incident nope` first" in r.output
    r = CliRunner().invoke(cli, ["report", "--incident", INCIDENT, "--warehouse", str(tmp_path / "none")])
    assert r.exit_code == 2 and "no warehouse at" in r.output


def test_help_documents_every_option():
    r = CliRunner().invoke(cli, ["report", "--help"])
    assert r.exit_code == 0
    for option in ("--incident", "--warehouse", "--out", "--format", "--run-id", "--rate-gap", "--bonus-bps",
                   "--goodwill-eth", "--scope", "--compare-paid", "--tolerance-eth"):
        assert option in r.output
    assert "0.034902118" in r.output
