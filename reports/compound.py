"""The post-mortem of a Compound v2 lineage incident: both failure classes, bad debt per asset,
the wrongly allowed borrowers apart from the victims, and a payout under one of the policies the
DAOs used, with its formula.

Reads the latest replay run of the incident (``compound_verdicts``, ``compound_borrow_verdicts``,
``compound_bad_debt``, ``compound_borrowers``) and writes ``report.md``, ``report.html``,
``report.json`` and ``reimbursements.csv``. Amounts stay integers (USD x 1e18, the Comptroller's
own unit) until they are printed. Every figure carries the SQL that reproduces it.

Policies (``--policy``):

- ``compound-forum`` (default): the two classes of the Compound forum's 2020 analyses. A borrower
  not liquidatable at the true price is owed the excess collateral and the incentive, ``seized at
  the true price - repaid at the true price``; one liquidatable anyway the incentive difference,
  ``seized at the true price - repaid at the true price x incentive``.
- ``moonwell``: Moonwell's recovery plan, net per borrower over the liquidations of the mispriced
  collateral: ``collateral seized x a fixed price - USD value of the debt repaid``
  (``--policy-price cbETH=2200``; default the collateral's true price), owed when positive.
- ``venus-fee``: Venus's refund of the liquidation fee, for liquidations of the mispriced collateral
  inside a time window (``--policy-window START..END``, UTC): ``collateral seized x (incentive - 1) / incentive`` at the
  true price.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

from postmortem import atomic
from postmortem.errors import PostmortemError
from postmortem.reports.escape import escape_html

E18 = 10**18
POLICIES = ("compound-forum", "moonwell", "venus-fee")
FORMULAS = {
    "compound-forum": ("wrongly eligible (not liquidatable at the true price): seized collateral at the true price "
                       "- debt repaid at the true price (excess collateral + incentive); eligible anyway: seized "
                       "collateral at the true price - debt repaid at the true price x liquidation incentive (the "
                       "incentive difference); summed per borrower"),
    "moonwell": ("per borrower, over the liquidations of the collateral with a fixed price: sum of collateral "
                 "seized x the fixed price - sum of the USD value of the debt repaid (at the true price); owed when "
                 "positive"),
    "venus-fee": ("per liquidation of the mispriced collateral inside the window: collateral seized x (incentive - "
                  "1) / incentive, at the true price (the liquidation fee refunded); summed per borrower"),
}
FILES = {"md": "report.md", "html": "report.html", "json": "report.json", "csv": "reimbursements.csv"}


@dataclass
class CompoundPolicy:
    name: str = "compound-forum"
    prices: dict[str, str] = field(default_factory=dict)   # symbol -> USD (moonwell)
    window: tuple[int, int] | None = None                  # unix seconds, inclusive (venus-fee)
    collateral: list[str] = field(default_factory=list)     # the collateral refunded (venus-fee)

    @classmethod
    def from_options(cls, name: str | None, prices: tuple[str, ...] | list[str] = (), window: str | None = None):
        name = name or "compound-forum"
        if name not in POLICIES:
            raise PostmortemError(f"unknown policy {name!r} for a compound-v2 incident; use one of {', '.join(POLICIES)}")
        parsed = {}
        for text in prices or ():
            s, sep, usd = str(text).partition("=")
            try:
                if not sep or Fraction(usd) <= 0:
                    raise ValueError
            except (ValueError, ZeroDivisionError):
                raise PostmortemError(f"--policy-price {text!r} is not SYMBOL=USD; e.g. --policy-price cbETH=2200") from None
            parsed[s.strip()] = usd.strip()
        span = None
        if window:
            a, sep, b = window.partition("..")
            if not sep:
                raise PostmortemError(f"--policy-window {window!r} is not START..END; e.g. "
                                      "--policy-window 2025-10-10T21:43..2025-10-10T23:30 (UTC)")
            span = (_when(a), _when(b))
            if span[0] > span[1]:
                raise PostmortemError(f"--policy-window {window!r} ends before it starts; swap START and END")
        return cls(name, parsed, span)

    def formula(self) -> str:
        text = FORMULAS[self.name]
        if self.name == "moonwell" and self.prices:
            text += " (fixed prices: " + ", ".join(f"{k} ${v}" for k, v in sorted(self.prices.items())) + ")"
        if self.name == "venus-fee":
            if self.collateral:
                text += f" (collateral: {', '.join(self.collateral)})"
            if self.window:
                text += f" (window {_iso(self.window[0])} .. {_iso(self.window[1])} UTC)"
        return text


def _when(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        raise PostmortemError(f"{text!r} is not a time; give ISO UTC (2025-10-10T21:43) or Unix seconds") from None


def _plain_decimal(q: Fraction) -> str:
    """A price as a short decimal string (exact when it terminates within 18 places)."""
    whole = int(q)
    frac = q - whole
    digits = f"{int(frac * 10**18):018d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _usd(v: int | None, places: int = 2) -> str:
    if v is None:
        return "n/a"
    q = Fraction(int(v), E18)
    sign = "-" if q < 0 else ""
    q = abs(q)
    whole = int(q)
    frac = int((q - whole) * 10**places)
    return f"{sign}${whole:,}.{frac:0{places}d}"


def _units(v: int, decimals: int, places: int = 6) -> str:
    q = Fraction(int(v), 10**decimals)
    whole = int(q)
    return f"{whole:,}.{int((q - whole) * 10**places):0{places}d}"


# -- the model ---------------------------------------------------------------------------------------------


@dataclass
class CompoundReport:
    protocol: str
    incident_id: str
    title: str
    chain_id: int
    run_id: str
    summary: dict
    verdicts: list[dict]
    borrows: list[dict]
    bad_debt: list[dict]
    borrowers: list[dict]
    policy: CompoundPolicy
    owed: list[dict]
    decimals: dict[str, int]
    comparison: None = None
    checks: list = field(default_factory=list)

    def owed_total(self) -> int:
        return sum(r["owed_usd"] for r in self.owed)

    def headline(self) -> list[str]:
        s = self.summary
        we = s["verdicts"].get("wrongly_eligible", 0)
        wa = s["borrow_verdicts"].get("wrongly_allowed", 0)
        out = [f"{self.title}: {s['liquidations']} liquidations replayed with the Comptroller's own rules "
               f"({s['variant']}), {we} wrongly eligible (solvent at the true price); {s['borrows']} borrows, {wa} "
               "wrongly allowed (allowed only because of the reported price)."]
        if self.bad_debt:
            out.append("Bad debt at the end of the window at the true prices: " + ", ".join(
                f"{r['symbol']} {_units(r['bad_debt'], self.decimals.get(r['symbol'], 18))} "
                f"({_usd(r['bad_debt_usd'])})" for r in self.bad_debt) + ".")
        out.append(f"Owed under the {self.policy.name} policy: {_usd(self.owed_total())} to "
                   f"{sum(1 for r in self.owed if r['owed_usd'] > 0)} borrowers.")
        return out


def _rows(con, query: str, params: list) -> list[dict]:
    from decimal import Decimal

    cur = con.execute(query, params)
    names = [d[0] for d in cur.description]
    return [{n: int(v) if isinstance(v, Decimal) else v for n, v in zip(names, row)} for row in cur.fetchall()]


def _latest(con, table: str, incident_id: str) -> list[dict]:
    return _rows(con, f"SELECT * EXCLUDE (chain_id) FROM {table} WHERE incident_id = ? "
                      "ORDER BY ALL", [incident_id])


def build_compound_report(root: Path, incident_id: str, policy: CompoundPolicy | None = None) -> CompoundReport:
    from postmortem.incidents import incident_file
    from postmortem.sql import connect_read_only
    from postmortem.warehouse import Warehouse

    raw, _ = incident_file(incident_id)
    policy = policy or CompoundPolicy.from_options(raw.get("reference", {}).get("policy"))
    runs = [r for r in Warehouse(root).runs("replay") if (r.get("params") or {}).get("incident_id") == incident_id]
    if not runs:
        raise PostmortemError(f"the warehouse has no replay of {incident_id}; run `postmortem replay --incident "
                              f"{incident_id}` first")
    run = runs[-1]
    con = connect_read_only(root)
    try:
        tabs = {t: [r for r in _latest(con, f"{t}_all_runs", incident_id) if r["run_id"] == run["run_id"]]
                for t in ("compound_verdicts", "compound_borrow_verdicts", "compound_bad_debt", "compound_borrowers")}
        p = run["params"]
        logged = _rows(con, "SELECT count(*) AS n FROM compound_events e WHERE e.event = 'LiquidateBorrow' AND "
                            "e.block_number BETWEEN ? AND ? AND e.address IN (SELECT market FROM compound_markets "
                            "WHERE comptroller = ?)", [p["from_block"], p["to_block"], p["comptroller"]])[0]["n"]
        dec = {r["symbol"]: int(r["decimals"]) for r in _rows(
            con, "SELECT DISTINCT symbol, decimals FROM compound_markets WHERE comptroller = ?",
            [run["params"]["comptroller"]])}
    finally:
        con.close()
    verdicts = sorted(tabs["compound_verdicts"], key=lambda r: (r["block_number"], r["log_index"]))
    if len(verdicts) != logged:
        raise PostmortemError(f"the warehouse holds {logged} LiquidateBorrow logs in blocks {p['from_block']}.."
                              f"{p['to_block']} but the replay run {run['run_id']} judged {len(verdicts)}; run "
                              f"`postmortem verify --repair`, then `postmortem ingest` and `postmortem replay --incident "
                              f"{incident_id}`; nothing was written")
    if len(verdicts) != run["summary"]["liquidations"]:
        raise PostmortemError(f"the replay run {run['run_id']} of {incident_id} is incomplete ({len(verdicts)} of "
                              f"{run['summary']['liquidations']} verdicts); run `postmortem replay --incident "
                              f"{incident_id}` again")
    # Moonwell's plan and Venus's refund cover the liquidations of the mispriced collateral: every
    # symbol whose true price differed from the reported one at a liquidation. Moonwell's fixed
    # price defaults to its (first) true price.
    mispriced: dict[str, str] = {}
    for v in verdicts:
        sym = v["collateral_symbol"]
        if sym not in mispriced and int(v["collateral_price_true"]) != int(v["collateral_price_reported"]):
            mispriced[sym] = _plain_decimal(Fraction(int(v["collateral_price_true"]), 10 ** (36 - dec.get(sym, 18))))
    if policy.name == "moonwell" and not policy.prices:
        policy.prices.update(mispriced)
    if policy.name == "venus-fee" and not policy.collateral:
        policy.collateral = sorted(mispriced)
    owed = owed_rows(policy, verdicts, dec)
    return CompoundReport("compound-v2", incident_id, raw.get("title", incident_id),
                          int(run["params"]["chain_id"]), run["run_id"], run["summary"], verdicts,
                          sorted(tabs["compound_borrow_verdicts"], key=lambda r: (r["block_number"], r["log_index"])),
                          tabs["compound_bad_debt"], tabs["compound_borrowers"], policy, owed, dec)


def owed_rows(policy: CompoundPolicy, verdicts: list[dict], decimals: dict[str, int]) -> list[dict]:
    """Per borrower: the policy's amount (USD x 1e18) and the liquidations it counts."""
    per: dict[str, dict] = {}
    for v in verdicts:
        row = per.setdefault(v["user"], {"user": v["user"], "liquidations": 0, "counted": 0, "owed_usd": 0,
                                         "seized_usd": 0, "repaid_usd": 0})
        row["liquidations"] += 1
        if policy.name == "compound-forum":
            row["counted"] += 1
            extra = v["bonus_loss_usd"] if v["verdict"] == "wrongly_eligible" else 0
            row["owed_usd"] += v["oracle_loss_usd"] + extra
        elif policy.name == "moonwell":
            sym = v["collateral_symbol"]
            if sym not in policy.prices:
                continue  # the plan covers the liquidations of the mispriced collateral only
            row["counted"] += 1
            price = int(Fraction(policy.prices[sym]) * 10 ** (36 - decimals.get(sym, 18)))
            row["seized_usd"] += price * int(v["collateral_seized"]) // E18
            row["repaid_usd"] += int(v["repaid_usd_true"])
        else:
            if policy.window and not policy.window[0] <= int(v["timestamp"]) <= policy.window[1]:
                continue
            if v["collateral_symbol"] not in policy.collateral:
                continue
            row["counted"] += 1
            inc = int(v["liquidation_incentive"])
            fee = int(v["seized_usd_true"]) * (inc - E18) // inc if inc > E18 else 0
            row["owed_usd"] += fee
    for row in per.values():
        if policy.name == "moonwell":
            row["owed_usd"] = max(0, row["seized_usd"] - row["repaid_usd"])
    counted = [r for r in per.values() if r["counted"]]  # borrowers the policy does not cover are not listed
    return sorted(counted, key=lambda r: (-r["owed_usd"], r["user"]))


