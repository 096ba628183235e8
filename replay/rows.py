"""The replay's per-position summaries: borrowers' losses, liquidators' gains, positions at risk.

Built from the verdict rows and the at-risk states the replayer collected; every amount is an
exact integer (base currency units or ETH wei), ``None`` where a part has no ETH value.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

__all__ = ["at_risk_rows", "borrower_rows", "liquidator_rows", "sum_or_none"]


def at_risk_rows(risk: Mapping[tuple[str, str], dict], liquidated: set[tuple[str, str]],
                 market_of: Mapping[str, str]) -> list[dict]:
    """One row per position wrongly eligible at some checkpoint and never liquidated in the window."""
    rows = []
    for (pool, user), s in sorted(risk.items()):
        if (pool, user) in liquidated:
            continue
        rows.append({
            "market": market_of[pool], "pool": pool, "user": user,
            "checkpoints_wrongly_eligible": s["checkpoints"], "first_block": s["first_block"],
            "first_timestamp": s["first_timestamp"], "last_block": s["last_block"],
            "last_timestamp": s["last_timestamp"], "seconds_wrongly_eligible": s["seconds"],
            "min_hf_reported": s["min_hf"], "hf_true_at_min": s["hf_true_at_min"],
            "max_collateral_base_reported": s["max_coll"], "max_debt_base_reported": s["max_debt"],
            **(s["exposure"] or {}),
        })
    return rows


def borrower_rows(verdict_rows: list[dict], market_of: Mapping[str, str]) -> list[dict]:
    """Per borrower: the liquidations, their loss parts summed, and the reimbursable sum (exact ints)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for v in verdict_rows:
        groups[(v["pool"], v["user"])].append(v)
    rows = []
    for (pool, user), vs in sorted(groups.items()):
        wrong = [v for v in vs if v["verdict"] == "wrongly_eligible"]
        row = {"market": market_of[pool], "pool": pool, "user": user, "liquidations": len(vs),
               "wrongly_eligible_liquidations": len(wrong),
               "debt_repaid_base": sum(v["_debt_repaid_true_base"] for v in vs),
               "collateral_seized_base": sum(v["_collateral_seized_true_base"] for v in vs)}
        for name in ("oracle_loss", "fee_oracle_loss", "bonus_loss", "borrower_loss"):
            row[f"{name}_base"] = sum(v[f"{name}_base"] for v in vs)
            row[f"{name}_eth_wei"] = sum_or_none(v[f"{name}_eth_wei"] for v in vs)
        row["bonus_loss_wrongly_eligible_base"] = sum(v["bonus_loss_base"] for v in wrong)
        row["bonus_loss_wrongly_eligible_eth_wei"] = sum_or_none(v["bonus_loss_eth_wei"] for v in wrong) if wrong else (
            0 if row["bonus_loss_eth_wei"] is not None else None)
        row["reimbursable_base"] = (row["oracle_loss_base"] + row["fee_oracle_loss_base"]
                                    + row["bonus_loss_wrongly_eligible_base"])
        row["reimbursable_eth_wei"] = sum_or_none([row["oracle_loss_eth_wei"], row["fee_oracle_loss_eth_wei"],
                                                    row["bonus_loss_wrongly_eligible_eth_wei"]])
        rows.append(row)
    return rows


def liquidator_rows(verdict_rows: list[dict], market_of: Mapping[str, str]) -> list[dict]:
    """Per liquidator: the liquidations and what they gained, at the true prices (exact ints)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for v in verdict_rows:
        groups[(v["pool"], v["liquidator"])].append(v)
    rows = []
    for (pool, liquidator), vs in sorted(groups.items()):
        rows.append({
            "market": market_of[pool], "pool": pool, "liquidator": liquidator, "liquidations": len(vs),
            "wrongly_eligible_liquidations": sum(v["verdict"] == "wrongly_eligible" for v in vs),
            "debt_repaid_base": sum(v["_debt_repaid_true_base"] for v in vs),
            "gain_base": sum(v["_liquidator_gain_base"] for v in vs),
            "gain_eth_wei": sum_or_none(v["_liquidator_gain_eth_wei"] for v in vs),
            "oracle_gain_base": sum(v["_liquidator_oracle_gain_base"] for v in vs),
            "oracle_gain_eth_wei": sum_or_none(v["_liquidator_oracle_gain_eth_wei"] for v in vs),
            "bonus_gain_base": sum(v["_liquidator_bonus_gain_base"] for v in vs),
            "bonus_gain_eth_wei": sum_or_none(v["_liquidator_bonus_gain_eth_wei"] for v in vs),
        })
    return rows


def sum_or_none(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any value is None (an amount with no ETH value stays unknown)."""
    values = list(values)
    if any(v is None for v in values):
        return None
    return sum(values)
