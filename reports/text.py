"""The words of the report, shared by every renderer: headline sentences and methodology.

Everything here is a pure function of the report model, so Markdown, HTML and JSON say the
same thing and a given warehouse always gives the same text.
"""

from __future__ import annotations

from postmortem.reports import fmt
from postmortem.reports.model import ReportModel
from postmortem.reports.parts import VERDICT_ANOMALY, VERDICT_ANYWAY, VERDICT_WRONG


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


def capped(m: ReportModel) -> bool:
    """True when the replay recorded the mispriced asset's true price as its capped-ratio adapter without the cap."""
    sym = ((m.mispriced or {}).get("symbol") or "").lower()
    rec = m.methodology.get("recorded_parameters", {})
    return any(isinstance(v, str) and v.lower() == "uncapped" and (not sym or k.lower().endswith(sym))
               for k, v in rec.items())


def headline(m: ReportModel) -> list[str]:
    """Three to five sentences: what was mispriced, when, what it did, what is owed."""
    if getattr(m, "protocol", "aave-v3") != "aave-v3":  # another protocol family's model says its own
        return m.headline()
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
        if capped(m):
            src = (m.mispriced or {}).get("source")
            via = f" (price source {src})" if src else ""
            out.append(f"The oracle priced {sym} as a capped ratio{via}: the price of ETH times the {sym}-to-ETH exchange "
                       "rate, where that rate may not grow faster than a set yearly rate from a recorded snapshot; "
                       + (f"the cap sat below the real rate, so {sym} was priced too low." if direction == "below"
                          else "the true price here is the same formula without the cap."))
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
         f"{'were' if wrong != 1 else 'was'} wrongly eligible: the borrower's health factor (collateral weighted by "
         "its liquidation threshold, divided by debt; below 1 the position may be liquidated) was below 1 at the "
         "reported price but at least 1 at the true price")
    if wrong:
        seized = m.value("collateral_seized", [])
        s += f". They took {_assets(seized, 'collateral_seized', 'collateral')} of collateral"
        to_liq = [r for r in seized if r.get("liquidated_collateral_amount") is not None]
        if len(seized) == 1 and to_liq:
            r = to_liq[0]
            fee = r["collateral_seized"] - r["liquidated_collateral_amount"] if r.get("collateral_seized") is not None else None
            s += (f" ({fmt.token(r['liquidated_collateral_amount'], r.get('collateral_decimals'), None, 2)} to the "
                  "liquidators" + (f", {fmt.token(fee, r.get('collateral_decimals'), None, 2)} as protocol fee" if fee else "")
                  + ")")
        s += f" from {fmt.count(borrowers)} borrower{'s' if borrowers != 1 else ''}"
        s += f" for {_assets(m.value('debt_repaid', []), 'debt_repaid', 'debt')} of debt repaid"
    out.append(s + ".")
    out.extend(owed_sentences(m))
    return out


