"""The report's figures: the headline (what was mispriced, when, by how much, which markets) and the
figure cards (liquidations by verdict, collateral seized, debt repaid, oracle loss, bonus loss,
liquidator gains, owed at the chain's prices), each a :class:`~reports.parts.Figure` with its SQL.

One number per concept (see the glossary): oracle loss is over every liquidation, its
protocol-fee part included; bonus loss is over the wrongly eligible ones only; owed is their sum.
"""

from __future__ import annotations

from postmortem.reports.columns import literal
from postmortem.reports.parts import GROUP_FIGURES, GROUP_HEADLINE, VERDICT_WRONG, Figure, Table
from postmortem.reports.reader import RunReader

__all__ = ["add_figures", "add_headline", "find_eth_asset", "find_mispriced", "path_filter"]


def find_eth_asset(liquidations: Table) -> str | None:
    """The WETH reserve's address, from the symbols the replay carried (None when absent)."""
    for r in liquidations.rows:
        for side in ("debt", "collateral"):
            if (r.get(f"{side}_symbol") or "").upper() == "WETH":
                return r[f"{side}_asset"]
    return None

def find_mispriced(rd: RunReader, figures: dict[str, Figure], liquidations: Table) -> dict | None:
    p = rd.cols.get("price_path")
    v = rd.v
    if p is not None and not rd.rows(f"SELECT 1 AS x FROM price_path WHERE {rd.where()} LIMIT 1"):
        del rd.cols["price_path"]  # written, but empty: nothing to learn the mispricing from
        p = None
    if p is not None:
        extra = "".join(f",\n       min({p(c)}) AS {c}" for c in ("symbol", "pool") if p.has(c))
        f = rd.figure("mispriced_assets", "Mispriced assets (price path blocks where reported ≠ true)",
                        GROUP_HEADLINE, "rows", "count", f"""
            SELECT {p.sel('asset')}{extra},
                   count(DISTINCT {p('block_number')}) AS mispriced_blocks,
                   min({p('block_number')}) AS first_block,
                   max({p('block_number')}) AS last_block
            FROM price_path
            WHERE {rd.where()}
              AND {p('reported_price')} <> {p('true_price')}
            GROUP BY {p('asset')}
            ORDER BY mispriced_blocks DESC, {p('asset')}
        """, note="when several pools quote the asset, the price path below is one of them")
    elif v.has("collateral_price_reported", "collateral_price_true"):
        rd.notes.append("the mispriced asset is taken from the prices the verdicts carry (the replay wrote no price path)")
        f = rd.figure("mispriced_assets", "Mispriced assets (liquidations where reported ≠ true collateral price)",
                        GROUP_HEADLINE, "rows", "count", f"""
            SELECT {v('collateral_asset')} AS asset,
                   count(DISTINCT {v('block_number')}) AS mispriced_blocks,
                   min({v('block_number')}) AS first_block,
                   max({v('block_number')}) AS last_block
            FROM verdicts
            WHERE {rd.where()}
              AND {v('collateral_price_reported')} <> {v('collateral_price_true')}
            GROUP BY {v('collateral_asset')}
            ORDER BY mispriced_blocks DESC, {v('collateral_asset')}
        """)
    else:
        return None
    figures[f.key] = f
    if not f.rows:
        return None
    top = f.rows[0]
    asset = top["asset"]
    decimals = next((r["collateral_decimals"] for r in liquidations.rows
                     if r["collateral_asset"] == asset and r.get("collateral_decimals") is not None), None)
    symbol = top.get("symbol") or next((r["collateral_symbol"] for r in liquidations.rows
                                        if r["collateral_asset"] == asset and r.get("collateral_symbol")), None)
    return {"asset": asset, "symbol": symbol or asset, "decimals": decimals, "pool": top.get("pool"),
            "source": _price_source(rd, asset, top.get("pool"))}


def _price_source(rd: RunReader, asset: str, pool: str | None) -> str | None:
    """The mispriced asset's price source as discovery recorded it (``reserves.price_source``)."""
    if "reserves" not in rd.tables or "price_source" not in rd._columns_of("reserves"):
        return None
    on_pool = f" AND pool = {literal(pool)}" if pool else ""
    rows = rd.rows(f"SELECT min(price_source) AS source FROM reserves WHERE chain_id = {rd.chain_id} "
                   f"AND asset = {literal(asset)}{on_pool}")
    return rows[0]["source"] if rows else None

