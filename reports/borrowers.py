"""Each liquidated borrower's own case, for the report's per-borrower section (found by address).

For every borrower in the verdicts: their liquidations with the verdict and the health factors
under both prices, their health factor at every checkpoint of the replay's ``health`` table
(where either price put them near liquidation), what they lost and what they are owed under the
report's policy (the reimbursement list's own row, so the numbers are the list's). ``postmortem
explain --user ADDRESS`` tells the same story from the replay itself, with the liquidation price.
"""

from __future__ import annotations

from postmortem.reports.columns import literal, sql_text
from postmortem.reports.parts import Table
from postmortem.reports.reader import RunReader
from postmortem.reports.reimbursement import Reimbursement


__all__ = ["borrowers_table"]


def borrowers_table(rd: RunReader, liquidations: Table, reimbursement: Reimbursement) -> Table:
    """One row per liquidated borrower: ``user``, ``liquidations`` (rows), ``health`` (rows), ``owed`` (row)."""
    users = sorted({r["user"] for r in liquidations.rows if r.get("user")})
    if not users or "health" not in rd.tables:
        health_rows: list[dict] = []
        sql = ""
    else:
        inlist = ", ".join(literal(u) for u in users)
        sql = sql_text(f"""
            SELECT h."user", h.market, h.checkpoint, h.checkpoint_kind, h.block_number, h.timestamp,
                   h.hf_reported, h.hf_true, h.liquidated_here
            FROM health h
            WHERE {rd.where('h')} AND h."user" IN ({inlist})
            ORDER BY h."user", h.checkpoint, h.market""")
        health_rows = rd.rows(sql)
    owed = {r["user"]: r for r in reimbursement.rows}
    out = []
    for u in users:
        mine = [r for r in liquidations.rows if r.get("user") == u]
        path = [h for h in health_rows if h["user"] == u]
        lost = [r.get("borrower_loss_eth") for r in mine]
        out.append({
            "user": u,
            "markets": ", ".join(sorted({r["market"] for r in mine if r.get("market")})),
            "liquidations": mine,
            "health": _collapse(path),
            "borrower_loss_wei": None if any(x is None for x in lost) else sum(int(x) for x in lost),
            "owed": owed.get(u),
        })
    out.sort(key=lambda b: (-(b["owed"]["total_wei"] if b["owed"] else 0), b["user"]))
    return Table("borrowers", "Each liquidated borrower's case", sql, out,
                 note="find an address with the browser's search, or open report.html#<address>")


def _collapse(path: list[dict]) -> list[dict]:
    """Consecutive checkpoints with the same health factors become one row with a block range."""
    out: list[dict] = []
    for h in path:
        last = out[-1] if out else None
        if (last is not None and last["market"] == h["market"] and last["hf_reported"] == h["hf_reported"]
                and last["hf_true"] == h["hf_true"] and not h["liquidated_here"] and not last["liquidated_here"]):
            last["last_block"] = h["block_number"]
            last["checkpoints"] += 1
            continue
        out.append({**h, "first_block": h["block_number"], "last_block": h["block_number"], "checkpoints": 1})
    return out
