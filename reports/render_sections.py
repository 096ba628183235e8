"""The report's per-borrower section and its what-if section, in HTML and Markdown.

``render_html`` and ``render_md`` call these with their own table writer, so the sections look
like the rest of the document. Every number comes from the model (``m.borrowers``, ``m.whatif``).
"""

from __future__ import annotations

from typing import Callable

from postmortem.reports import fmt
from postmortem.reports.escape import escape_html as _e
from postmortem.reports.whatif_curve import curve_svg

__all__ = ["borrowers_html", "whatif_html", "whatif_md"]

_POINT_COLS = (("point", "point", False), ("settings", "counterfactual", False),
               ("would_liquidate", "liquidations that happen", True), ("prevented", "prevented", True),
               ("wrongly_eligible", "wrongly eligible", True), ("liquidatable_positions", "liquidatable borrowers", True),
               ("oracle_loss_eth_wei", "oracle loss", True), ("bonus_loss_eth_wei", "bonus loss", True),
               ("bad_debt_base", "bad debt", True))


def _cell(key: str, value) -> str:
    if key.endswith("_eth_wei"):
        return fmt.eth(value)
    if key.endswith("_base"):
        return fmt.usd(value)
    return fmt.shown(value) if not isinstance(value, int) else fmt.count(value)