def path_filter(rd: RunReader, mispriced: dict) -> str:
    p = rd.cols["price_path"]
    f = f"{p('asset')} = {literal(mispriced['asset'])}"
    if p.has("pool") and mispriced.get("pool"):
        f += f" AND {p('pool')} = {literal(mispriced['pool'])}"
    return f

def add_headline(rd: RunReader, figures: dict[str, Figure], mispriced: dict | None) -> None:
    v, W = rd.v, rd.where()
    wrong = f"{v('verdict')} = {literal(VERDICT_WRONG)}"
    add = lambda f: figures.__setitem__(f.key, f)  # noqa: E731
    add(rd.figure("markets", "Markets", GROUP_HEADLINE, "rows", "count", f"""
        SELECT {v.sel('market')}, {v.sel('pool')},
               count(*) AS liquidations,
               count(*) FILTER (WHERE {wrong}) AS wrongly_eligible
        FROM verdicts
        WHERE {W}
        GROUP BY {v('market')}, {v('pool')}
        ORDER BY {v('market')}, {v('pool')}
    """))
    ts = v('timestamp') if v.has("timestamp") else "NULL"
    add(rd.figure("liquidation_window", "Liquidations, first to last", GROUP_HEADLINE, "row", "block", f"""
        SELECT min({v('block_number')}) AS first_block,
               max({v('block_number')}) AS last_block,
               min({ts}) AS first_timestamp,
               max({ts}) AS last_timestamp
        FROM verdicts
        WHERE {W}
    """))
    if v.has("collateral_price_reported", "collateral_price_true"):
        add(rd.figure("price_at_first_wrong_liquidation",
                        "Reported vs true collateral price at the first wrongly eligible liquidation",
                        GROUP_HEADLINE, "row", "base", f"""
            SELECT {v.sel('block_number')}, {v.sel('transaction_hash')},
                   {v.sel('collateral_asset')}, {v.sel('collateral_symbol', default='NULL')},
                   {v.sel('debt_asset')}, {v.sel('debt_symbol', default='NULL')},
                   {v.sel('collateral_price_reported')}, {v.sel('collateral_price_true')},
                   {v.sel('debt_price_reported', default='NULL')}, {v.sel('debt_price_true', default='NULL')}
            FROM verdicts
            WHERE {W}
              AND {wrong}
            ORDER BY {v('block_number')}, {v('transaction_index')}, {v('log_index')}
            LIMIT 1
        """, note="the SQL gives prices in base currency units (1e8 = 1 USD)"))
    p = rd.cols.get("price_path")
    if p is None or mispriced is None:
        return
    a = path_filter(rd, mispriced)
    pts = p('timestamp') if p.has("timestamp") else "NULL"
    add(rd.figure("mispricing_window", f"When the {mispriced['symbol']} mispricing started and ended",
                    GROUP_HEADLINE, "row", "block", f"""
        WITH path AS (
            SELECT {p.sel('block_number')}, {pts} AS ts,
                   {p('reported_price')} <> {p('true_price')} AS mispriced
            FROM price_path
            WHERE {W}
              AND {a}
        ), bad AS (
            SELECT min(block_number) AS first_block, max(block_number) AS last_block
            FROM path WHERE mispriced
        )
        SELECT (SELECT max(block_number) FROM path
                 WHERE NOT mispriced AND block_number < bad.first_block) AS last_correct_block_before,
               bad.first_block,
               (SELECT min(ts) FROM path WHERE block_number = bad.first_block) AS first_timestamp,
               bad.last_block,
               (SELECT max(ts) FROM path WHERE block_number = bad.last_block) AS last_timestamp,
               (SELECT min(block_number) FROM path
                 WHERE NOT mispriced AND block_number > bad.last_block) AS fixed_block,
               (SELECT min(ts) FROM path
                 WHERE NOT mispriced AND block_number > bad.last_block) AS fixed_timestamp,
               (SELECT count(*) FROM path) AS path_blocks
        FROM bad
    """, note="the price is known only at the blocks the warehouse holds, so the mispricing began after the last "
              "correct block before the first mispriced one, and ended before the first correct block after "
              "the last mispriced one"))
    add(rd.figure("max_divergence", f"Largest {mispriced['symbol']} divergence on the price path",
                    GROUP_HEADLINE, "row", "base", f"""
        SELECT {p.sel('block_number')}, {p.sel('timestamp', default='NULL')},
               {p.sel('reported_price')}, {p.sel('true_price')}
        FROM price_path
        WHERE {W}
          AND {a}
          AND {p('true_price')} > 0
        ORDER BY abs(CAST({p('reported_price')} AS DOUBLE) / CAST({p('true_price')} AS DOUBLE) - 1) DESC,
                 {p('block_number')}
        LIMIT 1
    """, note="the block where the reported price was furthest from the true one, in percent"))

