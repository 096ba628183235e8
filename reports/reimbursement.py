"""The reimbursement list: what each borrower is owed under a policy, with the SQL that gives the
list at the chain's prices and the rules in words.

Per liquidation in the policy's scope, the oracle part (its protocol-fee part included) and the
bonus part are valued by :mod:`reports.policy`; per borrower they are summed, goodwill added,
and borrowers whose sum is not positive are left out. Amounts are exact wei.
"""

from __future__ import annotations

from dataclasses import dataclass

from postmortem.errors import PostmortemError
from postmortem.reports import policy as pol
from postmortem.reports.columns import ident, literal, sql_text
from postmortem.reports.fmt import exact_units
from postmortem.reports.parts import VERDICT_ANOMALY, VERDICT_WRONG, Figure, Table
from postmortem.reports.policy import Policy
from postmortem.reports.reader import RunReader

__all__ = ["Reimbursement", "build_reimbursement"]


@dataclass
class Reimbursement:
    """The per-borrower reimbursement list under a policy (amounts in wei)."""

    policy: Policy
    rows: list[dict]  # user, markets, liquidations, wrongly_eligible, oracle_loss_wei (the oracle part, fee part
    #                   included), fee_oracle_loss_wei (of which on the protocol fee), bonus_loss_wei, goodwill_wei,
    #                   total_wei = oracle_loss_wei + bonus_loss_wei + goodwill_wei, chain_owed_wei
    inputs: Table  # one row per liquidation in scope
    chain_sql: str  # the list at the chain's prices, directly in SQL (goodwill included)
    rules: list[str]  # the formulas in words

    @property
    def total_wei(self) -> int:
        return sum(r["total_wei"] for r in self.rows)

    def totals(self) -> dict:
        keys = ("liquidations", "oracle_loss_wei", "fee_oracle_loss_wei", "bonus_loss_wei", "goodwill_wei", "total_wei")
        return {"borrowers": len(self.rows), **{k: sum(r[k] for r in self.rows) for k in keys}}

    def owed(self) -> dict[str, int]:
        return {r["user"]: r["total_wei"] for r in self.rows}



