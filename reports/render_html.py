"""The report as one self-contained HTML file: inline CSS, inline SVG charts, no scripts.

Nothing is loaded from anywhere: no fonts, images, scripts or links to other hosts, and a
Content-Security-Policy that forbids them, so the file reads the same offline, in a mail
attachment or in ten years. The layout is one column that reflows: cards wrap, wide tables and
charts scroll sideways inside their own box on a phone, SQL hides in ``<details>``.
"""

from __future__ import annotations

from postmortem.reports import charts, fmt, text
from postmortem.reports.escape import escape_html as _e
from postmortem.reports.render_sections import borrowers_html, whatif_html
from postmortem.reports.model import ReportModel
from postmortem.reports.parts import VERDICT_WRONG, Table

CSS = """
:root{--ink:#1f2937;--muted:#5b6472;--line:#e5e7eb;--soft:#f8fafc;--accent:#b91c1c;--ok:#047857;--warn:#b45309}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#fff}
.wrap{max-width:1200px;margin:0 auto;padding:28px 22px 64px}
h1{font-size:clamp(1.45rem,3.6vw,2.15rem);line-height:1.2;margin:.25em 0 .5em}
h2{font-size:1.3rem;margin:2.4em 0 .7em;padding-top:.6em;border-top:1px solid var(--line)}
h3{font-size:1.05rem;margin:1.6em 0 .5em}
p{max-width:78ch}
.eyebrow{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.07em;margin:0}
.lede p{font-size:1.06rem;margin:.5em 0;overflow-wrap:anywhere}
nav.toc{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.9rem;margin:18px 0 0;padding:10px 0;border-top:1px solid var(--line)}
nav.toc a{color:var(--ink)}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:12px 26px;margin:20px 0 6px;padding:0}
.facts>div{border-left:3px solid var(--accent);padding:2px 0 2px 12px;min-width:0}
.facts dt{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em}
.facts dd{margin:2px 0 0;font-weight:600;overflow-wrap:anywhere}
.fact-note{color:var(--muted);font-size:.8rem;margin:4px 0 0;line-height:1.4}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:10px;padding:14px 16px 10px;background:var(--soft);min-width:0}
.card .label{color:var(--muted);font-size:.84rem;line-height:1.3}
.card .value{font-size:1.55rem;font-weight:700;font-variant-numeric:tabular-nums;line-height:1.2;margin:.2em 0 .15em;overflow-wrap:anywhere}
.card .sub{font-size:.82rem;color:var(--muted);margin:0;line-height:1.4}
details.sql{margin-top:8px}
details.sql summary{cursor:pointer;color:var(--muted);font-size:.78rem;user-select:none}
details.sql summary:hover{color:var(--ink)}
pre{background:#0f172a;color:#e2e8f0;padding:10px 12px;border-radius:8px;overflow-x:auto;font-size:.76rem;line-height:1.45;margin:6px 0 0;max-width:100%}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
.mono{font-size:.86em}
details.borrower{margin:.4em 0}details.borrower summary{cursor:pointer;overflow-wrap:anywhere}
.index{line-height:1.9;overflow-wrap:anywhere}.index a{margin-right:.7em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);border-radius:8px;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.82rem;font-variant-numeric:tabular-nums}
th,td{padding:6px 9px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap;vertical-align:top}
th{background:var(--soft);font-weight:600;font-size:.8rem;white-space:normal;vertical-align:bottom;line-height:1.25}
tbody tr:last-child td{border-bottom:0}
tfoot td{font-weight:700;background:var(--soft);border-top:2px solid var(--line)}
.num{text-align:right}
.stack .lead{position:sticky;right:0;background:#fff;box-shadow:-1px 0 0 var(--line)}
.stack thead .lead,.stack tfoot .lead{background:var(--soft)}
figure{margin:0 0 28px}
.chart-box{max-width:920px;margin:0 auto}
.chart-box svg{display:block;width:100%;height:auto}
.chart-narrow{display:none}
@media (max-width:820px){.chart-wide{display:none}.chart-narrow{display:block;max-width:560px}}
figcaption{color:var(--muted);font-size:.88rem;margin-top:6px;max-width:78ch}
.badge{display:inline-block;padding:0 8px;border-radius:999px;font-size:.76rem;font-weight:600;white-space:nowrap}
.b-wrongly_eligible,.b-underpaid,.b-not_paid{background:#fee2e2;color:#991b1b}
.b-eligible_anyway,.b-match{background:#e5e7eb;color:#374151}
.b-anomaly,.b-overpaid,.b-not_owed{background:#ede9fe;color:#5b21b6}
.b-match{background:#d1fae5;color:#065f46}
.policy{border:1px solid var(--line);border-radius:10px;padding:12px 16px;background:var(--soft)}
.policy ul{margin:.4em 0;padding-left:1.2em}
.checks{list-style:none;padding:0}
.checks li{margin:.5em 0}
.ok{color:var(--ok);font-weight:700}.bad{color:var(--accent);font-weight:700}.skip{color:var(--muted);font-weight:700}
.notes{color:var(--warn)}
dl.kv{display:grid;grid-template-columns:minmax(140px,max-content) 1fr;gap:4px 16px}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:anywhere}
footer{margin-top:48px;color:var(--muted);font-size:.82rem;border-top:1px solid var(--line);padding-top:12px}
@media (max-width:640px){
 body{font-size:15px}.wrap{padding:16px 12px 48px}
 .card .value{font-size:1.3rem}th,td{padding:5px 8px}
 dl.kv{grid-template-columns:1fr}dl.kv dd{margin-bottom:6px}
 .scroll.stack{border:0;border-radius:0;overflow:visible}
 table.stack thead{position:absolute;left:-9999px}
 table.stack,table.stack tbody,table.stack tfoot{display:block}
 table.stack tr{display:grid;grid-template-columns:1fr 1fr;gap:4px 14px;border:1px solid var(--line);border-radius:10px;padding:8px 12px;margin:0 0 10px}
 table.stack td{display:block;white-space:normal;border:0;padding:0;text-align:left;min-width:0;overflow-wrap:anywhere}
 table.stack td::before{content:attr(data-label);display:block;color:var(--muted);font-size:.74rem;font-weight:400;line-height:1.3}
 table.stack td:empty{display:none}
 table.stack td.key{grid-column:1/-1;order:-2}
 table.stack td.lead{grid-column:1/-1;order:-1;font-size:1.1rem;position:static;background:none;box-shadow:none}
 table.stack tfoot tr{background:var(--soft);border-top:1px solid var(--line)}
}
@media print{details.sql{display:none}.chart-wide{display:block}.chart-narrow{display:none}h2{break-after:avoid}}
""".strip()

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _sql(sqls: list[tuple[str, str]] | str, label: str = "SQL") -> str:
    if isinstance(sqls, str):
        sqls = [(label, sqls)] if sqls else []
    if not sqls:
        return ""
    body = "".join(
        (f'<div class="mono">{_e(name)}</div>' if len(sqls) > 1 else "") + f"<pre><code>{_e(sql)}</code></pre>"
        for name, sql in sqls)
    return f'<details class="sql"><summary>{_e(label)}</summary>{body}</details>'


