"""The words of the report, shared by every renderer: headline sentences and methodology.

Everything here is a pure function of the report model, so Markdown, HTML and JSON say the
same thing and a given warehouse always gives the same text.
"""

from __future__ import annotations

from reports import fmt
from reports.model import VERDICT_ANOMALY, VERDICT_ANYWAY, VERDICT_WRONG, ReportModel


def title(m: ReportModel) -> str:
    if m.title:
        return f"Post-mortem: {m.title}"
    sym = (m.mispriced or {}).get("symbol")
    return f"Post-mortem: {sym} mispricing — {m.incident_id}" if sym else f"Post-mortem — {m.incident_id}"


def market_names(m: ReportModel) -> str:
    names = [r["market"] for r in m.value("markets", [])]
    if not names:
        return "no market"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def rates(m: ReportModel) -> tuple[str, str, str] | None:
    """(reported rate, true rate, debt symbol) of collateral per unit of debt, when both are ETH-like."""
    p = m.value("price_at_first_wrong_liquidation")
    if not p or not p.get("debt_price_reported") or not p.get("debt_price_true"):
        return None
    return (fmt.ratio(p["collateral_price_reported"], p["debt_price_reported"], 9),
            fmt.ratio(p["collateral_price_true"], p["debt_price_true"], 9), p.get("debt_symbol") or "debt")


def _assets(rows: list[dict], amount_key: str, asset: str, places: int = 2) -> str:
    # Largest first: for the reader, the main asset leads (the figure's SQL orders by address).
    ordered = sorted((r for r in rows if r.get(amount_key) is not None),
                     key=lambda r: (-r[amount_key] * 10 ** (36 - (r.get(f"{asset}_decimals") or 18)), r.get(f"{asset}_asset") or ""))
    parts = [fmt.token(r[amount_key], r.get(f"{asset}_decimals"), r.get(f"{asset}_symbol") or r.get(f"{asset}_asset"), places)
             for r in ordered]
    return " and ".join(parts) if parts else "nothing"


def headline(m: ReportModel) -> list[str]:
    """Three to five sentences: what was mispriced, when, what it did, what is owed."""
    out = []
    sym = (m.mispriced or {}).get("symbol") or "the collateral"
    p = m.value("price_at_first_wrong_liquidation")
    w = m.value("mispricing_window")
    chain = fmt.chain(m.chain_id)
    if p:
        div = m.divergence_ppm()
        direction = "below" if div is not None and div < 0 else "above"
        s = (f"On {chain}, Aave v3 ({market_names(m)}) priced {sym} at {fmt.usd(p['collateral_price_reported'], 2)} "
             f"instead of {fmt.usd(p['collateral_price_true'], 2)} at the first wrongly eligible liquidation "
             f"(block {fmt.block(p['block_number'])}), {fmt.ppm_to_percent(abs(div or 0))} {direction} the true price")
        r = rates(m)
        if r:
            s += f": {r[0]} {r[2]} per {sym} reported against {r[1]} true"
        out.append(s + ".")
    if w and w.get("first_block") is not None:
        s = (f"The price path shows {sym} mispriced from block {fmt.block(w['first_block'])} ({fmt.utc(w['first_timestamp'])}) "
             f"to block {fmt.block(w['last_block'])} ({fmt.utc(w['last_timestamp'])})")
        if w.get("fixed_block") is not None:
            lasted = (w["fixed_timestamp"] - w["first_timestamp"]) if w.get("fixed_timestamp") and w.get("first_timestamp") else None
            s += f"; correct again from block {fmt.block(w['fixed_block'])}" + (f", {fmt.duration(lasted)} after it started" if lasted is not None else "")
        else:
            s += "; it was still mispriced at the end of the replayed range"
        out.append(s + ".")
    n = m.value("liquidations", 0)
    wrong = m.value("wrongly_eligible", 0)
    borrowers = m.value("borrowers_affected", 0)
    s = (f"The replay judged {fmt.count(n)} liquidation{'s' if n != 1 else ''}: {fmt.count(wrong)} "
         f"{'were' if wrong != 1 else 'was'} wrongly eligible (health factor below 1 at the reported price, at least 1 at the true price)")
    if wrong:
        s += (f", taking {_assets(m.value('collateral_seized', []), 'collateral_seized', 'collateral')} from "
              f"{fmt.count(borrowers)} borrower{'s' if borrowers != 1 else ''} for "
              f"{_assets(m.value('debt_repaid', []), 'debt_repaid', 'debt')} of debt")
    out.append(s + ".")
    ol, bl, lg = m.value("oracle_loss"), m.value("bonus_loss"), m.value("liquidator_gains")
    if wrong and ol and bl:
        s = (f"Those borrowers lost {fmt.eth(ol['eth_wei'], 2)} to the mispricing and {fmt.eth(bl['eth_wei'], 2)} of "
             f"liquidation bonus")
        if ol.get("eth_wei_all_liquidations") not in (None, ol["eth_wei"]):
            s += f" ({fmt.eth(ol['eth_wei_all_liquidations'], 2)} of oracle loss over all liquidations)"
        if lg:
            s += f"; liquidators gained {fmt.eth(lg['eth_wei'], 2)} across all {fmt.count(n)} liquidations"
        out.append(s + ".")
    r = m.reimbursement
    out.append(f"Under {r.policy.name}, {fmt.count(len(r.rows))} borrower{'s are' if len(r.rows) != 1 else ' is'} owed "
               f"{fmt.eth(r.total_wei, 2)} in total.")
    return out