def owed_sentences(m: ReportModel) -> list[str]:
    """The losses and what is owed, with the glossary's names; the parts add up to the total exactly."""
    q = m.quantities()
    r = m.reimbursement
    n = m.value("liquidations", 0)
    wrong = m.value("wrongly_eligible", 0)
    out = []
    if q["oracle_loss_wei"] is not None and q["bonus_loss_wei"] is not None and n:
        s = (f"Oracle loss: {fmt.eth(q['oracle_loss_wei'], 2)} over all {fmt.count(n)} liquidations, the collateral "
             "handed over at the reported price instead of the true one (what went to the protocol as fee included). "
             f"Bonus loss: {fmt.eth(q['bonus_loss_wei'], 2)} over the {fmt.count(wrong)} wrongly eligible ones, the "
             "liquidation bonus (the extra collateral a liquidator receives on top of the debt it repays) that "
             "those borrowers should never have paid")
        if q["liquidator_gain_wei"] is not None:
            s += f". Liquidators gained {fmt.eth(q['liquidator_gain_wei'], 2)} across the {fmt.count(n)} liquidations"
        out.append(s + ".")
    listed = len(r.rows)
    chain = r.policy.uses_chain_prices and r.policy.scope == "reimbursable"
    same = (chain and q["owed_oracle_part_wei"] == q["oracle_loss_wei"] and q["owed_bonus_part_wei"] == q["bonus_loss_wei"])
    oracle_name, bonus_name = ("oracle loss", "bonus loss") if same else ("oracle part", "bonus part")
    s = (f"Under {r.policy.name}, {fmt.count(listed)} borrower{'s are' if listed != 1 else ' is'} owed "
         f"{fmt.eth(q['owed_wei'], 2)}")
    if q["owed_usd_base"] is not None:
        s += (f" (about {fmt.usd(q['owed_usd_base'], 0)} at the true ETH price of {fmt.usd(q['eth_price_base'], 2)} "
              f"at block {fmt.block(q['eth_price_block'])}, the last liquidation)")
    if listed:
        s += (f": {fmt.eth(q['owed_oracle_part_wei'], 2)} {oracle_name} + {fmt.eth(q['owed_bonus_part_wei'], 2)} "
              f"{bonus_name}" + (f" + {fmt.eth(q['owed_goodwill_wei'], 2)} goodwill" if q["owed_goodwill_wei"] else ""))
        anyway = sum(1 for x in r.rows if not x["wrongly_eligible"])
        if anyway and r.policy.scope == "reimbursable":
            s += (f"; {fmt.count(anyway)} of them {'were' if anyway != 1 else 'was'} liquidated only while eligible "
                  "anyway and {} owed the oracle loss alone".format("are" if anyway != 1 else "is"))
    out.append(s + ". The exact amounts, to the wei, are in reimbursements.csv.")
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
    f = m.figure("eth_price")
    if f and f.value:
        out.append(Fact("eth_price", "True ETH price", f"{fmt.usd(f.value['eth_price'], 2)} at block "
                        f"{fmt.block(f.value['block_number'])}, the last liquidation", f.sql,
                        "the price used to show owed amounts in USD"))
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
    q = m.quantities()
    f = m.figure("oracle_loss")
    if f and f.value:
        sub = [fmt.usd(f.value["usd_base"])] if f.value.get("usd_base") is not None else []
        if f.value.get("fee_part_eth_wei"):
            sub.append(f"of which {fmt.eth(f.value['fee_part_eth_wei'], 2)} on the protocol fee")
        out.append(Card("oracle_loss", f.label, fmt.eth(f.value["eth_wei"], 2), sub + [f.note], [("oracle_loss", f.sql)]))
    f = m.figure("bonus_loss")
    if f and f.value:
        sub = [fmt.usd(f.value["usd_base"])] if f.value.get("usd_base") is not None else []
        out.append(Card("bonus_loss", f.label, fmt.eth(f.value["eth_wei"], 2), sub + [f.note], [("bonus_loss", f.sql)]))
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
    r = m.reimbursement
    sub = [f"{fmt.count(q['owed_borrowers'])} borrowers, under {r.policy.name}"]
    if q["owed_usd_base"] is not None:
        sub.append(f"about {fmt.usd(q['owed_usd_base'])} at the true ETH price of {fmt.usd(q['eth_price_base'], 2)} "
                   f"(block {fmt.block(q['eth_price_block'])})")
    sub.append(f"{fmt.eth(q['owed_oracle_part_wei'], 2)} oracle part + {fmt.eth(q['owed_bonus_part_wei'], 2)} bonus part"
               + (f" + {fmt.eth(q['owed_goodwill_wei'], 2)} goodwill" if q["owed_goodwill_wei"] else ""))
    sqls = [("per liquidation in scope", r.inputs.sql)]
    if r.policy.uses_chain_prices:
        sqls.append(("per borrower at the chain's prices", r.chain_sql))
    out.append(Card("owed", "Owed", fmt.eth(q["owed_wei"], 2), sub, sqls))
    return out


# --- glossary and provenance (the same words in every format) ---------------------------------------


def glossary() -> list[tuple[str, str, str]]:
    """(name, report.json key, definition) of every named quantity, as ``postmortem schema glossary`` prints them."""
    from postmortem.schema_docs import GLOSSARY

    return [(q.name, q.key, q.definition) for q in GLOSSARY]


GLOSSARY_INTRO = ("Each quantity has one name and one number throughout this report, its files and "
                  "`postmortem schema glossary`; amounts in ETH are exact to the wei in report.json and "
                  "reimbursements.csv.")


RUN_RECORDS = ("When each run ran, with what parameters and against which node, is in the runs records "
               "(left out here, so that the same data gives the same report)")


def provenance_items(m: ReportModel) -> list[tuple[str, str]]:
    """(label, text) lines of the provenance; a value nobody recorded reads "not recorded", never "None"."""
    from postmortem.reports.provenance import flatten

    p = m.provenance
    rng = p.block_range
    if rng.get("first_block") is not None and rng.get("last_block") is not None:
        blocks = f"{fmt.block(rng['first_block'])}–{fmt.block(rng['last_block'])} ({fmt.shown(rng.get('source'))})"
    else:
        blocks = fmt.NOT_RECORDED
    tool = p.replay.get("tool_version")
    items = [
        ("report tool", f"postmortem {p.report_tool_version}"),
        ("replay run", f"{p.replay['run_id']}" + (f" (postmortem {tool})" if tool else " (tool version not recorded)")),
        ("verdicts file", f"{fmt.shown(p.replay.get('verdicts_file'))} sha256 {fmt.shown(p.replay.get('verdicts_sha256'))}"),
        ("block range", blocks),
        ("RPC endpoints", ", ".join(p.rpc_endpoints) or fmt.NOT_RECORDED),
    ]
    items += [(f"replay parameter {k}", str(v)) for k, v in flatten(p.replay["parameters"]).items() if v is not None]
    return items