def add_figures(rd: RunReader, figures: dict[str, Figure]) -> None:
    v, W = rd.v, rd.where()
    Wv = rd.where("v")
    wrong = f"{v('verdict')} = {literal(VERDICT_WRONG)}"
    wrong_v = f"{v('verdict', 'v')} = {literal(VERDICT_WRONG)}"
    add = lambda f: figures.__setitem__(f.key, f)  # noqa: E731
    add(rd.figure("liquidations", "Liquidations judged", GROUP_FIGURES, "scalar", "count", f"""
        SELECT count(*) AS liquidations
        FROM verdicts
        WHERE {W}
    """))
    add(rd.figure("verdicts", "Liquidations by verdict", GROUP_FIGURES, "rows", "count", f"""
        SELECT {v.sel('verdict')}, count(*) AS liquidations
        FROM verdicts
        WHERE {W}
        GROUP BY {v('verdict')}
        ORDER BY {v('verdict')}
    """))
    add(rd.figure("wrongly_eligible", "Wrongly eligible liquidations", GROUP_FIGURES, "scalar", "count", f"""
        SELECT count(*) AS wrongly_eligible
        FROM verdicts
        WHERE {W}
          AND {wrong}
    """, note="health factor below 1 at the reported price and at least 1 at the true price, "
              "just before the liquidation"))
    add(rd.figure("borrowers_affected", "Borrowers wrongly liquidated", GROUP_FIGURES, "scalar", "count", f"""
        SELECT count(DISTINCT {v('user')}) AS borrowers
        FROM verdicts
        WHERE {W}
          AND {wrong}
    """))
    cd, cjoin = rd.decimals("collateral")
    dd, djoin = rd.decimals("debt")
    seized = f"sum({v('collateral_seized', 'v')})" if v.has("collateral_seized") else "NULL"
    cjoin = f"\n{cjoin}" if cjoin else ""
    djoin = f"\n{djoin}" if djoin else ""
    add(rd.figure("collateral_seized", "Collateral seized in wrongly eligible liquidations", GROUP_FIGURES,
                    "rows", "token", f"""
        SELECT {v.sel('collateral_asset', 'v')}, {v.sel('collateral_symbol', 'v', 'NULL')}, {cd},
               count(*) AS liquidations,
               {seized} AS collateral_seized,
               sum({v('liquidated_collateral_amount', 'v')}) AS liquidated_collateral_amount
        FROM verdicts v{cjoin}
        WHERE {Wv}
          AND {wrong_v}
        GROUP BY ALL
        ORDER BY {v('collateral_asset', 'v')}
    """, note="collateral seized includes the protocol fee; collateral to liquidators is the amount the "
              "liquidation's log gives (to the liquidator, fee excluded)"))
    add(rd.figure("debt_repaid", "Debt repaid in wrongly eligible liquidations", GROUP_FIGURES, "rows", "token", f"""
        SELECT {v.sel('debt_asset', 'v')}, {v.sel('debt_symbol', 'v', 'NULL')}, {dd},
               count(*) AS liquidations,
               sum({v('debt_to_cover', 'v')}) AS debt_repaid
        FROM verdicts v{djoin}
        WHERE {Wv}
          AND {wrong_v}
        GROUP BY ALL
        ORDER BY {v('debt_asset', 'v')}
    """))
    # One number per concept (see the glossary): oracle loss over every liquidation, its protocol-fee
    # part included; bonus loss over the wrongly eligible ones only. owed = oracle part + bonus part.
    fee_eth = v.sum0("fee_oracle_loss_eth") if v.has("fee_oracle_loss_eth") else "0"
    fee_usd = v.sum0("fee_oracle_loss_usd") if v.has("fee_oracle_loss_usd") else "0"
    usd = (f"{v.sum0('oracle_loss_usd')} + {fee_usd}" if v.has("oracle_loss_usd") else "NULL")
    add(rd.figure("oracle_loss", "Oracle loss", GROUP_FIGURES, "row", "wei", f"""
        SELECT {v.sum0('oracle_loss_eth')} + {fee_eth} AS eth_wei,
               {fee_eth} AS fee_part_eth_wei,
               {usd} AS usd_base,
               count(*) AS liquidations
        FROM verdicts
        WHERE {W}
    """, note="every liquidation judged: the collateral that left the borrower (to the liquidator and as "
              "protocol fee) valued at the true price minus at the reported price, in ETH"))
    add(rd.figure("bonus_loss", "Bonus loss", GROUP_FIGURES, "row", "wei", f"""
        SELECT {v.sum0('bonus_loss_eth')} AS eth_wei,
               {v.sum0('bonus_loss_usd')} AS usd_base,
               count(*) AS liquidations
        FROM verdicts
        WHERE {W}
          AND {wrong}
    """, note="wrongly eligible liquidations only: the liquidation bonus they should never have paid, "
              "in ETH"))
    if v.has("eth_price"):
        add(rd.figure("eth_price", "True ETH price at the last liquidation", GROUP_HEADLINE, "row", "base", f"""
            SELECT {v.sel('block_number')}, {v('eth_price')} AS eth_price
            FROM verdicts
            WHERE {W}
              AND {v('eth_price')} IS NOT NULL
            ORDER BY {v('block_number')} DESC, {v('transaction_index')} DESC, {v('log_index')} DESC
            LIMIT 1
        """, note="base currency units (1e8 = 1 USD); used to show owed amounts in USD"))
    if v.has("protocol_fee_amount"):
        add(rd.figure("protocol_fees", "Protocol fees taken in wrongly eligible liquidations", GROUP_FIGURES,
                        "rows", "token", f"""
            SELECT {v.sel('collateral_asset', 'v')}, {v.sel('collateral_symbol', 'v', 'NULL')}, {cd},
                   sum({v('protocol_fee_amount', 'v')}) AS protocol_fee_amount
            FROM verdicts v{cjoin}
            WHERE {Wv}
              AND {wrong_v}
            GROUP BY ALL
            ORDER BY {v('collateral_asset', 'v')}
        """, note="collateral sent to the treasury as aTokens"))
    g = rd.cols.get("liquidator_gains")
    if g is not None:
        add(rd.figure("liquidator_gains", "Liquidator gains (all liquidations)", GROUP_FIGURES, "row", "wei", f"""
            SELECT count(DISTINCT {g('liquidator')}) AS liquidators,
                   {g.sum0('gain_eth')} AS eth_wei,
                   {g.sum0('gain_usd')} AS usd_base
            FROM liquidator_gains
            WHERE {W}
        """, note="collateral received valued at the true price, minus the debt repaid, over every liquidation"))
    else:
        rd.notes.append("liquidator gains are taken as the oracle loss and bonus of every liquidation "
                          "(an upper bound: the bonus includes the protocol fee)")
        add(rd.figure("liquidator_gains", "Liquidator gains (all liquidations, upper bound)", GROUP_FIGURES,
                        "row", "wei", f"""
            SELECT count(DISTINCT {v('liquidator')}) AS liquidators,
                   {v.sum0('oracle_loss_eth')} + {v.sum0('bonus_loss_eth')} AS eth_wei,
                   {v.sum0('oracle_loss_usd')} + {v.sum0('bonus_loss_usd')} AS usd_base
            FROM verdicts
            WHERE {W}
        """))
    fee = f" + {v.sum0('fee_oracle_loss_eth')}" if v.has("fee_oracle_loss_eth") else ""
    add(rd.figure("owed_chain_prices", "Owed to borrowers at the chain's prices", GROUP_FIGURES, "row", "wei", f"""
        WITH per_borrower AS (
            SELECT {v('user')} AS borrower,
                   {v.sum0('oracle_loss_eth')}{fee} + {v.sum0('bonus_loss_eth', where=wrong)} AS owed_wei
            FROM verdicts
            WHERE {W}
            GROUP BY {v('user')}
        )
        SELECT count(*) FILTER (WHERE owed_wei > 0) AS borrowers,
               coalesce(sum(owed_wei) FILTER (WHERE owed_wei > 0), 0) AS eth_wei
        FROM per_borrower
    """, note="oracle loss and its protocol-fee part of every liquidation, plus the bonus of the wrongly "
              "eligible ones (the replay's reimbursable)"))