VERDICT_WORDS = {
    VERDICT_WRONG: "wrongly eligible",
    VERDICT_ANYWAY: "eligible anyway",
    VERDICT_ANOMALY: "anomaly",
}

VERDICT_MEANING = {
    VERDICT_WRONG: "health factor below 1 at the reported price and at least 1 at the true price: "
                   "the liquidation happened only because of the mispricing",
    VERDICT_ANYWAY: "health factor below 1 at both prices: the position was liquidatable anyway "
                    "(the mispricing may still have changed how much was seized)",
    VERDICT_ANOMALY: "the replay could not classify it (for example a health factor of at least 1 at the reported price); "
                     "listed for review, never reimbursed automatically",
}

# What the replay mirrors for each Aave v3 pool revision (see replay/aave_math/revisions.py).
REVISION_ROUNDING = {
    "3.6": "aToken balances rayMulFloor, debt balances rayMulCeil; collateral value floored, debt value mulDivCeil; "
           "HF = wadDiv(Σ collateral × LT, debt) / 10000 (wadDiv half up, the division floors)",
    "3.4": "balances with rayMul (half up); debt value floored; avgLT floored; HF = wadDiv(percentMul(collateral, avgLT), debt)",
    "3.3": "balances with rayMul (half up); debt value floored; avgLT floored; HF = wadDiv(percentMul(collateral, avgLT), debt)",
    "3.0": "balances via balanceOf (half-up rayMul); HF = wadDiv(percentMul(collateral, avgLT), debt)",
}


def methodology(m: ReportModel) -> list[tuple[str, list[str]]]:
    """(section title, paragraphs) of the methodology."""
    rec = m.methodology.get("recorded_parameters", {})
    revisions = sorted({str(v) for k, v in rec.items() if "revision" in k.lower()}
                       | {str(r["revision"]) for r in m.methodology.get("pool_revisions", []) if r.get("revision") is not None})
    rounding = [f"Pool revision {r}: {REVISION_ROUNDING.get(r, 'see replay/aave_math/revisions.py')}." for r in revisions]
    if not rounding:
        rounding = ["The replay did not record the pool revision; its rounding is that of the revision it detected "
                    "(see replay/aave_math/revisions.py)."]
    models = [f"{k}: {v}" for k, v in rec.items() if "revision" not in k.lower()]
    if not models:
        models = ["The replay did not record its price models."]
    sym = (m.mispriced or {}).get("symbol") or "the collateral"
    return [
        ("Verdicts", [
            "For every LiquidationCall the replay rebuilds the borrower's position at the state just before the "
            "liquidation (same block, earlier transactions and logs applied, so intra-block order counts) and computes "
            "the health factor twice: with the price the protocol reported and with the true price.",
            *(f"{VERDICT_WORDS[k]}: {VERDICT_MEANING[k]}." for k in (VERDICT_WRONG, VERDICT_ANYWAY, VERDICT_ANOMALY)),
        ]),
        ("Loss decomposition", [
            "For a liquidation handing C collateral to the liquidator plus the protocol fee F, for D of debt, with "
            "collateral prices Pr (reported) and Pt (true) and debt prices Qr and Qt:",
            f"Oracle loss = C × (Pt − Pr): collateral handed over at the wrong price (for {sym}, about "
            "C × (true rate − reported rate) in ETH).",
            "Oracle loss on the protocol fee = F × (Pt − Pr); it went to the treasury, not to the liquidator.",
            "Bonus loss = (C + F) × Pr − D × Qr: the liquidation bonus as the protocol valued it (about 1% of the debt "
            "in the ETH-correlated eMode). A wrongly eligible borrower should not have paid it at all.",
            "Borrower loss = (C + F) × Pt − D × Qt: all the borrower lost (the sum of the three when Qt = Qr). "
            "ETH amounts are converted at the true ETH price of the block; each is computed exactly and floored.",
            "Amounts are in the units the replay wrote them: token base units, wei for ETH values and base currency "
            "units (1e8 = 1 USD) for dollar values. The report keeps them as exact integers; only the displayed "
            "numbers are rounded (half up, at the last digit shown). JSON and CSV carry every digit.",
        ]),
        ("Reimbursement policy", list(m.reimbursement.rules)),
        ("Price models", models),
        ("Rounding revision", rounding),
        ("Reproducing a figure", [
            "Every figure, table and check comes with the SQL that produced it. Run it read-only with "
            "`postmortem sql \"…\" --warehouse DIR` on the same warehouse to get the same rows.",
        ]),
    ]