def _shown_points(run: dict, limit: int = 25) -> list[dict]:
    """A sweep's points thinned to about ``limit`` for reading (the boundary and both ends kept);
    every point is in the warehouse and in report.json."""
    pts = run["points"]
    if len(pts) <= limit:
        return pts
    step = max(1, (len(pts) - 1) // (limit - 2))
    keep = {0, 1, len(pts) - 1, *range(1, len(pts), step)}
    keep |= {i for i, p in enumerate(pts) if p.get("is_boundary")}
    return [pts[i] for i in sorted(keep)]


def _boundary_text(run: dict) -> str:
    b = run.get("boundary")
    if not b:
        return ""
    if run["sweep_key"].endswith("snapshot_ratio"):
        return (f"Boundary of {run['sweep_key']}: the smallest grid value that keeps the asset uncapped through the "
                f"window is {b['sweep_value']} (the exact boundary is in the run's record: postmortem sql \"select "
                "summary from runs where kind = 'whatif'\").")
    return (f"Boundary of {run['sweep_key']}: the last grid value that changes nothing against the window as it "
            f"happened is {b['sweep_value']}.")


def whatif_html(m, table: Callable, sql: Callable) -> str:
    if not m.whatif:
        return ""
    parts = ['<section id="whatif"><h2>What if</h2><p>Each LiquidationCall judged again on the state the chain '
             "had just before it, under the counterfactual (point 0 is the window as it happened). Amounts are exact "
             "in the warehouse; here in ETH and USD for reading.</p>"]
    for run in m.whatif:
        shown = _shown_points(run)
        parts.append(f"<h3>Run {_e(run['run_id'])}</h3>")
        rows = [[_e(_cell(k, p.get(k))) for k, _h, _n in _POINT_COLS] for p in shown]
        parts.append(table([(h, n) for _k, h, n in _POINT_COLS], rows,
                           caption=f"What-if run {run['run_id']}"))
        if len(shown) < len(run["points"]):
            parts.append(f'<p class="sub">{len(shown)} of {len(run["points"])} points shown; all are in '
                         "report.json and in the warehouse.</p>")
        if run.get("sweep_key"):
            b = run.get("boundary")
            boundary = {"x": int(b["sweep_value_int"]), "text": b["sweep_value"]} if b else None
            sweep = [p for p in run["points"] if p["kind"] == "sweep"]
            parts.append(f'<p>{_e(_boundary_text(run))}</p>' if b else "")
            parts.append('<div class="chart-wide">' + curve_svg(sweep, run["sweep_key"], boundary) + "</div>")
            parts.append('<div class="chart-narrow">' + curve_svg(sweep, run["sweep_key"], boundary, width=380)
                         + "</div>")
        if run.get("prevented"):
            prows = [[fmt.block(r["block_number"]), _e(r["market"]), f'<span class="mono">{_e(r["user"])}</span>',
                      _e(fmt.wad(r["hf_counterfactual"])), _e(fmt.wad(r["hf_true"]))] for r in run["prevented"]]
            parts.append(f"<p>{len(prevented := run['prevented'])} liquidation{'s' * (len(prevented) != 1)} would not "
                         "have happened:</p>")
            parts.append(table([("block", True), ("market", False), ("borrower", False),
                                ("HF counterfactual", True), ("HF true", True)], prows))
            parts.append(sql("SQL", run["prevented_sql"]))
        parts.append(sql("SQL", run["sql"]))
    parts.append("</section>")
    return "".join(parts)


def whatif_md(m, table: Callable) -> list[str]:
    if not m.whatif:
        return []
    out = ["## What if", "", "Each LiquidationCall judged again on the state the chain had just before it, under the "
           "counterfactual (point 0 is the window as it happened).", ""]
    for run in m.whatif:
        shown = _shown_points(run)
        out += [f"### Run {run['run_id']}", "",
                table([h for _k, h, _n in _POINT_COLS], [[_cell(k, p.get(k)) for k, _h, _n in _POINT_COLS] for p in shown],
                      {i for i, c in enumerate(_POINT_COLS) if c[2]}), ""]
        if run.get("boundary"):
            out += [_boundary_text(run), ""]
        if run.get("prevented"):
            out += [f"Would not have happened: {len(run['prevented'])} liquidations "
                    f"({', '.join(fmt.short(r['user']) for r in run['prevented'][:10])}"
                    f"{', ...' if len(run['prevented']) > 10 else ''}).", ""]
        out += ["```sql", run["sql"], "```", ""]
    return out


def borrowers_html(m, table: Callable) -> str:
    b = m.borrowers
    if b is None or not b.rows:
        return ""
    index = " ".join(f'<a class="mono" href="#{_e(r["user"])}">{_e(fmt.short(r["user"]))}</a>' for r in b.rows)
    parts = ['<section id="borrowers"><h2>Each borrower</h2>',
             "<p>Find your address with your browser's search, or open this page at <code>#0xYOURADDRESS</code> "
             "(lower case). Each case: the liquidations with their verdicts, the health factor at each checkpoint "
             "where either price put the position near liquidation, what was lost and what is owed under this "
             "report's policy. <code>postmortem explain --user ADDRESS</code> adds the price at which the position "
             "would have been liquidated.</p>", f'<p class="index">{index}</p>']
    for r in b.rows:
        owed = r["owed"]
        head = (f'<summary><span class="mono">{_e(r["user"])}</span> — owed '
                f'{_e(fmt.eth(owed["total_wei"]) if owed else fmt.eth(0))}</summary>')
        liq = [[fmt.block(x["block_number"]), _e(x.get("market") or ""), _e(str(x.get("verdict") or "").replace("_", " ")),
                _e(fmt.wad(x.get("hf_reported"))), _e(fmt.wad(x.get("hf_true"))),
                _e(fmt.token(x.get("collateral_seized"), x.get("collateral_decimals"), x.get("collateral_symbol"))),
                _e(fmt.eth(x.get("oracle_loss_eth"))), _e(fmt.eth(x.get("bonus_loss_eth")))]
               for x in r["liquidations"]]
        path = [[f"{fmt.block(h['first_block'])}" + (f"–{fmt.block(h['last_block'])}" if h["last_block"] != h["first_block"]
                                                      else ""),
                 _e(h["checkpoint_kind"] + (" (liquidated)" if h["liquidated_here"] else "")),
                 _e(fmt.wad(h["hf_reported"])), _e(fmt.wad(h["hf_true"]))] for h in r["health"]]
        owed_text = (f"Owed {fmt.eth(owed['total_wei'])}: oracle part {fmt.eth(owed['oracle_loss_wei'])}, bonus part "
                     f"{fmt.eth(owed['bonus_loss_wei'])}" + (f", goodwill {fmt.eth(owed['goodwill_wei'])}"
                                                            if owed.get("goodwill_wei") else "") + "."
                     if owed else "Not on the reimbursement list under this policy.")
        parts.append(f'<details class="borrower" id="{_e(r["user"])}">{head}'
                     f"<p>Lost {_e(fmt.eth(r['borrower_loss_wei']))} in {len(r['liquidations'])} liquidation"
                     f"{'s' * (len(r['liquidations']) != 1)} ({_e(r['markets'])}). {_e(owed_text)}</p>"
                     + table([("block", True), ("market", False), ("verdict", False), ("HF reported", True),
                              ("HF true", True), ("collateral taken", True), ("oracle loss", True), ("bonus loss", True)],
                             liq, caption=f"Liquidations of {r['user']}")
                     + (table([("blocks", True), ("checkpoint", False), ("HF reported", True), ("HF true", True)], path,
                              caption=f"Health factor of {r['user']}") if path else "")
                     + "</details>")
    parts.append("</section>")
    return "".join(parts)