# -- rendering ---------------------------------------------------------------------------------------------


def _sql(incident_id: str) -> dict[str, str]:
    q = f"incident_id = '{incident_id}'"
    return {
        "liquidations": f"select verdict, count(*) from compound_verdicts where {q} group by 1",
        "borrows": f"select verdict, count(*) from compound_borrow_verdicts where {q} group by 1",
        "bad_debt": f"select symbol, bad_debt, bad_debt_usd / 1e18 as usd from compound_bad_debt where {q}",
        "borrowers": f"select user, role from compound_borrowers where {q} and role <> 'victim'",
    }


def render_md(m: CompoundReport) -> str:
    sql = _sql(m.incident_id)
    s = m.summary
    lines = [f"# {m.title}", "", *m.headline(), "",
             f"Chain {m.chain_id}, blocks {s['from_block']:,}..{s['to_block']:,}, variant `{s['variant']}`, "
             f"replay run `{m.run_id}`. True prices: " + (", ".join(f"{k} {v}" for k, v in s["true_price"].items())
                                                          or "as reported") + ".", "",
             "## Liquidations", "",
             f"`postmortem sql \"{sql['liquidations']}\"`", "",
             "| block | borrower | repaid | seized | shortfall reported | shortfall true | verdict |",
             "|---|---|---|---|---|---|---|"]
    for v in m.verdicts:
        lines.append(f"| {v['block_number']:,} | `{v['user']}` | {_units(v['repay_amount'], m.decimals.get(v['debt_symbol'], 18))} "
                     f"{v['debt_symbol']} | {_units(v['collateral_seized'], m.decimals.get(v['collateral_symbol'], 18))} "
                     f"{v['collateral_symbol']} | {_usd(v['shortfall_reported'])} | {_usd(v['shortfall_true'])} | "
                     f"{v['verdict']} |")
    lines += ["", "## Borrows allowed by the reported price", "", f"`postmortem sql \"{sql['borrows']}\"`", "",
              "| block | borrower | amount | liquidity reported | shortfall true | verdict | insolvent at end |",
              "|---|---|---|---|---|---|---|"]
    for b in m.borrows:
        lines.append(f"| {b['block_number']:,} | `{b['user']}` | {_units(b['amount'], m.decimals.get(b['symbol'], 18))} "
                     f"{b['symbol']} | {_usd(b['liquidity_reported'])} | {_usd(b['shortfall_true'])} | {b['verdict']} | "
                     f"{'yes' if b['insolvent_at_end'] else 'no'} |")
    lines += ["", "## Bad debt at the end of the window (true prices)", "", f"`postmortem sql \"{sql['bad_debt']}\"`", "",
              "| asset | accounts | bad debt | USD |", "|---|---|---|---|"]
    for r in m.bad_debt:
        lines.append(f"| {r['symbol']} | {r['accounts']} | {_units(r['bad_debt'], m.decimals.get(r['symbol'], 18))} | "
                     f"{_usd(r['bad_debt_usd'])} |")
    apart = [p for p in m.borrowers if p["role"] != "victim"]
    lines += ["", "## Borrowers who took wrongly allowed debt (listed apart from the victims)", "",
              f"`postmortem sql \"{sql['borrowers']}\"`", ""]
    lines += [f"- `{p['user']}`: {p['wrongly_allowed_borrows']} borrow{'s' if p['wrongly_allowed_borrows'] != 1 else ''} worth {_usd(p['wrongly_allowed_usd_true'])} at "
              f"the true price{'; also liquidated' if p['role'] == 'both' else ''}"
              f"{'; insolvent at the end' if p['insolvent_at_end'] else ''}" for p in apart] or ["None."]
    lines += ["", f"## Reimbursements: the {m.policy.name} policy", "", f"Formula: {m.policy.formula()}.", "",
              "| borrower | liquidations counted | owed (USD) |", "|---|---|---|"]
    lines += [f"| `{r['user']}` | {r['counted']} | {_usd(r['owed_usd'])} |" for r in m.owed]
    lines += [f"| **total** | | **{_usd(m.owed_total())}** |", "", "## Method", "",
              "Every position is event-sourced from its state at the block before the window; at each liquidation "
              "(just before its RepayBorrow) and each borrow (just before its Borrow log) the Comptroller's own "
              "account-liquidity, close-factor and seize rules are replayed with the variant's exact Exp rounding "
              "under the reported and the true prices. USD amounts are the Comptroller's USD x 1e18, rounded down "
              "for display only.", ""]
    return "\n".join(lines)


