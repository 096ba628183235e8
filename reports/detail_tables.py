"""The report's tables of rows: every liquidation judged, the liquidators and their gains, the
positions at risk that were not liquidated, and the mispriced asset's reported and true price path.
Each is a :class:`~reports.parts.Table` with the SQL that gives its rows.
"""

from __future__ import annotations

import textwrap

from postmortem.reports.columns import literal, sql_text
from postmortem.reports.figures import path_filter
from postmortem.reports.parts import VERDICT_WRONG, Table
from postmortem.reports.reader import RunReader

__all__ = ["at_risk_table", "liquidations_table", "liquidators_table", "price_path_table"]


def liquidations_table(rd: RunReader) -> Table:
    v = rd.v
    cd, cjoin = rd.decimals("collateral")
    dd, djoin = rd.decimals("debt")
    wanted = [
        "transaction_hash", "block_number", "transaction_index", "log_index", "timestamp", "market", "pool",
        "user", "liquidator", "collateral_asset", "collateral_symbol", "@collateral_decimals", "debt_asset",
        "debt_symbol", "@debt_decimals",
        "debt_to_cover", "liquidated_collateral_amount", "collateral_seized", "protocol_fee_amount",
        "receive_a_token", "hf_reported", "hf_true", "verdict", "replay_matches_log",
        "max_liquidatable_debt_reported", "max_liquidatable_debt_true", "over_liquidated_debt",
        "collateral_price_reported", "collateral_price_true", "debt_price_reported", "debt_price_true", "eth_price",
        "oracle_loss_eth", "oracle_loss_usd", "bonus_loss_eth", "bonus_loss_usd",
        "fee_oracle_loss_eth", "fee_oracle_loss_usd", "borrower_loss_eth", "borrower_loss_usd",
    ]
    special = {"@collateral_decimals": cd, "@debt_decimals": dd}
    select = ",\n       ".join(special.get(c) or v.sel(c, "v", "NULL") for c in wanted)
    joins = "".join(f"\n{j}" for j in (cjoin, djoin) if j)
    sql = sql_text(f"""
        SELECT {{select}}
        FROM verdicts v{{joins}}
        WHERE {rd.where('v')}
        ORDER BY {v('block_number', 'v')}, {v('transaction_index', 'v')}, {v('log_index', 'v')}
    """).replace("{select}", select).replace("{joins}", joins)
    return Table("liquidations", "Every liquidation the replay judged", sql, rd.rows(sql))

def price_path_table(rd: RunReader, mispriced: dict | None) -> Table:
    p = rd.cols.get("price_path")
    if p is None or mispriced is None:
        return Table("price_path", "Price path", "", [], note="no price path in the warehouse")
    sql = sql_text(f"""
        SELECT {p.sel('block_number')}, {p.sel('timestamp', default='NULL')},
               {p.sel('reported_price')}, {p.sel('true_price')}
        FROM price_path
        WHERE {rd.where()}
          AND {path_filter(rd, mispriced)}
        ORDER BY {p('block_number')}
    """)
    return Table("price_path", f"{mispriced['symbol']} reported and true price", sql, rd.rows(sql),
                 note="base currency units (1e8 = 1 USD)")

def liquidators_table(rd: RunReader) -> Table:
    v, W = rd.v, rd.where()
    wrong = f"{v('verdict')} = {literal(VERDICT_WRONG)}"
    g = rd.cols.get("liquidator_gains")
    judged = f"""
            SELECT {v.sel('liquidator')},
                   count(*) AS liquidations,
                   count(*) FILTER (WHERE {wrong}) AS wrongly_eligible,
                   {v.sum0('oracle_loss_eth')} AS oracle_gain_eth_wei,
                   {v.sum0('bonus_loss_eth')} AS bonus_eth_wei
            FROM verdicts
            WHERE {W}
            GROUP BY {v('liquidator')}"""
    if g is not None:
        sql = sql_text(f"""
            WITH judged AS ({textwrap.dedent(judged).rstrip()}
            ), gains AS (
                SELECT {g.sel('liquidator')},
                       sum({g('gain_eth')}) AS gain_eth_wei,
                       {"sum(" + g('gain_usd') + ")" if g.has('gain_usd') else 'NULL'} AS gain_usd_base
                FROM liquidator_gains
                WHERE {W}
                GROUP BY {g('liquidator')}
            )
            SELECT judged.*, gains.gain_eth_wei, gains.gain_usd_base
            FROM judged LEFT JOIN gains USING (liquidator)
            ORDER BY gains.gain_eth_wei DESC NULLS LAST, liquidator
        """)
    else:
        sql = sql_text(f"""
            WITH judged AS ({textwrap.dedent(judged).rstrip()}
            )
            SELECT judged.*, oracle_gain_eth_wei + bonus_eth_wei AS gain_eth_wei, NULL AS gain_usd_base
            FROM judged
            ORDER BY gain_eth_wei DESC, liquidator
        """)
    return Table("liquidators", "Liquidators and what they gained", sql, rd.rows(sql))

def at_risk_table(rd: RunReader) -> Table:
    a = rd.cols.get("at_risk")
    if a is None:
        return Table("at_risk", "Positions at risk that were not liquidated", "", [],
                     note="the replay wrote no list of positions at risk")
    v = rd.v
    cols = ",\n       ".join(a.sel(c, "a", "NULL") for c in (
        "user", "market", "first_block", "last_block", "seconds_exposed", "min_hf", "hf_true_at_min", "debt_usd",
        "exposed_loss_eth"))
    order = f"{a('exposed_loss_eth', 'a')} DESC NULLS LAST, " if a.has("exposed_loss_eth") else ""
    sql = sql_text(f"""
        SELECT {{cols}}
        FROM at_risk a
        WHERE {rd.where('a')}
          AND NOT EXISTS (
              SELECT 1 FROM verdicts v
              WHERE {rd.where('v')}
                AND {v('user', 'v')} = {a('user', 'a')} AND {v('market', 'v')} = {a('market', 'a')})
        ORDER BY {order}{a('user', 'a')}, {a('market', 'a')}
    """).replace("{cols}", cols)
    return Table("at_risk", "Positions at risk that were not liquidated", sql, rd.rows(sql),
                 note="largest debt: the most it owed while wrongly eligible, in base currency units (1e8 = 1 USD); "
                      "would have lost: what the largest single liquidation then would have cost it, in ETH")
