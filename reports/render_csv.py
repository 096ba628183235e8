"""The per-borrower reimbursement list as CSV, and the line-by-line comparison with a paid list.

Exact and deterministic: amounts in wei as integers, ETH as exact decimals with all 18 digits,
rows in a fixed order (largest amount first, then address), ``\\n`` line endings.

Columns of ``reimbursements.csv``, in the glossary's words (``postmortem schema glossary``):
``oracle_loss_wei`` is the oracle part, its protocol-fee part included; ``fee_oracle_loss_wei`` is
how much of it is on the protocol fee (already inside ``oracle_loss_wei``, never added again);
``bonus_loss_wei`` the bonus part; ``total_wei = oracle_loss_wei + bonus_loss_wei + goodwill_wei``,
and the column's sum is the report's owed total, the same wei as report.json's ``quantities.owed_wei``.
"""

from __future__ import annotations

import csv
import io

from postmortem.reports.fmt import exact_units
from postmortem.reports.model import ReportModel

REIMBURSEMENT_COLUMNS = ("user", "markets", "liquidations", "wrongly_eligible", "oracle_loss_wei", "fee_oracle_loss_wei",
                         "bonus_loss_wei", "goodwill_wei", "total_wei", "total_eth")
COMPARISON_COLUMNS = ("user", "status", "owed_eth", "paid_eth", "difference_eth", "owed_wei", "paid_wei",
                      "difference_wei", "paid_lines")


def _csv(header: tuple[str, ...], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def render_csv(m: ReportModel) -> str:
    """The reimbursement list: one line per borrower owed something under the report's policy."""
    rows = [[r["user"], r["markets"], r["liquidations"], r["wrongly_eligible"], r["oracle_loss_wei"],
             r["fee_oracle_loss_wei"], r["bonus_loss_wei"], r["goodwill_wei"], r["total_wei"],
             exact_units(r["total_wei"], 18)]
            for r in m.reimbursement.rows]
    return _csv(REIMBURSEMENT_COLUMNS, rows)


def render_comparison_csv(m: ReportModel) -> str:
    """The comparison with the paid list (``difference = paid - owed``); empty fields where a side is absent."""
    if m.comparison is None:
        raise ValueError("the report has no paid list to compare with")

    def e(x):
        return "" if x is None else exact_units(x, 18)

    def i(x):
        return "" if x is None else x

    rows = [[r["user"], r["status"], e(r["owed_wei"]), e(r["paid_wei"]), e(r["difference_wei"]),
             i(r["owed_wei"]), i(r["paid_wei"]), r["difference_wei"], r["paid_lines"]] for r in m.comparison.rows]
    return _csv(COMPARISON_COLUMNS, rows)