def _badge(kind: str, words: str | None = None) -> str:
    return f'<span class="badge b-{_e(kind)}">{_e(words or kind.replace("_", " "))}</span>'


def _addr(address: str | None, full: bool = False) -> str:
    if not address:
        return "—"
    if full:
        return f'<span class="mono">{_e(address)}</span>'
    return f'<span class="mono" title="{_e(address)}">{_e(fmt.short(address))}</span>'


def _table(headers: list[tuple[str, bool]], rows: list[list[str]], foot: list[str] | None = None,
           caption: str | None = None, stack: tuple[int, int] | None = None) -> str:
    """``headers``: (text, numeric); cells are already-escaped HTML.

    A wide table scrolls sideways in its own box. With ``stack=(key, lead)`` it becomes one card
    per row on a narrow screen instead (each cell under its header's words, from ``data-label``),
    the ``key`` column (who) across the top and the ``lead`` column (the amount) first and large,
    so what matters is on screen without sideways scrolling.
    """
    def td(i: int, c: str) -> str:
        cls = " ".join(x for x in ("num" if headers[i][1] else "", "key" if stack and i == stack[0] else "",
                                   "lead" if stack and i == stack[1] else "") if x)
        attr = f' class="{cls}"' if cls else ""
        return f'<td{attr} data-label="{_e(headers[i][0])}">{c}</td>'

    def th(i: int, h: str, n: bool) -> str:
        cls = " ".join(x for x in ("num" if n else "", "lead" if stack and i == stack[1] else "") if x)
        attr = f' class="{cls}"' if cls else ""
        return f'<th scope="col"{attr}>{_e(h)}</th>'

    head = "".join(th(i, h, n) for i, (h, n) in enumerate(headers))
    body = "".join("<tr>" + "".join(td(i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    tfoot = ""
    if foot:
        tfoot = "<tfoot><tr>" + "".join(td(i, c) for i, c in enumerate(foot)) + "</tr></tfoot>"
    cap = f"<caption class=\"sr\">{_e(caption)}</caption>" if caption else ""
    box, table = ("scroll stack", ' class="stack"') if stack else ("scroll", "")
    return f'<div class="{box}"><table{table}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>{tfoot}</table></div>'


def _empty(text_: str) -> str:
    return f'<p class="sub">{_e(text_)}</p>'


# --- charts from the model --------------------------------------------------------------------------


def _liq_tooltip(i: int, r: dict) -> str:
    return (f"#{i} {r['transaction_hash'][:12]}… block {r['block_number']:,} {r['market']}: "
            f"{text.VERDICT_WORDS.get(r['verdict'], r['verdict'])}; borrower {fmt.short(r['user'])}; "
            f"HF {fmt.wad(r['hf_reported'])} reported, {fmt.wad(r['hf_true'])} true; debt repaid "
            f"{fmt.token(r['debt_to_cover'], r.get('debt_decimals'), r.get('debt_symbol'), 2)}")


def _hf_float(v: int | None) -> float:
    # The replay stores NULL for a health factor above 1e20 (no debt): off the top of the chart.
    if v is None or v >= 2**255:
        return float("inf")
    return v / 1e18


def _both_widths(draw, *args, chart_id: str, **kw) -> str:
    """A chart drawn for a desktop and for a phone; the CSS shows the one that fits the screen."""
    return (f'<div class="chart-wide">{draw(*args, chart_id=chart_id, width=charts.WIDE, **kw)}</div>'
            f'<div class="chart-narrow">{draw(*args, chart_id=f"{chart_id}-narrow", width=charts.NARROW, **kw)}</div>')


def chart_sections(m: ReportModel) -> list[tuple[str, str, str, str, list[tuple[str, str]]]]:
    """(id, title, svg, caption, sqls) for every chart."""
    out = []
    liqs = m.liquidations.rows
    numbered = list(enumerate(liqs, start=1))
    mis = m.mispriced
    if mis and m.price_path.rows:
        pts = [charts.PricePoint(r["block_number"], r["reported_price"] / 1e8, r["true_price"] / 1e8, r.get("timestamp"))
               for r in m.price_path.rows]
        marks = [charts.Mark(r["block_number"], (r["collateral_price_reported"] or 0) / 1e8, r["verdict"], _liq_tooltip(i, r),
                             r.get("timestamp"))
                 for i, r in numbered if r["collateral_asset"] == mis["asset"] and r.get("collateral_price_reported")]
        w = m.value("mispricing_window") or {}
        window = (w["first_block"], w["last_block"]) if w.get("first_block") is not None else None
        title = f"{mis['symbol']}: reported vs true price"
        out.append(("chart-price", title,
                    _both_widths(charts.price_chart, pts, marks, chart_id="chart-price", title=title, window=window,
                                 unit=f"USD per {mis['symbol']}"),
                    f"{mis['symbol']} price in USD as the oracle reported it (dashed) and as it truly was (solid), "
                    "over the replayed range in UTC time (a long quiet stretch is cut out and marked //); the mispriced "
                    "stretch is shaded and every liquidation "
                    "of this collateral is marked at the price it was liquidated at.",
                    [("price path", m.price_path.sql), ("liquidations", m.liquidations.sql)]))
        if marks:
            b0, b1 = min(mk.block for mk in marks), max(mk.block for mk in marks)
            p0, p1 = pts[0].block, pts[-1].block
            if (b1 - b0 + 1) * 4 < (p1 - p0 + 1):
                lo, hi = max(p0, b0 - 2), min(p1, b1 + 2)
                title = f"{mis['symbol']}: the liquidations up close (blocks {lo:,}–{hi:,})"
                out.append(("chart-price-zoom", title,
                            _both_widths(charts.price_chart, pts, marks, chart_id="chart-price-zoom", title=title,
                                         window=window, x_range=(lo, hi), unit=f"USD per {mis['symbol']}"),
                            "The same chart zoomed on the blocks with liquidations; liquidations within one block are "
                            "spread across it in log order.",
                            [("price path", m.price_path.sql), ("liquidations", m.liquidations.sql)]))
    if liqs:
        items = [charts.HFItem(str(i), _hf_float(r["hf_reported"]), _hf_float(r["hf_true"]), r["verdict"], _liq_tooltip(i, r))
                 for i, r in numbered]
        title = "Health factor just before each liquidation"
        out.append(("chart-hf", title, _both_widths(charts.hf_chart, items, chart_id="chart-hf", title=title),
                    "Each liquidation (numbered as in the tables) at the reported price (circle) and the true price "
                    "(diamond). A wrongly eligible liquidation has its circle below the HF = 1 line and its diamond on "
                    "or above it.", [("liquidations", m.liquidations.sql)]))
    rows = m.reimbursement.rows
    if rows:
        names = ["oracle part", "bonus part"] + (["goodwill"] if any(r["goodwill_wei"] for r in rows) else [])
        chart = charts.LossChart(tuple(names))
        for r in rows:
            parts = [r["oracle_loss_wei"] / 1e18, r["bonus_loss_wei"] / 1e18]  # oracle part (fee part included)
            if len(names) == 3:
                parts.append(r["goodwill_wei"] / 1e18)
            chart.bars.append(charts.LossBar(fmt.short(r["user"]), tuple(parts), fmt.eth_auto(r["total_wei"]), r["user"]))
        title = f"Owed per borrower ({m.reimbursement.policy.name})"
        out.append(("chart-losses", title, _both_widths(charts.loss_bars, chart, chart_id="chart-losses", title=title),
                    "What each borrower is owed under the report's reimbursement policy, split into the oracle part "
                    "(collateral handed over at the wrong price, what went to the protocol as fee included) and the "
                    "bonus part (the liquidation bonus); the bars add up to the owed total.",
                    [("per liquidation", m.reimbursement.inputs.sql), ("per borrower, chain prices", m.reimbursement.chain_sql)]))
    return out


# --- sections -------------------------------------------------------------------------------------


def _header(m: ReportModel) -> str:
    facts = "".join(
        f"<div><dt>{_e(f.label)}</dt><dd>{_e(f.value)}</dd>"
        + (f'<p class="fact-note">{_e(f.note)}</p>' if f.note else "")
        + f"{_sql(f.sql)}</div>" for f in text.facts(m))
    lede = "".join(f"<p>{_e(s)}</p>" for s in text.headline(m))
    chain = fmt.chain(m.chain_id)
    return (f'<header><p class="eyebrow">Post-mortem · {_e(chain)} · replay run {_e(m.run_id)}</p>'
            f"<h1>{_e(text.title(m))}</h1>"
            f'<div class="lede" id="headline">{lede}</div>'
            f'<dl class="facts">{facts}</dl>'
            '<nav class="toc" aria-label="Sections"><a href="#figures">Figures</a><a href="#charts">Charts</a>'
            '<a href="#wrongly-eligible">Wrongly eligible</a><a href="#reimbursement">Reimbursement</a>'
            + ('<a href="#borrowers">Each borrower</a>' if m.borrowers is not None and m.borrowers.rows else "")
            + ('<a href="#whatif">What if</a>' if m.whatif else "") +
            '<a href="#liquidators">Liquidators</a><a href="#at-risk">At risk</a><a href="#checks">Checks</a>'
            '<a href="#glossary">Glossary</a><a href="#methodology">Methodology</a><a href="#provenance">Provenance</a>'
            '</nav></header>')


def _figures(m: ReportModel) -> str:
    cards = "".join(
        f'<div class="card" id="fig-{_e(c.key)}"><div class="label">{_e(c.label)}</div>'
        f'<div class="value">{_e(c.value)}</div>'
        + "".join(f'<p class="sub">{_e(s)}</p>' for s in c.sub if s)
        + _sql(c.sqls) + "</div>" for c in text.cards(m))
    return f'<section id="figures"><h2>Figures</h2><div class="cards">{cards}</div></section>'


def _charts(m: ReportModel) -> str:
    figs = "".join(
        f'<figure id="{_e(cid)}"><div class="chart-box">{svg}</div><figcaption>{_e(caption)}</figcaption>{_sql(sqls)}</figure>'
        for cid, _title, svg, caption, sqls in chart_sections(m))
    return f'<section id="charts"><h2>Charts</h2>{figs or _empty("no data to chart")}</section>'


def _liquidation_rows(m: ReportModel, wanted) -> list[list[str]]:
    rows = []
    for i, r in enumerate(m.liquidations.rows, start=1):
        if not wanted(r):
            continue
        rows.append([
            str(i), f'<span class="mono" title="{_e(r["transaction_hash"])}">{_e(r["transaction_hash"][:8])}…</span>',
            _e(fmt.block(r["block_number"])), _e(r["market"]), _addr(r["user"]), _addr(r["liquidator"]),
            _e(fmt.token(r["debt_to_cover"], r.get("debt_decimals"), r.get("debt_symbol"), 2)),
            _e(fmt.token(r.get("collateral_seized"), r.get("collateral_decimals"), r.get("collateral_symbol"), 2)),
            _e(fmt.wad(r["hf_reported"])), _e(fmt.wad(r["hf_true"])),
            _e(fmt.units((r.get("oracle_loss_eth") or 0) + (r.get("fee_oracle_loss_eth") or 0), 18, 4)),
            _e(fmt.units(r.get("bonus_loss_eth"), 18, 4)),
        ] + ([] if r["verdict"] == VERDICT_WRONG else [_badge(r["verdict"], text.VERDICT_WORDS.get(r["verdict"]))]))
    return rows


_LIQ_HEADERS = [("#", True), ("tx", False), ("block", True), ("market", False), ("borrower", False),
                ("liquidator", False), ("debt repaid", True), ("collateral seized", True), ("HF reported", True),
                ("HF true", True), ("oracle loss (ETH)", True), ("bonus loss (ETH)", True)]


def _wrongly(m: ReportModel) -> str:
    wrong = _liquidation_rows(m, lambda r: r["verdict"] == VERDICT_WRONG)
    others = _liquidation_rows(m, lambda r: r["verdict"] != VERDICT_WRONG)
    html = ['<section id="wrongly-eligible"><h2>Wrongly eligible liquidations</h2>',
            "<p>Liquidations that the reported price made possible: the health factor just before the liquidation "
            "was below 1 at the reported price and at least 1 at the true price. Collateral seized includes the "
            "protocol fee; oracle loss (its protocol-fee part included) and bonus loss are in ETH at the true price, "
            "as the glossary defines them. Their totals are in the figures and the reimbursement list.</p>",
            _table(_LIQ_HEADERS, wrong) if wrong else _empty("none"),
            _sql(m.liquidations.sql)]
    if others:
        html += ["<h3>Other liquidations in the replayed range</h3>",
                 "<p>Eligible at both prices, or anomalies the replay could not classify; not reimbursed by default.</p>",
                 _table(_LIQ_HEADERS + [("verdict", False)], others), _sql(m.liquidations.sql)]
    html.append("</section>")
    return "".join(html)


def _reimbursement(m: ReportModel) -> str:
    r = m.reimbursement
    t = r.totals()
    rules = "".join(f"<li>{_e(x)}</li>" for x in r.rules)
    goodwill = any(x["goodwill_wei"] for x in r.rows)
    cmp_rows = {c["user"]: c for c in m.comparison.rows} if m.comparison else {}
    headers = [("#", True), ("borrower", False), ("markets", False), ("liquidations", True),
               ("oracle part (ETH)", True), ("of which on the fee (ETH)", True), ("bonus part (ETH)", True)]
    if goodwill:
        headers.append(("goodwill (ETH)", True))
    headers.append(("owed (ETH)", True))
    if m.comparison:
        headers += [("paid (ETH)", True), ("paid − owed (ETH)", True), ("status", False)]
    rows = []
    for i, x in enumerate(r.rows, start=1):
        row = [str(i), _addr(x["user"], full=True), _e(x["markets"]), _e(fmt.count(x["liquidations"])),
               _e(fmt.units(x["oracle_loss_wei"], 18, 6)),
               _e(fmt.units(x["fee_oracle_loss_wei"], 18, 6)), _e(fmt.units(x["bonus_loss_wei"], 18, 6))]
        if goodwill:
            row.append(_e(fmt.units(x["goodwill_wei"], 18, 6)))
        row.append(f"<strong>{_e(fmt.units(x['total_wei'], 18, 6))}</strong>")
        if m.comparison:
            c = cmp_rows.get(x["user"], {})
            row += [_e(fmt.units(c.get("paid_wei"), 18, 6)), _e(fmt.units(c.get("difference_wei"), 18, 6)),
                    _badge(c.get("status", "not_paid"))]
        rows.append(row)
    foot = ["", "total", "", _e(fmt.count(t["liquidations"])),
            _e(fmt.units(t["oracle_loss_wei"], 18, 6)),
            _e(fmt.units(t["fee_oracle_loss_wei"], 18, 6)), _e(fmt.units(t["bonus_loss_wei"], 18, 6))]
    if goodwill:
        foot.append(_e(fmt.units(t["goodwill_wei"], 18, 6)))
    foot.append(_e(fmt.units(t["total_wei"], 18, 6)))
    if m.comparison:
        foot += [_e(fmt.units(m.comparison.paid_total_wei, 18, 6)), _e(fmt.units(m.comparison.difference_total_wei, 18, 6)), ""]
    html = ['<section id="reimbursement"><h2>Reimbursement</h2>',
            f'<div class="policy"><strong>Policy: {_e(r.policy.name)}</strong><ul>{rules}</ul>'
            f"<p>{fmt.count(t['borrowers'])} borrowers are owed <strong>{_e(fmt.eth(t['total_wei'], 6))}</strong> "
            f"({_e(fmt.eth(t['oracle_loss_wei'], 6))} oracle part + "
            f"{_e(fmt.eth(t['bonus_loss_wei'], 6))} bonus part"
            + (f" + {_e(fmt.eth(t['goodwill_wei'], 6))} goodwill" if t["goodwill_wei"] else "")
            + "). The exact list, to the wei, is the CSV beside this report.</p></div>",
            "<h3>Reimbursement list</h3>",
            _table(headers, rows, foot, stack=(1, next(i for i, (h, _) in enumerate(headers) if h.startswith("owed"))))
            if rows else _empty("nobody is owed anything under this policy"),
            _sql([("per liquidation in scope (the policy is applied to these rows)", r.inputs.sql),
                  ("per borrower at the chain's prices", r.chain_sql)])]
    if m.comparison:
        html.append(_comparison(m))
    html.append("</section>")
    return "".join(html)


def _comparison(m: ReportModel) -> str:
    c = m.comparison
    j = c.to_json()
    counts = j["counts"]
    extra = [x for x in c.rows if x["status"] in ("not_owed",)]
    summary = (f"Compared with <span class=\"mono\">{_e(c.source)}</span>: {counts['match']} match"
               + (f" (within {_e(fmt.eth(c.tolerance_wei, 18))})" if c.tolerance_wei else "")
               + f", {counts['underpaid']} underpaid, {counts['overpaid']} overpaid, {counts['not_paid']} owed but not paid, "
               f"{counts['not_owed']} paid but not owed. Paid {_e(fmt.eth(c.paid_total_wei, 6))} against "
               f"{_e(fmt.eth(c.owed_total_wei, 6))} owed: a difference of {_e(fmt.eth(c.difference_total_wei, 6))}.")
    html = ['<h3 id="comparison">Compared with the paid list</h3>', f"<p>{summary}</p>"]
    diffs = [x for x in c.rows if x["status"] != "match"]
    if diffs:
        rows = [[_addr(x["user"], full=True), _badge(x["status"]), _e(fmt.units(x["owed_wei"], 18, 6)),
                 _e(fmt.units(x["paid_wei"], 18, 6)), _e(fmt.units(x["difference_wei"], 18, 6))] for x in diffs]
        html.append(_table([("user", False), ("status", False), ("owed (ETH)", True), ("paid (ETH)", True),
                            ("paid − owed (ETH)", True)], rows))
    if extra:
        html.append(f"<p>{len(extra)} paid users are not owed anything under this policy.</p>")
    return "".join(html)


def _liquidators(m: ReportModel) -> str:
    rows = [[_addr(r["liquidator"], full=True), _e(fmt.count(r["liquidations"])), _e(fmt.count(r["wrongly_eligible"])),
             _e(fmt.units(r.get("gain_eth_wei"), 18, 4)), _e(fmt.usd(r.get("gain_usd_base")))]
            for r in m.liquidators.rows]
    return ('<section id="liquidators"><h2>Liquidators and what they gained</h2>'
            "<p>Gain = value received at the true price minus the debt repaid, over every liquidation each made.</p>"
            + (_table([("liquidator", False), ("liquidations", True), ("wrongly eligible", True), ("gain (ETH)", True),
                       ("gain (USD)", True)], rows) if rows else _empty("no liquidators"))
            + _sql(m.liquidators.sql) + "</section>")


def _at_risk(m: ReportModel) -> str:
    t: Table = m.at_risk
    rows = [[_addr(r["user"], full=True), _e(r["market"]),
             _e(f"{fmt.block(r.get('first_block'))}–{fmt.block(r.get('last_block'))}"),
             _e(fmt.duration(r.get("seconds_exposed"))), _e(fmt.wad(r.get("min_hf"))), _e(fmt.wad(r.get("hf_true_at_min"))),
             _e(fmt.usd(r.get("debt_usd"))), _e(fmt.units(r.get("exposed_loss_eth"), 18, 4))] for r in t.rows]
    return ('<section id="at-risk"><h2>Positions at risk that were not liquidated</h2>'
            "<p>Positions the reported price made liquidatable (health factor below 1 at the reported price, at least 1 "
            "at the true price) that nobody liquidated, and what the largest single liquidation at their lowest "
            "point would have cost them.</p>"
            + (_table([("borrower", False), ("market", False), ("blocks", False), ("exposed", True),
                       ("lowest HF reported", True), ("HF true then", True), ("largest debt (USD)", True),
                       ("would have lost (ETH)", True)], rows) if rows else _empty(t.note if not t.sql else "none"))
            + _sql(t.sql) + "</section>")


def _glossary(m: ReportModel) -> str:
    items = "".join(f'<dt id="g-{_e(key)}">{_e(name)} <span class="mono">{_e(key)}</span></dt><dd>{_e(definition)}</dd>'
                    for name, key, definition in text.glossary())
    return (f'<section id="glossary"><h2>Glossary</h2><p>{_e(text.GLOSSARY_INTRO)}</p>'
            f'<dl class="kv">{items}</dl></section>')


def _checks(m: ReportModel) -> str:
    items = []
    for c in m.checks:
        mark = ('<span class="ok">✓</span>' if c.ok else '<span class="bad">✗</span>' if c.ok is False
                else '<span class="skip">–</span>')
        items.append(f"<li>{mark} <strong>{_e(c.title)}</strong>: {_e(c.detail)}{_sql(c.sql)}</li>")
    notes = "".join(f'<li class="notes">{_e(n)}</li>' for n in m.notes)
    return (f'<section id="checks"><h2>Checks</h2><ul class="checks">{"".join(items)}</ul>'
            + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "") + "</section>")


def _methodology(m: ReportModel) -> str:
    parts = ['<section id="methodology"><h2>Methodology</h2>']
    for title_, paragraphs in text.methodology(m):
        parts.append(f"<h3>{_e(title_)}</h3>" + "".join(f"<p>{_e(p)}</p>" for p in paragraphs))
    parts.append("</section>")
    return "".join(parts)


def _provenance(m: ReportModel) -> str:
    p = m.provenance
    kv = text.provenance_items(m)
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in kv)
    dig = [[_e(r["dataset"]), _e(fmt.count(r["chunks"])), _e(fmt.count(r["rows"])),
            _e(f"{fmt.block(r['first_block'])}–{fmt.block(r['last_block'])}"), f'<span class="mono">{_e(r["digest"])}</span>']
           for r in p.input_digests.rows]
    outs = [[_e(r["dataset"]), _e(fmt.count(r["rows"])), f'<span class="mono">{_e(r["sha256"])}</span>'] for r in p.outputs.rows]
    runs = [[_e(r["kind"]), _e(fmt.shown(r["tool_version"]))] for r in p.runs.rows]
    chunks = [[_e(r["dataset"]), _e(f"{fmt.block(r['start_block'])}–{fmt.block(r['end_block'])}"), _e(fmt.count(r["rows"])),
               f'<span class="mono">{_e(r["sha256"])}</span>'] for r in p.inputs.rows]
    return ('<section id="provenance"><h2>Provenance</h2>'
            f'<dl class="kv">{dl}</dl>'
            "<h3>Input chunks, per dataset</h3>"
            f"<p>{_e(p.input_digests.note)}.</p>"
            + _table([("dataset", False), ("chunks", True), ("rows", True), ("blocks", False), ("digest", False)], dig)
            + _sql(p.input_digests.sql)
            + f"<details><summary>All {len(chunks)} input chunks with their SHA-256</summary>"
            + _table([("dataset", False), ("blocks", False), ("rows", True), ("sha256", False)], chunks)
            + _sql(p.inputs.sql) + "</details>"
            + "<h3>Replay outputs</h3>"
            + _table([("table", False), ("rows", True), ("sha256", False)], outs) + _sql(p.outputs.sql)
            + "<h3>Runs</h3>"
            + (_table([("kind", False), ("tool", False)], runs) if runs else _empty("no run records"))
            + _sql(p.runs.sql) + f"<p>{_e(text.RUN_RECORDS)}:</p>" + _sql(p.run_records_sql) + "</section>")


def render_html(m: ReportModel) -> str:
    body = "".join([
        _header(m), "<main>", _figures(m), _charts(m), _wrongly(m), _reimbursement(m), borrowers_html(m, _table),
        _liquidators(m), _at_risk(m), whatif_html(m, _table, lambda label, sql: _sql(sql, label)),
        _glossary(m), _checks(m), _methodology(m), _provenance(m), "</main>",
        f"<footer>Written by postmortem {_e(m.provenance.report_tool_version)} from replay run {_e(m.run_id)} of "
        f"{_e(m.incident_id)}. Every figure is reproducible with the SQL beside it, read-only, on the same warehouse.</footer>",
    ])
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="color-scheme" content="light">\n'
            f"<title>{_e(text.title(m))}</title>\n<style>\n{CSS}\n.sr{{position:absolute;left:-9999px}}\n</style>\n"
            f'</head>\n<body>\n<div class="wrap">\n{body}\n</div>\n</body>\n</html>\n')
