"""One number per concept: the headline, the figure cards, the tables, report.json and
reimbursements.csv give the same owed total, oracle loss and bonus loss, to the wei; the text is
plain; a report folder holds only this report's files; the same warehouse gives the same bytes."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest

from postmortem.reports import fmt
from postmortem.reports.api import FILE_NAMES, write_report
from postmortem.reports.model import build_model
from postmortem.reports.policy import Policy

from helpers.synthetic import INCIDENT, U, build_warehouse, reimbursable_wei
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("one-number") / "warehouse")


@pytest.fixture(scope="module")
def written(syn, tmp_path_factory):
    return write_report(syn.root, INCIDENT, tmp_path_factory.mktemp("one-number-out"))


def prose(md: str) -> str:
    """The Markdown without its SQL blocks and code spans (names may appear there, not in the words)."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"```sql\n.*?\n```", "", md, flags=re.S))


def eth_in(text: str, before: str) -> Decimal:
    """The ETH amount written right after ``before`` (e.g. 'are owed ')."""
    m = re.search(re.escape(before) + r"([0-9,]+\.[0-9]+) ETH", text)
    assert m, f"no ETH amount after {before!r}"
    return Decimal(m.group(1).replace(",", ""))


def test_owed_is_one_number_in_every_format(syn, written):
    """Parse each written file on its own and hold them to one another and to the rows the test wrote."""
    rows = list(csv.DictReader(io.StringIO(written["csv"].read_text())))
    data = json.loads(written["json"].read_text())
    md = written["md"].read_text()
    html = written["html"].read_text()
    q = data["quantities"]

    expected = reimbursable_wei(syn.rows)  # the replay's rule, computed by the test
    csv_total = sum(int(r["total_wei"]) for r in rows)
    assert csv_total == sum(expected.values())
    assert csv_total == int(q["owed_wei"]) == int(data["reimbursement"]["totals"]["total_wei"])
    assert csv_total == sum(int(r["total_wei"]) for r in data["reimbursement"]["rows"])
    # owed = oracle part + bonus part, summed exactly as the CSV columns are.
    assert csv_total == sum(int(r["oracle_loss_wei"]) + int(r["bonus_loss_wei"]) + int(r["goodwill_wei"]) for r in rows)
    oracle = sum(r["oracle_loss_eth_wei"] + r["fee_oracle_loss_eth_wei"] for r in syn.rows)
    bonus = sum(r["bonus_loss_eth_wei"] for r in syn.rows if r["verdict"] == "wrongly_eligible")
    assert sum(int(r["oracle_loss_wei"]) for r in rows) == int(q["owed_oracle_part_wei"]) == int(q["oracle_loss_wei"]) == oracle
    assert sum(int(r["bonus_loss_wei"]) for r in rows) == int(q["owed_bonus_part_wei"]) == int(q["bonus_loss_wei"]) == bonus
    assert int(data["figures"]["oracle_loss"]["value"]["eth_wei"]) == oracle
    assert int(data["figures"]["bonus_loss"]["value"]["eth_wei"]) == bonus
    assert oracle + bonus == csv_total  # every borrower here is owed something, so nothing is left out

    # The headline (Markdown lede, HTML lede, JSON headline) shows those numbers rounded, and they add up.
    lede = " ".join(data["headline"])
    assert lede in md and all(f"<p>{s}</p>" in html.replace("&#x27;", "'") for s in data["headline"])
    shown_owed = eth_in(lede, "are owed ")
    assert shown_owed == Decimal(fmt.eth(csv_total, 2).split()[0].replace(",", ""))
    shown_oracle = eth_in(lede, "Oracle loss: ")
    shown_bonus = eth_in(lede, "Bonus loss: ")
    assert shown_oracle == Decimal(fmt.units(oracle, 18, 2).replace(",", ""))
    assert shown_bonus == Decimal(fmt.units(bonus, 18, 2).replace(",", ""))
    parts = re.search(r"are owed [0-9,.]+ ETH \(about \$[0-9,]+ at the true ETH price of \$([0-9,.]+) at block "
                      r"([0-9,]+), the last liquidation\): ([0-9,.]+) ETH oracle loss \+ ([0-9,.]+) ETH bonus loss", lede)
    assert parts, lede
    assert Decimal(parts.group(3).replace(",", "")) == shown_oracle
    assert Decimal(parts.group(4).replace(",", "")) == shown_bonus
    assert abs(shown_oracle + shown_bonus - shown_owed) <= Decimal("0.01")  # only display rounding between them
    # USD: owed × the true ETH price the warehouse holds at the last liquidation, stated in the lede.
    last = max(syn.rows, key=lambda r: (r["block_number"], r["transaction_index"], r["log_index"]))
    assert parts.group(2).replace(",", "") == str(last["block_number"])
    assert int(q["owed_usd_base"]) == csv_total * last["eth_price_true"] // 10**18
    assert f"about {fmt.usd(int(q['owed_usd_base']))}" in lede

    # The reimbursement table's total line (Markdown) is the same wei, written out in full.
    assert f"**{fmt.exact_units(csv_total, 18)}**" in md
    # The check that proves it is in the report, passed.
    (check,) = [c for c in data["checks"] if c["key"] == "one_number"]
    assert check["ok"] is True and fmt.exact_units(csv_total, 18) in check["detail"]