# --- facts and figure cards (what the header and the figures grid show) ------------------------------


class Fact:
    """One headline fact: a label, its text, and the SQL behind it."""

    def __init__(self, key: str, label: str, value: str, sql: str, note: str = ""):
        self.key, self.label, self.value, self.sql, self.note = key, label, value, sql, note


class Card:
    """One figure as shown: label, big value, smaller lines, and (label, SQL) pairs behind it."""

    def __init__(self, key: str, label: str, value: str, sub: list[str], sqls: list[tuple[str, str]], note: str = ""):
        self.key, self.label, self.value, self.sub, self.sqls, self.note = key, label, value, sub, sqls, note


def facts(m: ReportModel) -> list[Fact]:
    out = []
    f = m.figure("markets")
    if f:
        out.append(Fact("markets", "Markets", ", ".join(
            f"{r['market']} ({fmt.short(r['pool'])}): {fmt.count(r['liquidations'])} liquidations" for r in f.rows) or "none",
            f.sql))
    f = m.figure("mispriced_assets")
    if f and m.mispriced:
        out.append(Fact("mispriced_assets", "Mispriced asset",
                        f"{m.mispriced['symbol']} ({m.mispriced['asset']})"
                        + (f"; also {', '.join(m.symbol(r['asset']) for r in f.rows[1:])}" if len(f.rows) > 1 else ""),
                        f.sql, f.note))
    f = m.figure("price_at_first_wrong_liquidation")
    if f and f.value:
        p = f.value
        div = m.divergence_ppm()
        r = rates(m)
        value = (f"{fmt.usd(p['collateral_price_reported'], 2)} reported vs {fmt.usd(p['collateral_price_true'], 2)} true "
                 f"({fmt.ppm_to_percent(div or 0)})")
        if r:
            value += f"; {r[0]} vs {r[1]} {r[2]} per {p.get('collateral_symbol') or 'unit'}"
        out.append(Fact("price_at_first_wrong_liquidation", "Reported vs true price", value, f.sql,
                        f"at block {fmt.block(p['block_number'])}, the first wrongly eligible liquidation; {f.note}"))
    f = m.figure("mispricing_window")
    if f and f.value and f.value.get("first_block") is not None:
        w = f.value
        value = (f"blocks {fmt.block(w['first_block'])}–{fmt.block(w['last_block'])} "
                 f"({fmt.utc(w['first_timestamp'])} to {fmt.utc(w['last_timestamp'])})")
        value += (f"; correct again from block {fmt.block(w['fixed_block'])} ({fmt.utc(w['fixed_timestamp'])})"
                  if w.get("fixed_block") is not None else "; still mispriced at the end of the replayed range")
        out.append(Fact("mispricing_window", "Mispricing started and ended", value, f.sql, f.note))
    f = m.figure("max_divergence")
    if f and f.value:
        d = f.value
        out.append(Fact("max_divergence", "Largest divergence",
                        f"{fmt.percent_change(d['reported_price'], d['true_price'])} at block {fmt.block(d['block_number'])} "
                        f"({fmt.usd(d['reported_price'], 2)} vs {fmt.usd(d['true_price'], 2)})", f.sql, f.note))
    f = m.figure("liquidation_window")
    if f and f.value and f.value.get("first_block") is not None:
        w = f.value
        span = (w["last_timestamp"] - w["first_timestamp"]) if w.get("last_timestamp") is not None and w.get("first_timestamp") is not None else None
        out.append(Fact("liquidation_window", "Liquidations",
                        f"blocks {fmt.block(w['first_block'])}–{fmt.block(w['last_block'])} "
                        f"({fmt.utc(w['first_timestamp'])}, over {fmt.duration(span)})", f.sql))
    return out