def render_html(m: CompoundReport) -> str:
    md = render_md(m)
    body = []
    in_table = False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                body.append("<div class=t><table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{escape_html(c)}</th>" for c in cells) + "</tr>")
                continue
            body.append("<tr>" + "".join(f"<td>{escape_html(c.strip('`*'))}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table></div>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{escape_html(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{escape_html(line[3:])}</h2>")
        elif line.startswith("`postmortem sql"):
            body.append(f"<pre>{escape_html(line.strip('`'))}</pre>")
        elif line.startswith("- "):
            body.append(f"<p>• {escape_html(line[2:].replace('`', ''))}</p>")
        elif line.strip():
            body.append(f"<p>{escape_html(line.replace('`', ''))}</p>")
    if in_table:
        body.append("</table></div>")
    style = ("body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}"
             ".t{overflow-x:auto}table{border-collapse:collapse}td,th{border-bottom:1px solid #ccc;padding:.2rem .5rem;"
             "text-align:left}pre{white-space:pre-wrap;background:#f4f4f4;padding:.3rem}"
             "p,pre,h1,h2,h3{overflow-wrap:anywhere}.t{max-width:100%}")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content=\"width=device-width,initial-scale=1\"><title>{escape_html(m.title)}</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def render_json(m: CompoundReport) -> str:
    def plain(rows):
        return [{k: (str(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53 else v)
                 for k, v in r.items()} for r in rows]

    doc = {"incident_id": m.incident_id, "protocol": m.protocol, "title": m.title, "chain_id": m.chain_id,
           "run_id": m.run_id, "headline": m.headline(), "summary": m.summary,
           "policy": {"name": m.policy.name, "formula": m.policy.formula()},
           "quantities": {"owed_usd_e18": str(m.owed_total())},
           "liquidations": plain(m.verdicts), "borrows": plain(m.borrows), "bad_debt": plain(m.bad_debt),
           "borrowers": plain(m.borrowers), "reimbursement": {"rows": plain(m.owed)}}
    return json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n"


def render_csv(m: CompoundReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["user", "policy", "liquidations", "liquidations_counted", "owed_usd_e18", "owed_usd"])
    for r in m.owed:
        w.writerow([r["user"], m.policy.name, r["liquidations"], r["counted"], r["owed_usd"], _usd(r["owed_usd"])[1:]
                    .replace(",", "")])
    return buf.getvalue()


def write_compound_report(root: Path | str, incident_id: str, out_dir: Path | str | None, formats=("md", "html", "json", "csv"),
                          policy: CompoundPolicy | None = None) -> tuple[CompoundReport, dict[str, Path]]:
    from postmortem.paths import DEFAULT_REPORTS

    out = Path(out_dir).expanduser() if out_dir is not None else Path(DEFAULT_REPORTS) / incident_id
    wh_root = Path(root).expanduser().resolve()
    if out.resolve() == wh_root or wh_root in out.resolve().parents:
        raise PostmortemError(f"refusing to write the report inside the warehouse ({out.resolve()}); choose an --out "
                              f"folder outside {wh_root}")
    m = build_compound_report(Path(root), incident_id, policy)
    renderers = {"md": render_md, "html": render_html, "json": render_json, "csv": render_csv}
    docs = {f: renderers[f](m) for f in formats if f in renderers}
    total = sum(int(r["owed_usd_e18"]) for r in csv.DictReader(io.StringIO(docs["csv"]))) if "csv" in docs else m.owed_total()
    if total != m.owed_total():
        raise PostmortemError("the reimbursement CSV disagrees with the report's owed total; nothing was written "
                              "(a bug in postmortem's reports)")
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for f, text in docs.items():
        atomic.write_text(out / FILES[f], text)
        paths[f] = out / FILES[f]
    return m, paths