def test_the_glossary_is_the_same_everywhere(written):
    from postmortem.schema_docs import GLOSSARY, describe

    data = json.loads(written["json"].read_text())
    md = written["md"].read_text()
    html = written["html"].read_text()
    schema = describe("glossary")
    assert [g["key"] for g in data["glossary"]] == [q.key for q in GLOSSARY]
    for q in GLOSSARY:
        assert f"- **{q.name}** (`{q.key}`): {q.definition}" in md
        assert q.definition in schema
        assert f'id="g-{q.key}"' in html
    # Every quantity the JSON carries has its name in the glossary.
    keys = {q.key for q in GLOSSARY}
    assert {k for k in data["quantities"] if k.endswith("_wei")} - keys <= {"owed_oracle_fee_part_wei",
                                                                            "owed_goodwill_wei"}


def test_a_stated_policy_names_its_parts_and_still_adds_up(syn, tmp_path):
    paths = write_report(syn.root, INCIDENT, tmp_path / "out", policy=Policy.from_options(rate_gap="0.034902118",
                                                                                         bonus_bps="100"))
    data = json.loads(paths["json"].read_text())
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    q = data["quantities"]
    total = sum(int(r["total_wei"]) for r in rows)
    assert total == int(q["owed_wei"]) == int(q["owed_oracle_part_wei"]) + int(q["owed_bonus_part_wei"])
    assert int(q["owed_oracle_part_wei"]) != int(q["oracle_loss_wei"])  # the policy's part is another quantity...
    lede = " ".join(data["headline"])
    assert "ETH oracle part + " in lede and "ETH bonus part" in lede  # ...so it carries the other name


def test_text_is_plain_and_provenance_says_no_none(written):
    md = written["md"].read_text()
    words = prose(md[:md.index("## Provenance")])  # the provenance lists the warehouse's files by table name
    for internal in ("last_correct_block_before", "fixed_block", "liquidator_gains", "borrower_losses",
                     "exposed_loss_eth", "debt_usd", "oracle_loss +", "fee_oracle_loss", "liquidated_collateral_amount",
                     "debt_to_cover"):
        assert internal not in words, internal
    html_words = re.sub(r"<[^>]+>", " ", re.sub(r"<pre>.*?</pre>", "", written["html"].read_text().split(
        'id="provenance"')[0], flags=re.S))  # the words, not ids or SQL
    for internal in ("last_correct_block_before", "liquidator_gains", "borrower_losses"):
        assert internal not in html_words, internal
    provenance = md[md.index("## Provenance"):]
    assert "None" not in prose(provenance)
    assert "None" not in re.sub(r"<pre>.*?</pre>", "", written["html"].read_text().split('id="provenance"')[1], flags=re.S)
    lede = md.split("\n\n")[2]
    assert "capped ratio" in lede and "liquidation bonus (the extra collateral" in lede
    assert "health factor (collateral weighted" in lede


def test_provenance_of_an_unrecorded_replay_says_not_recorded(tmp_path):
    syn = build_warehouse(tmp_path / "w", record_replay=False)
    paths = write_report(syn.root, INCIDENT, tmp_path / "out", formats="md,html")
    for key in ("md", "html"):
        text = paths[key].read_text()
        part = text[text.index("Provenance"):]
        assert "None" not in re.sub(r"(```sql\n.*?\n```|<pre>.*?</pre>)", "", part, flags=re.S), key


def test_same_warehouse_same_bytes(syn, written, tmp_path):
    again = write_report(syn.root, INCIDENT, tmp_path / "again")
    for key, path in written.items():
        assert again[key].read_bytes() == path.read_bytes(), key


def test_a_report_replaces_the_files_of_an_earlier_policy(syn, tmp_path):
    out = tmp_path / "out"
    paid = tmp_path / "paid.csv"
    paid.write_text("user,amount_eth\n" + f"{U[0]},1.5\n")
    first = write_report(syn.root, INCIDENT, out, compare_paid=paid)
    assert (out / "comparison.csv").exists() and "comparison_csv" in first
    mine = out / "notes.txt"
    mine.write_text("the user's own file")
    (out / ".report.md.12345.tmp").write_text("left by a killed run")
    (out / "report.md.bak").write_text("the user's backup")
    second = write_report(syn.root, INCIDENT, out)  # no --compare-paid this time
    assert not (out / "comparison.csv").exists()  # would contradict the new report
    assert not (out / ".report.md.12345.tmp").exists()
    assert mine.read_text() == "the user's own file" and (out / "report.md.bak").exists()  # not postmortem's
    assert sorted(p.name for p in out.iterdir()) == sorted(["notes.txt", "report.md.bak"] +
                                                           [FILE_NAMES[k] for k in second])
    third = write_report(syn.root, INCIDENT, out, formats="md")
    assert set(third) == {"md"} and not (out / "report.html").exists() and not (out / "reimbursements.csv").exists()


def test_model_quantities_are_exact_ints(syn):
    q = build_model(syn.root, INCIDENT).quantities()
    assert all(v is None or type(v) is int for v in q.values())
    assert q["owed_wei"] > 2**64  # well past what a float holds exactly