def _token_lines(rows: list[dict], amount: str, side: str, places: int = 2) -> list[str]:
    return [fmt.token(r[amount], r.get(f"{side}_decimals"), r.get(f"{side}_symbol") or fmt.short(r.get(f"{side}_asset")), places)
            for r in sorted(rows, key=lambda r: -(r[amount] or 0))]


def cards(m: ReportModel) -> list[Card]:
    out = []
    f, v = m.figure("liquidations"), m.figure("verdicts")
    if f:
        order = {k: i for i, k in enumerate((VERDICT_WRONG, VERDICT_ANYWAY, VERDICT_ANOMALY))}
        by_kind = sorted(v.rows, key=lambda r: (order.get(r["verdict"], 9), r["verdict"])) if v else []
        sub = [" · ".join(f"{fmt.count(r['liquidations'])} {VERDICT_WORDS.get(r['verdict'], r['verdict'])}" for r in by_kind)] if by_kind else []
        out.append(Card("liquidations", f.label, fmt.count(f.value), sub,
                        [("liquidations", f.sql)] + ([("by verdict", v.sql)] if v else [])))
    f = m.figure("wrongly_eligible")
    if f:
        out.append(Card(f.key, f.label, fmt.count(f.value), [f.note], [(f.key, f.sql)]))
    f = m.figure("borrowers_affected")
    if f:
        out.append(Card(f.key, f.label, fmt.count(f.value), ["distinct borrowers with a wrongly eligible liquidation"],
                        [(f.key, f.sql)]))
    f = m.figure("collateral_seized")
    if f:
        lines = _token_lines(f.rows, "collateral_seized", "collateral")
        sub = [f"incl. the protocol fee; {fmt.token(r['liquidated_collateral_amount'], r.get('collateral_decimals'), r.get('collateral_symbol'), 2)} "
               "to liquidators (the LiquidationCall amount)" for r in f.rows]
        out.append(Card(f.key, f.label, lines[0] if lines else "0", lines[1:] + sub, [(f.key, f.sql)], f.note))
    f = m.figure("debt_repaid")
    if f:
        lines = _token_lines(f.rows, "debt_repaid", "debt")
        out.append(Card(f.key, f.label, lines[0] if lines else "0", [f"+ {x}" for x in lines[1:]], [(f.key, f.sql)]))
    for key in ("oracle_loss", "bonus_loss", "fee_oracle_loss"):
        f = m.figure(key)
        if f and f.value:
            sub = [fmt.usd(f.value["usd_base"])] if f.value.get("usd_base") is not None else []
            if f.value.get("eth_wei_all_liquidations") not in (None, f.value["eth_wei"]):
                sub.append(f"{fmt.eth(f.value['eth_wei_all_liquidations'], 2)} over all liquidations")
            out.append(Card(key, f.label, fmt.eth(f.value["eth_wei"], 2), sub + [f.note], [(key, f.sql)]))
    f = m.figure("protocol_fees")
    if f:
        lines = _token_lines(f.rows, "protocol_fee_amount", "collateral", 4)
        out.append(Card(f.key, f.label, lines[0] if lines else "0", lines[1:] + [f.note], [(f.key, f.sql)]))
    f = m.figure("liquidator_gains")
    if f and f.value:
        sub = [f"{fmt.count(f.value['liquidators'])} liquidators"]
        if f.value.get("usd_base") is not None:
            sub.insert(0, fmt.usd(f.value["usd_base"]))
        out.append(Card(f.key, f.label, fmt.eth(f.value["eth_wei"], 2), sub + ([f.note] if f.note else []), [(f.key, f.sql)]))
    f = m.figure("owed_chain_prices")
    if f and f.value:
        out.append(Card(f.key, f.label, fmt.eth(f.value["eth_wei"], 2),
                        [f"{fmt.count(f.value['borrowers'])} borrowers", f.note], [(f.key, f.sql)]))
    return out