def build_reimbursement(rd: RunReader, policy: Policy, figures: dict[str, Figure], mispriced: dict | None,
                   eth_asset: str | None) -> Reimbursement:
    v, W = rd.v, rd.where("v")
    wrong = f"{v('verdict', 'v')} = {literal(VERDICT_WRONG)}"
    if policy.scope == "reimbursable":
        scope, bonus_only_wrong = None, True
    elif policy.scope == "wrongly_eligible":
        scope, bonus_only_wrong = wrong, False
    else:
        window = figures.get("mispricing_window")
        first = window.value.get("first_block") if window and window.value else None
        if mispriced is None or first is None:
            raise PostmortemError("the warehouse has no price path showing when the mispricing started and "
                                  "ended, so the window scope cannot be applied; use another --scope")
        scope = (f"{v('collateral_asset', 'v')} = {literal(mispriced['asset'])}\n"
                 f"  AND {v('block_number', 'v')} BETWEEN {first} AND {window.value['last_block']}\n"
                 f"  AND {v('verdict', 'v')} <> {literal(VERDICT_ANOMALY)}")
        bonus_only_wrong = False
    cd, cjoin = rd.decimals("collateral")
    dd, djoin = rd.decimals("debt")
    joins = [j for j in (cjoin, djoin) if j]
    eth_price = "NULL"
    p = rd.cols.get("price_path")
    if v.has("eth_price"):
        eth_price = v("eth_price", "v")
    elif policy.bonus_bps is not None and p is not None and eth_asset is not None:
        eth_price = "e.eth_price"
        joins.append(sql_text(f"""
            ASOF LEFT JOIN (
                SELECT DISTINCT {p.sel('block_number')}, {p('reported_price')} AS eth_price
                FROM price_path
                WHERE {rd.where()} AND {p('asset')} = {literal(eth_asset)}
            ) e ON {v('block_number', 'v')} >= e.block_number"""))
    cols = [v.sel(c, "v", "NULL") for c in (
        "user", "market", "transaction_hash", "block_number", "transaction_index", "log_index", "verdict",
        "collateral_asset", "collateral_symbol")] + [cd, v.sel("liquidated_collateral_amount", "v")] + \
        [v.sel(c, "v", "NULL") for c in ("collateral_price_reported", "collateral_price_true", "debt_asset",
                                          "debt_symbol")] + [dd] + \
        [v.sel(c, "v", "NULL") for c in ("debt_to_cover", "debt_price_true", "oracle_loss_eth",
                                          "fee_oracle_loss_eth", "bonus_loss_eth")] + [f"{eth_price} AS eth_price"]
    select = ",\n       ".join(cols)
    join_sql = "".join(f"\n{j}" for j in joins)
    scope_sql = f"\n  AND {scope}" if scope else ""
    sql = (f"SELECT {select}\nFROM verdicts v{join_sql}\nWHERE {W}{scope_sql}\n"
           f"ORDER BY {v('user', 'v')}, {v('block_number', 'v')}, {v('transaction_index', 'v')}, {v('log_index', 'v')}")
    inputs = Table("reimbursement_inputs", "Liquidations in the reimbursement scope", sql, rd.rows(sql))

    symbol = (mispriced or {}).get("symbol") or "unit of collateral"
    per_user: dict[str, dict] = {}
    for r in inputs.rows:
        where = f"{r['transaction_hash']} (log {r['log_index']})"
        mispriced_here = (mispriced is not None and r["collateral_asset"] == mispriced["asset"]
                          and r["collateral_price_reported"] != r["collateral_price_true"])
        oracle = pol.oracle_loss_wei(
            policy, chain_value=r["oracle_loss_eth"], collateral_amount=r["liquidated_collateral_amount"],
            collateral_decimals=18 if r["collateral_decimals"] is None else r["collateral_decimals"],
            is_mispriced_collateral=mispriced_here)
        fee = int(r["fee_oracle_loss_eth"] or 0) if policy.rate_gap_eth is None else 0
        bonus = 0
        if r["verdict"] == VERDICT_WRONG or not bonus_only_wrong:
            bonus = pol.bonus_loss_wei(
                policy, chain_value=r["bonus_loss_eth"], debt_to_cover=r["debt_to_cover"],
                debt_decimals=18 if r["debt_decimals"] is None else r["debt_decimals"],
                debt_is_eth=eth_asset is not None and r["debt_asset"] == eth_asset,
                debt_price=r["debt_price_true"], eth_price=r["eth_price"], where=where)
        u = per_user.setdefault(r["user"], {
            "user": r["user"], "markets": set(), "liquidations": 0, "wrongly_eligible": 0, "oracle_loss_wei": 0,
            "fee_oracle_loss_wei": 0, "bonus_loss_wei": 0, "chain_owed_wei": 0})
        u["markets"].add(r["market"])
        u["liquidations"] += 1
        u["wrongly_eligible"] += r["verdict"] == VERDICT_WRONG
        u["oracle_loss_wei"] += oracle + fee  # the oracle part, its protocol-fee part included
        u["fee_oracle_loss_wei"] += fee  # of which on the protocol fee (already in oracle_loss_wei)
        u["bonus_loss_wei"] += bonus
        u["chain_owed_wei"] += int(r["oracle_loss_eth"] or 0) + int(r["fee_oracle_loss_eth"] or 0) + (
            int(r["bonus_loss_eth"] or 0) if r["verdict"] == VERDICT_WRONG or not bonus_only_wrong else 0)
    rows = []
    for u in per_user.values():
        owed = u["oracle_loss_wei"] + u["bonus_loss_wei"]
        if owed <= 0:
            continue  # nothing lost to the mispricing (or it worked in the borrower's favour)
        u["markets"] = ", ".join(sorted(u["markets"]))
        u["goodwill_wei"] = policy.goodwill_wei
        u["total_wei"] = owed + policy.goodwill_wei
        rows.append(u)
    rows.sort(key=lambda r: (-r["total_wei"], r["user"]))

    g = policy.goodwill_wei
    fee_sum = v.sum0("fee_oracle_loss_eth", "v") if v.has("fee_oracle_loss_eth") else "0"
    bonus_sum = v.sum0("bonus_loss_eth", "v", wrong if bonus_only_wrong else None)
    owed = f"{v.sum0('oracle_loss_eth', 'v')} + {fee_sum} + {bonus_sum}"
    chain_sql = (
        f"SELECT {v.sel('user', 'v')},\n"
        f"       string_agg(DISTINCT {v('market', 'v')}, ', ' ORDER BY {v('market', 'v')}) AS markets,\n"
        f"       count(*) AS liquidations,\n"
        f"       count(*) FILTER (WHERE {wrong}) AS wrongly_eligible,\n"
        f"       {v.sum0('oracle_loss_eth', 'v')} + {fee_sum} AS oracle_loss_wei,\n"
        f"       {fee_sum} AS fee_oracle_loss_wei,\n"
        f"       {bonus_sum} AS bonus_loss_wei,\n"
        f"       {g} AS goodwill_wei,\n"
        f"       {owed} + {g} AS total_wei\n"
        f"FROM verdicts v\nWHERE {W}{scope_sql}\n"
        f"GROUP BY {v('user', 'v')}\n"
        f"HAVING {owed} > 0\n"
        f"ORDER BY total_wei DESC, {ident('user')}")
    rules = [f"Scope: {policy.scope_rule()}.",
             f"Oracle part per liquidation: {policy.oracle_rule(symbol)}.",
             f"Bonus part per liquidation: {policy.bonus_rule()}."]
    if policy.goodwill_wei:
        rules.append(f"Goodwill: {exact_units(policy.goodwill_wei, 18)} ETH per borrower owed something.")
    rules.append("Owed per borrower: oracle part + bonus part over the borrower's liquidations in scope, plus "
                 "goodwill; borrowers whose sum is not positive are not listed. Owed in total is the sum of the list.")
    return Reimbursement(policy, rows, inputs, chain_sql, rules)
