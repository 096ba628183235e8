"""Reimbursement policies reproduce a payout computed by hand; a paid list is compared line by line."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from postmortem.errors import PostmortemError
from postmortem.reports.api import build_and_write
from postmortem.reports.model import build_model
from postmortem.reports.policy import Policy, compare, eth_to_wei, read_paid_csv
from postmortem.reports.render_csv import render_comparison_csv, render_csv

from helpers.hand_specs import A, B, C, D, HAND_A, HAND_B, HAND_C, HAND_C_ORACLE, HAND_D_ORACLE, hand_specs
from helpers.report_text import as_text, sql_rows
from helpers.synthetic import ETH, INCIDENT, build_warehouse
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)

@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("reports-policy") / "warehouse", hand_specs())


def dao(**kw) -> Policy:
    return Policy.from_options(rate_gap="0.034902118", bonus_bps="100", **kw)


def test_stated_policy_reproduces_the_hand_computed_payout(syn):
    m = build_model(syn.root, INCIDENT, policy=dao(scope="wrongly-eligible"))
    assert {r["user"]: r["total_wei"] for r in m.reimbursement.rows} == {A: HAND_A, B: HAND_B}
    a = m.reimbursement.rows[0]
    assert (a["user"], a["oracle_loss_wei"], a["bonus_loss_wei"]) == (A, 4_931_669_273_400_000_000, 1_705_000_000_000_000_000)
    assert m.reimbursement.total_wei == HAND_A + HAND_B
    # The CSV carries the same exact amounts, in wei and in ETH with every digit.
    lines = list(csv.DictReader(io.StringIO(render_csv(m))))
    assert [(x["user"], x["total_wei"], x["total_eth"]) for x in lines] == [
        (A, str(HAND_A), "6.636669273400000000"), (B, str(HAND_B), "0.424119062004308903")]


def test_default_scope_is_the_replays_rule(syn):
    """Oracle loss of every liquidation (the anomaly's too), bonus of the wrongly eligible ones only."""
    m = build_model(syn.root, INCIDENT, policy=dao())
    assert {r["user"]: r["total_wei"] for r in m.reimbursement.rows} == {
        A: HAND_A, B: HAND_B, C: HAND_C_ORACLE, D: HAND_D_ORACLE}
    assert all(r["fee_oracle_loss_wei"] == 0 for r in m.reimbursement.rows)  # a rate gap has no fee term


def test_goodwill_and_window_scope(syn):
    m = build_model(syn.root, INCIDENT, policy=dao(goodwill_eth="1", scope="window"))
    owed = {r["user"]: r["total_wei"] for r in m.reimbursement.rows}
    # The anomaly (D) is never paid automatically; the eligible-anyway borrower C is, in the window scope.
    assert owed == {A: HAND_A + ETH, B: HAND_B + ETH, C: HAND_C + ETH}
    assert m.reimbursement.totals()["goodwill_wei"] == 3 * ETH


def test_parts_a_policy_leaves_out_keep_the_chain_value(syn):
    m = build_model(syn.root, INCIDENT, policy=Policy.from_options(bonus_bps="100"))
    oracle: dict[str, int] = {}
    fee: dict[str, int] = {}
    for r in syn.rows:
        # The oracle part holds its protocol-fee part; fee_oracle_loss_wei says how much of it that is.
        oracle[r["user"]] = oracle.get(r["user"], 0) + r["oracle_loss_eth_wei"] + r["fee_oracle_loss_eth_wei"]
        fee[r["user"]] = fee.get(r["user"], 0) + r["fee_oracle_loss_eth_wei"]
    assert {r["user"]: r["oracle_loss_wei"] for r in m.reimbursement.rows} == oracle
    assert {r["user"]: r["fee_oracle_loss_wei"] for r in m.reimbursement.rows} == fee
    assert {r["user"]: r["bonus_loss_wei"] for r in m.reimbursement.rows} == {
        A: 1_705_000_000_000_000_000, B: 110_000_000_000_000_000, C: 0, D: 0}


def test_chain_prices_list_is_reproduced_by_its_sql(syn):
    for scope in ("reimbursable", "wrongly-eligible", "window"):
        m = build_model(syn.root, INCIDENT, policy=Policy.from_options(goodwill_eth="0.5", scope=scope))
        got = sql_rows(syn.root, m.reimbursement.chain_sql)
        want = [{k: r[k] for k in ("user", "markets", "liquidations", "wrongly_eligible", "oracle_loss_wei",
                                   "fee_oracle_loss_wei", "bonus_loss_wei", "goodwill_wei", "total_wei")}
                for r in m.reimbursement.rows]
        assert as_text(got) == as_text(want), scope
        assert all(r["goodwill_wei"] == ETH // 2 for r in m.reimbursement.rows)


def test_compare_paid_finds_every_difference(syn, tmp_path):
    paid = tmp_path / "paid.csv"
    paid.write_text(
        "user,amount_eth\n"
        f"{A.upper().replace('0X', '0x')},6.6366692734\n"      # exact (address case does not matter)
        f"{B},0.424118\n"                                        # short by 0.000001062004308903
        "0x00000000000000000000000000000000000000e1,0.5\n"       # paid, not owed
        "0x00000000000000000000000000000000000000e1,0.25\n"      # ... twice
    )
    m = build_model(syn.root, INCIDENT, policy=dao(scope="window"), compare_paid=paid)
    c = m.comparison
    rows = {r["user"]: r for r in c.rows}
    assert rows[A]["status"] == "match" and rows[A]["difference_wei"] == 0
    assert rows[B]["status"] == "underpaid" and rows[B]["difference_wei"] == -1_062_004_308_903
    assert rows[C]["status"] == "not_paid" and rows[C]["paid_wei"] is None and rows[C]["difference_wei"] == -HAND_C
    e1 = "0x00000000000000000000000000000000000000e1"
    assert rows[e1]["status"] == "not_owed" and rows[e1]["paid_wei"] == 750_000_000_000_000_000 and rows[e1]["paid_lines"] == 2
    assert c.owed_total_wei == HAND_A + HAND_B + HAND_C
    assert c.paid_total_wei == HAND_A + 424_118 * 10**12 + 750_000_000_000_000_000
    j = c.to_json()
    assert j["missing_users"] == [C] and j["extra_users"] == [e1]
    assert j["counts"] == {"match": 1, "overpaid": 0, "underpaid": 1, "not_paid": 1, "not_owed": 1}
    # Largest difference first.
    assert [r["user"] for r in c.rows] == [C, e1, B, A]
    text = render_comparison_csv(m)
    assert text.splitlines()[0] == "user,status,owed_eth,paid_eth,difference_eth,owed_wei,paid_wei,difference_wei,paid_lines"
    assert f"{B},underpaid,0.424119062004308903,0.424118000000000000,-0.000001062004308903," in text


def test_tolerance(syn, tmp_path):
    paid = tmp_path / "paid.csv"
    paid.write_text(f"amount_eth,user\n6.63666927,{A}\n0.42411906,{B}\n")  # rounded to 8 decimals, columns swapped
    m = build_model(syn.root, INCIDENT, policy=dao(), compare_paid=paid, tolerance_wei=eth_to_wei("0.00000001"))
    assert m.comparison.matches == 2


def test_compare_paid_writes_comparison_csv(syn, tmp_path):
    paid = tmp_path / "paid.csv"
    paid.write_text(f"user,amount_eth\n{A},1\n")
    _, paths = build_and_write(syn.root, INCIDENT, tmp_path / "out", ("csv",), dao(), paid)
    assert set(paths) == {"csv", "comparison_csv"} and paths["comparison_csv"].name == "comparison.csv"


@pytest.mark.parametrize("content, message", [
    ("", "is empty; it needs a header line 'user,amount_eth'"),
    ("address,eth\n", "needs the columns user and amount_eth; its header is address,eth"),
    ("user,amount_eth\n0x12,1\n", "line 2 of .*: '0x12' is not an address"),
    ("user,amount_eth\n" + "0x" + "a" * 40 + ",1e3\n", "the amount '1e3' is not a plain non-negative decimal number"),
    ("user,amount_eth\n" + "0x" + "a" * 40 + ",0.1234567890123456789\n", "has 19 decimals; at most 18"),
    ("user,amount_eth\n" + "0x" + "a" * 40 + "\n", "line 2 of .* has 1 fields"),
])
def test_bad_paid_lists_are_one_sentence(tmp_path, content, message):
    path = tmp_path / "paid.csv"
    path.write_text(content)
    with pytest.raises(PostmortemError, match=message):
        read_paid_csv(path)


def test_missing_paid_list(tmp_path):
    with pytest.raises(PostmortemError, match="does not exist; pass the CSV of paid amounts"):
        read_paid_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize("kw, message", [
    ({"rate_gap": "-0.1"}, "not a plain non-negative decimal"),
    ({"rate_gap": "abc"}, "the rate gap 'abc' is not a plain non-negative decimal number"),
    ({"bonus_bps": "1.5"}, "not a whole number of basis points"),
    ({"bonus_bps": "10001"}, "between 0 and 10000"),
    ({"goodwill_eth": "0.0000000000000000001"}, "has 19 decimals"),
    ({"scope": "everyone"}, "unknown reimbursement scope 'everyone'"),
])
def test_bad_policy_options_are_one_sentence(kw, message):
    with pytest.raises(PostmortemError, match=message):
        Policy.from_options(**kw)


def test_policy_values_are_exact():
    p = Policy.from_options(rate_gap="0.034902118", bonus_bps="100", goodwill_eth="1")
    assert p.rate_gap_eth == Decimal("0.034902118") and p.bonus_bps == 100 and p.goodwill_wei == ETH
    assert p.to_json() == {"name": "the stated policy", "scope": "reimbursable", "rate_gap_eth": "0.034902118",
                           "bonus_bps": 100, "goodwill_wei": ETH}
    assert Policy().uses_chain_prices and Policy().name == "the chain's prices"


def test_bonus_for_non_eth_debt_needs_an_eth_price(tmp_path):
    specs = hand_specs()
    specs[2].overrides["eth_price_true"] = None  # the replay had no ETH price for the cbETH liquidation
    syn = build_warehouse(tmp_path / "w", specs, price_path=False)
    with pytest.raises(PostmortemError, match="repaid non-WETH debt and the warehouse has no ETH price at its block"):
        build_model(syn.root, INCIDENT, policy=dao())
    build_model(syn.root, INCIDENT, policy=Policy.from_options(rate_gap="0.034902118"))  # no bonus basis: fine


def test_compare_is_symmetric_in_users():
    from postmortem.reports.policy import PaidList

    c = compare({"0xa": 5}, PaidList("p.csv", {"0xb": 7}, {"0xb": 1}))
    assert [(r["user"], r["status"], r["difference_wei"]) for r in c.rows] == [("0xb", "not_owed", 7), ("0xa", "not_paid", -5)]
    assert c.difference_total_wei == 2
