"""The report as Markdown (GitHub-flavoured): the same content as the HTML, without charts.

Each figure is followed by its SQL in a fenced block, so the document stands alone in a
repository, a forum post or a governance proposal. Charts live in the HTML file beside it.
"""

from __future__ import annotations

from postmortem.reports import fmt, text
from postmortem.reports.model import ReportModel
from postmortem.reports.parts import VERDICT_WRONG
from postmortem.reports.render_sections import whatif_md


def _cell(value) -> str:
    return str("—" if value is None else value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if i in numeric else "---" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _sql(sql: str, label: str | None = None) -> str:
    if not sql:
        return ""
    head = f"<sub>{label}</sub>\n\n" if label else ""
    return f"{head}```sql\n{sql}\n```"


def render_md(m: ReportModel) -> str:
    out: list[str] = [f"# {text.title(m)}", ""]
    chain = fmt.chain(m.chain_id)
    out += [f"*{chain[0].upper() + chain[1:]} · incident `{m.incident_id}` · replay run `{m.run_id}` · "
            f"postmortem {m.provenance.report_tool_version}* — charts are in `report.html` beside this file.", ""]
    out += [" ".join(text.headline(m)), ""]

    out += ["## Headline", ""]
    for f in text.facts(m):
        out += [f"**{f.label}:** {f.value}" + (f" — {f.note}" if f.note else ""), "", _sql(f.sql), ""]

    out += ["## Figures", ""]
    for c in text.cards(m):
        out += [f"### {c.label}", "", f"**{c.value}**" + ("  " if c.sub else ""), *[f"{s}  " for s in c.sub if s], ""]
        for label, sql in c.sqls:
            out += [_sql(sql, label if len(c.sqls) > 1 else None), ""]

    out += ["## Wrongly eligible liquidations", "",
            "Health factor below 1 at the reported price and at least 1 at the true price, just before the liquidation. "
            "Collateral seized includes the protocol fee; oracle loss (its protocol-fee part included) and bonus loss "
            "are in ETH at the true price, as the glossary defines them. The totals are in the figures above and the "
            "reimbursement list below.", ""]
    rows = []
    for i, r in enumerate(m.liquidations.rows, start=1):
        if r["verdict"] != VERDICT_WRONG:
            continue
        rows.append([i, f"`{r['transaction_hash']}`", fmt.block(r["block_number"]), r["market"], f"`{r['user']}`",
                     f"`{r['liquidator']}`", fmt.token(r["debt_to_cover"], r.get("debt_decimals"), r.get("debt_symbol"), 4),
                     fmt.token(r.get("collateral_seized"), r.get("collateral_decimals"), r.get("collateral_symbol"), 4),
                     fmt.wad(r["hf_reported"]), fmt.wad(r["hf_true"]),
                     fmt.units((r.get("oracle_loss_eth") or 0) + (r.get("fee_oracle_loss_eth") or 0), 18, 6),
                     fmt.units(r.get("bonus_loss_eth"), 18, 6)])
    out += [_table(["#", "tx", "block", "market", "borrower", "liquidator", "debt repaid", "collateral seized",
                    "HF reported", "HF true", "oracle loss (ETH)", "bonus loss (ETH)"], rows,
                   {0, 2, 6, 7, 8, 9, 10, 11}) if rows else "None.", "", _sql(m.liquidations.sql), ""]
    others = [[i, f"`{r['transaction_hash']}`", fmt.block(r["block_number"]), r["market"], f"`{r['user']}`",
               text.VERDICT_WORDS.get(r["verdict"], r["verdict"]), fmt.wad(r["hf_reported"]), fmt.wad(r["hf_true"])]
              for i, r in enumerate(m.liquidations.rows, start=1) if r["verdict"] != VERDICT_WRONG]
    if others:
        out += ["### Other liquidations in the replayed range", "",
                _table(["#", "tx", "block", "market", "borrower", "verdict", "HF reported", "HF true"], others, {0, 2, 6, 7}), ""]

    r = m.reimbursement
    t = r.totals()
    out += ["## Reimbursement", "", f"**Policy: {r.policy.name}**", "", *[f"- {x}" for x in r.rules], "",
            f"{fmt.count(t['borrowers'])} borrowers are owed **{fmt.eth(t['total_wei'], 6)}** "
            f"({fmt.eth(t['oracle_loss_wei'], 6)} oracle part + "
            f"{fmt.eth(t['bonus_loss_wei'], 6)} bonus part"
            + (f" + {fmt.eth(t['goodwill_wei'], 6)} goodwill" if t["goodwill_wei"] else "")
            + "). The exact list, to the wei, is `reimbursements.csv`.", ""]
    cmp_rows = {c["user"]: c for c in m.comparison.rows} if m.comparison else {}
    goodwill = any(x["goodwill_wei"] for x in r.rows)
    headers = ["#", "borrower", "markets", "liquidations", "oracle part (ETH)", "of which on the fee (ETH)",
               "bonus part (ETH)"] + (["goodwill (ETH)"] if goodwill else []) + ["owed (ETH)"]
    if m.comparison:
        headers += ["paid (ETH)", "paid − owed (ETH)", "status"]
    rows = []
    for i, x in enumerate(r.rows, start=1):
        row = [i, f"`{x['user']}`", x["markets"], x["liquidations"],
               fmt.exact_units(x["oracle_loss_wei"], 18),
               fmt.exact_units(x["fee_oracle_loss_wei"], 18), fmt.exact_units(x["bonus_loss_wei"], 18)]
        row += [fmt.exact_units(x["goodwill_wei"], 18)] if goodwill else []
        row.append(fmt.exact_units(x["total_wei"], 18))
        if m.comparison:
            c = cmp_rows.get(x["user"], {})
            row += [None if c.get("paid_wei") is None else fmt.exact_units(c["paid_wei"], 18),
                    fmt.exact_units(c.get("difference_wei", 0), 18), c.get("status")]
        rows.append(row)
    if rows:
        total = ["", "**total**", "", t["liquidations"], fmt.exact_units(t["oracle_loss_wei"], 18),
                 fmt.exact_units(t["fee_oracle_loss_wei"], 18), fmt.exact_units(t["bonus_loss_wei"], 18)]
        total += [fmt.exact_units(t["goodwill_wei"], 18)] if goodwill else []
        total.append(f"**{fmt.exact_units(t['total_wei'], 18)}**")
        if m.comparison:
            total += [fmt.exact_units(m.comparison.paid_total_wei, 18), fmt.exact_units(m.comparison.difference_total_wei, 18), ""]
        rows.append(total)
    out += [_table(headers, rows, {i for i, h in enumerate(headers) if i == 0 or "(ETH)" in h or h == "liquidations"})
            if rows else "Nobody is owed anything under this policy.", "",
            _sql(r.inputs.sql, "per liquidation in scope (the policy is applied to these rows)"), "",
            _sql(r.chain_sql, "per borrower at the chain's prices"), ""]
    if m.comparison:
        c = m.comparison
        j = c.to_json()
        k = j["counts"]
        out += ["### Compared with the paid list", "",
                f"Compared with `{c.source}`: {k['match']} match, {k['underpaid']} underpaid, {k['overpaid']} overpaid, "
                f"{k['not_paid']} owed but not paid, {k['not_owed']} paid but not owed. Paid {fmt.eth(c.paid_total_wei, 6)} "
                f"against {fmt.eth(c.owed_total_wei, 6)} owed (difference {fmt.eth(c.difference_total_wei, 6)}).", ""]
        diffs = [[f"`{x['user']}`", x["status"], None if x["owed_wei"] is None else fmt.exact_units(x["owed_wei"], 18),
                  None if x["paid_wei"] is None else fmt.exact_units(x["paid_wei"], 18),
                  fmt.exact_units(x["difference_wei"], 18)] for x in c.rows if x["status"] != "match"]
        if diffs:
            out += [_table(["user", "status", "owed (ETH)", "paid (ETH)", "paid − owed (ETH)"], diffs, {2, 3, 4}), ""]

    out += ["## Liquidators and what they gained", "",
            "Gain = value received at the true price minus the debt repaid, over every liquidation each made.", "",
            _table(["liquidator", "liquidations", "wrongly eligible", "gain (ETH)", "gain (USD)"],
                   [[f"`{x['liquidator']}`", x["liquidations"], x["wrongly_eligible"], fmt.units(x.get("gain_eth_wei"), 18, 6),
                     fmt.usd(x.get("gain_usd_base"))] for x in m.liquidators.rows], {1, 2, 3, 4}), "",
            _sql(m.liquidators.sql), ""]

    out += ["## Positions at risk that were not liquidated", ""]
    out += ["Wrongly eligible (health factor below 1 at the reported price, at least 1 at the true price) but never "
            "liquidated, and what the largest single liquidation at their lowest point would have cost them.", ""]
    if m.at_risk.rows:
        rows = [[f"`{x['user']}`", x["market"], f"{fmt.block(x.get('first_block'))}–{fmt.block(x.get('last_block'))}",
                 fmt.duration(x.get("seconds_exposed")), fmt.wad(x.get("min_hf")), fmt.wad(x.get("hf_true_at_min")),
                 fmt.usd(x.get("debt_usd")), fmt.units(x.get("exposed_loss_eth"), 18, 6)] for x in m.at_risk.rows]
        out += [_table(["borrower", "market", "blocks", "exposed", "lowest HF reported", "HF true then",
                        "largest debt (USD)", "would have lost (ETH)"], rows, {3, 4, 5, 6, 7}), ""]
    else:
        out += ["None." if m.at_risk.sql else m.at_risk.note, ""]
    out += [_sql(m.at_risk.sql), ""] if m.at_risk.sql else []

    out += ["## Glossary", "", text.GLOSSARY_INTRO, ""]
    out += [f"- **{name}** (`{key}`): {definition}" for name, key, definition in text.glossary()]
    out += [""]

    out += ["## Checks", ""]
    for c in m.checks:
        mark = "✓" if c.ok else "✗" if c.ok is False else "–"
        out += [f"- {mark} **{c.title}**: {c.detail}"]
    out += [""]
    for c in m.checks:
        if c.sql:
            out += [_sql(c.sql, c.title), ""]
    if m.notes:
        out += ["**Notes**", "", *[f"- {n}" for n in m.notes], ""]

    out += whatif_md(m, _table)
    out += ["## Methodology", ""]
    for title_, paragraphs in text.methodology(m):
        out += [f"### {title_}", "", *[p + "\n" for p in paragraphs]]

    p = m.provenance
    out += ["## Provenance", ""]
    out += [f"- {label}: {value}" for label, value in text.provenance_items(m)]
    out += ["", "### Input chunks, per dataset", "", f"{p.input_digests.note}.", "",
            _table(["dataset", "chunks", "rows", "blocks", "digest"],
                   [[x["dataset"], x["chunks"], x["rows"], f"{fmt.block(x['first_block'])}–{fmt.block(x['last_block'])}",
                     f"`{x['digest']}`"] for x in p.input_digests.rows], {1, 2}), "", _sql(p.input_digests.sql), "",
            "Every chunk with its SHA-256 is listed in `report.json` (`provenance.inputs`).", "",
            "### Replay outputs", "",
            _table(["table", "rows", "sha256"], [[x["dataset"], x["rows"], f"`{x['sha256']}`"] for x in p.outputs.rows], {1}),
            "", _sql(p.outputs.sql), "", "### Runs", "",
            _table(["kind", "tool"], [[x["kind"], fmt.shown(x["tool_version"])] for x in p.runs.rows])
            if p.runs.rows else "No run records.", "", _sql(p.runs.sql), "",
            f"{text.RUN_RECORDS}:", "", _sql(p.run_records_sql), ""]
    return "\n".join(out).rstrip() + "\n"
