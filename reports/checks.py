"""The checks a report runs before it publishes, each a :class:`~reports.parts.Check` with its SQL.

Every decodable raw log has its decoded row; every ``LiquidationCall`` has a verdict; the
replay's own per-borrower losses agree with the list; the input chunks are the ones the replay
read; each liquidation replays to its logged amounts; owed is one number everywhere. A check
that finds incomplete data or numbers that disagree refuses the report (``PostmortemError``)
rather than publish it.
"""

from __future__ import annotations

from postmortem.errors import PostmortemError
from postmortem.reports.columns import ident, literal, sql_text
from postmortem.reports.fmt import exact_units
from postmortem.reports.parts import VERDICT_WRONG, VERDICTS, Check, Figure
from postmortem.reports.reader import RunReader
from postmortem.reports.reimbursement import Reimbursement

__all__ = ["run_checks"]


def run_checks(rd: RunReader, figures: dict[str, Figure], reimbursement: Reimbursement,
               liquidations_rows: list[dict], block_range: tuple) -> list[Check]:
    """Every check, in order; ``block_range`` is ``(first, last, source)`` of the replayed range."""
    checks: list[Check] = [raw_log_coverage(rd, block_range)]
    v = rd.v
    # 1. Every LiquidationCall log of the replayed pools in the block range has a verdict.
    l = rd.cols.get("liquidations")
    pools = sorted({r["pool"] for r in figures["markets"].rows if r.get("pool")})
    first, last, _ = block_range
    pool_filter = (f"AND lower({l('address', 'l')}) IN ({', '.join(literal(p.lower()) for p in pools)})"
                   if l is not None and pools else "")
    if l is not None and first is not None:
        sql = sql_text(f"""
            SELECT count(*) AS logs,
                   count(*) FILTER (WHERE v.transaction_hash IS NULL) AS without_verdict
            FROM liquidations l
            LEFT JOIN (
                SELECT {v.sel('transaction_hash')}, {v.sel('log_index')}
                FROM verdicts
                WHERE {rd.where()}
            ) v ON v.transaction_hash = {l('transaction_hash', 'l')}
               AND v.log_index = {l('log_index', 'l')}
            WHERE l.chain_id = {rd.chain_id}
              AND {l('block_number', 'l')} BETWEEN {first} AND {last}
              {pool_filter}
        """).replace("{pool_filter}", pool_filter)
        r = rd.rows(sql)[0]
        ok = r["without_verdict"] == 0 and r["logs"] == figures["liquidations"].value
        if not ok:
            raise PostmortemError(
                f"{r['without_verdict']} of the {r['logs']} LiquidationCall logs in blocks {first:,}–{last:,} have "
                f"no verdict in replay run {rd.run_id} ({figures['liquidations'].value} verdicts), so the report "
                f"would be incomplete; run `postmortem replay --incident {rd.incident_id} --warehouse {rd.root}` "
                "again")
        checks.append(Check(
            "log_coverage", "Every LiquidationCall log has a verdict", ok,
            f"{r['logs']} LiquidationCall logs of the replayed pools in blocks {first:,}–{last:,}; "
            f"{r['without_verdict']} without a verdict; {figures['liquidations'].value} verdicts", sql))
    else:
        raise PostmortemError(
            f"the warehouse has no decoded liquidations{'' if first is not None else ' or no replayed block range'} "
            f"to hold the verdicts against, so the report cannot show that every liquidation was judged; "
            f"run `postmortem ingest --incident {rd.incident_id} --warehouse {rd.root}` first")
    # 2. The replay's own per-borrower reimbursable agrees with the list at the chain's prices.
    b = rd.cols.get("borrower_losses")
    if b is not None:
        sql = sql_text(f"""
            SELECT {b.sel('user')}, sum({b('reimbursable_eth')}) AS reimbursable_wei
            FROM borrower_losses
            WHERE {rd.where()}
            GROUP BY {b('user')}
            HAVING sum({b('reimbursable_eth')}) > 0
            ORDER BY {ident('user')}
        """)
        theirs = {r["user"]: r["reimbursable_wei"] for r in rd.rows(sql)}
        title = "The replay's own per-borrower losses agree with the reimbursement list at the chain's prices"
        if reimbursement.policy.scope != "reimbursable":
            checks.append(Check("borrower_losses", title, None,
                                "not compared: the report's scope is not the replay's reimbursable rule", sql))
        else:
            ours = {r["user"]: r["chain_owed_wei"] for r in reimbursement.rows}
            users = set(theirs) | set(ours)
            differ = sorted(u for u in users if theirs.get(u) != ours.get(u))
            checks.append(Check(
                "borrower_losses", title, not differ,
                f"{len(users) - len(differ)} of {len(users)} borrowers agree to the wei"
                + (f"; differing: {', '.join(differ[:5])}{' …' if len(differ) > 5 else ''}" if differ else ""), sql))
    # 3. The input chunks the replay recorded are still the ones in the warehouse.
    if isinstance(rd.recorded_inputs, dict) and rd.recorded_inputs:
        live = {r.path: r.sha256 for r in rd.wh.records()}
        changed = sorted(p for p, h in rd.recorded_inputs.items() if live.get(p) != h)
        n = len(rd.recorded_inputs)
        checks.append(Check(
            "inputs_unchanged", "The replay's input chunks are unchanged", not changed,
            f"{n - len(changed)} of {n} input chunks have the hash the replay recorded"
            + (f"; changed or missing: {', '.join(changed[:3])}{' …' if len(changed) > 3 else ''}" if changed else ""),
            sql_text(f"""
                SELECT meta FROM warehouse_files
                WHERE dataset = 'verdicts' AND incident_id = {literal(rd.incident_id)}
                  AND run_id = {literal(rd.run_id)} AND chain_id = {rd.chain_id}
            """)))
    else:
        checks.append(Check("inputs_unchanged", "The replay's input chunks are unchanged", None,
                            "not checked: the replay recorded no input hashes"))
    # 4. The replay re-ran every liquidation to its logged amounts.
    if v.has("replay_matches_log"):
        sql = sql_text(f"""
            SELECT count(*) AS liquidations,
                   count(*) FILTER (WHERE NOT {v('replay_matches_log')}) AS not_matching
            FROM verdicts
            WHERE {rd.where()}
        """)
        r = rd.rows(sql)[0]
        checks.append(Check("replay_matches_log", "Replaying each liquidation gives its logged amounts",
                            r["not_matching"] == 0,
                            f"{r['liquidations'] - r['not_matching']} of {r['liquidations']} liquidations replay to "
                            "the logged debtToCover and liquidatedCollateralAmount", sql))
    checks.append(one_number(rd, figures, reimbursement, liquidations_rows))
    # 5. Verdict rows are of the known kinds.
    unknown = [r for r in figures["verdicts"].rows if r["verdict"] not in VERDICTS]
    checks.append(Check("verdict_kinds", "Every verdict is a known kind", not unknown,
                        "verdicts: " + ", ".join(f"{r['verdict']} {r['liquidations']}" for r in figures["verdicts"].rows)
                        if figures["verdicts"].rows else "no liquidations", figures["verdicts"].sql))
    return checks

def raw_log_coverage(rd: RunReader, block_range: tuple) -> Check:
    """Every decodable log in the raw ``logs`` table has its row in its decoded table (matched by topic0).

    Counts per decoded table over the replayed block range; a table short of rows means a chunk
    file is missing, emptied or out of the manifest, so the report refuses (PostmortemError).
    """
    from postmortem.ingest.events import EVENTS_BY_TOPIC0, UNDECODED_TABLE

    first, last, _ = block_range
    title = "Every decodable raw log has its row in its decoded table"
    if "logs" not in rd.tables or not any(r.dataset == "logs" and r.chain_id == rd.chain_id
                                            for r in rd.wh.records()):
        raise PostmortemError(
            f"the warehouse {rd.root} has no raw logs for chain {rd.chain_id}, so the report cannot show "
            f"that its decoded tables are complete; run `postmortem ingest --incident {rd.incident_id} "
            f"--warehouse {rd.root}` first")
    if first is not None:
        chunks = sorted((r.start, r.end) for r in rd.wh.records()
                        if r.dataset == "logs" and r.kind == "chunk" and r.chain_id == rd.chain_id
                        and r.start is not None and r.end >= first and r.start <= last)
        covered = first
        for s_, e_ in chunks:
            if s_ > covered:
                break
            covered = max(covered, e_ + 1)
        if covered <= last:
            raise PostmortemError(
                f"the warehouse has no raw logs for blocks {covered:,}–{last:,} of the replayed range "
                f"{first:,}–{last:,} (chain {rd.chain_id}), so the report would be built from incomplete data; "
                f"run `postmortem ingest --incident {rd.incident_id} --warehouse {rd.root}` to fetch them")
    # topic0 -> decoded table (a topic0 shared by two layouts of one table stays one table).
    group: dict[str, str] = {}
    for topic0, events in sorted(EVENTS_BY_TOPIC0.items()):
        group[topic0.hex()] = "+".join(sorted({e.table for e in events}))
    tables = sorted(set(group.values()))
    def where(a: str = "") -> str:
        rng = f" AND {a}block_number BETWEEN {first} AND {last}" if first is not None else ""
        return f"{a}chain_id = {rd.chain_id}{rng}"
    values = ",\n                   ".join(f"({literal(t)}, {literal(tbl)})" for t, tbl in group.items())
    import duckdb

    readable = set()
    for x in sorted(rd.tables & {t for tbl in tables for t in tbl.split("+")} | {UNDECODED_TABLE}):
        try:  # a view whose every file is gone cannot be read: it holds no rows
            rd.con.execute(f"SELECT 1 FROM {ident(x)} LIMIT 1").fetchall()
            readable.add(x)
        except duckdb.Error:
            pass
    decoded = []
    for tbl in tables:
        present = [x for x in tbl.split("+") if x in readable]
        if not present:
            decoded.append(f"SELECT {literal(tbl)} AS decoded_table, 0 AS decoded_rows")
        else:
            decoded.append(" UNION ALL ".join(
                f"SELECT {literal(tbl)} AS decoded_table, count(*) AS decoded_rows FROM {ident(x)} WHERE {where()}"
                for x in present))
    if UNDECODED_TABLE in readable:
        decoded.append(f"SELECT t.decoded_table, count(*) AS decoded_rows FROM {UNDECODED_TABLE} u "
                       f"JOIN topics t ON t.topic0 = lower(hex(u.topic0)) WHERE {where('u.')} "
                       "GROUP BY t.decoded_table")
    union = "\n                UNION ALL ".join(decoded)
    sql = sql_text(f"""
        WITH topics(topic0, decoded_table) AS (
            VALUES {values}
        ), raw AS (
            SELECT t.decoded_table, count(*) AS raw_logs
            FROM logs l JOIN topics t ON t.topic0 = lower(hex(l.topic0))
            WHERE {where('l.')}
            GROUP BY t.decoded_table
        ), decoded AS (
            {union}
        )
        SELECT t.decoded_table,
               coalesce((SELECT raw_logs FROM raw r WHERE r.decoded_table = t.decoded_table), 0) AS raw_logs,
               coalesce((SELECT sum(decoded_rows) FROM decoded d WHERE d.decoded_table = t.decoded_table), 0)
                   AS decoded_rows
        FROM (SELECT DISTINCT decoded_table FROM topics) t
        ORDER BY t.decoded_table
    """)
    rows = rd.rows(sql)
    bad = [r for r in rows if r["raw_logs"] != r["decoded_rows"]]
    span = f"blocks {first:,}–{last:,}" if first is not None else "the whole chain"
    if bad:
        r = bad[0]
        more = f" (and {len(bad) - 1} more tables)" if len(bad) > 1 else ""
        raise PostmortemError(
            f"the warehouse's {r['decoded_table']} table has {r['decoded_rows']:,} rows for {r['raw_logs']:,} "
            f"matching raw logs in {span}{more}, so a decoded chunk is missing or damaged and the report would "
            f"be built from incomplete data; {rd.fix()}")
    n = sum(r["raw_logs"] for r in rows)
    used = sum(1 for r in rows if r["raw_logs"])
    return Check("raw_log_coverage", title, True,
                 f"{n:,} raw logs in {span} with a known event, every one decoded, across {used} tables", sql)

def one_number(rd: RunReader, figures: dict[str, Figure], reimbursement: Reimbursement,
               liquidations_rows: list[dict]) -> Check:
    """owed = Σ rows of the list = oracle part + bonus part + goodwill, and at the chain's prices the parts are
    the oracle loss and bonus loss figures (less borrowers not listed), to the wei; else the report refuses."""
    t = reimbursement.totals()
    parts = t["oracle_loss_wei"] + t["bonus_loss_wei"] + t["goodwill_wei"]
    problems = []
    if parts != t["total_wei"]:
        problems.append(f"oracle part + bonus part + goodwill is {parts} wei, the list's rows sum to {t['total_wei']}")
    if any(r["total_wei"] != r["oracle_loss_wei"] + r["bonus_loss_wei"] + r["goodwill_wei"] for r in reimbursement.rows):
        problems.append("a row of the list is not the sum of its parts")
    eth = lambda w: exact_units(w, 18) + " ETH"  # noqa: E731
    detail = (f"owed {eth(t['total_wei'])} = oracle part {eth(t['oracle_loss_wei'])} + bonus part "
              f"{eth(t['bonus_loss_wei'])}" + (f" + goodwill {eth(t['goodwill_wei'])}" if t["goodwill_wei"] else "")
              + f" = the sum of the list's {t['borrowers']} rows")
    policy = reimbursement.policy
    if policy.uses_chain_prices and policy.scope == "reimbursable":
        listed = {r["user"] for r in reimbursement.rows}
        oracle_out = bonus_out = 0
        for r in liquidations_rows:
            if r["user"] in listed:
                continue
            oracle_out += int(r.get("oracle_loss_eth") or 0) + int(r.get("fee_oracle_loss_eth") or 0)
            if r["verdict"] == VERDICT_WRONG:
                bonus_out += int(r.get("bonus_loss_eth") or 0)
        ol, bl = figures["oracle_loss"].value, figures["bonus_loss"].value
        sql_owed = figures["owed_chain_prices"].value["eth_wei"]
        if ol["eth_wei"] != t["oracle_loss_wei"] + oracle_out:
            problems.append(f"the oracle loss figure is {ol['eth_wei']} wei, the list's oracle part "
                            f"{t['oracle_loss_wei']} + {oracle_out} for borrowers not listed")
        if bl["eth_wei"] != t["bonus_loss_wei"] + bonus_out:
            problems.append(f"the bonus loss figure is {bl['eth_wei']} wei, the list's bonus part "
                            f"{t['bonus_loss_wei']} + {bonus_out} for borrowers not listed")
        if sql_owed != t["total_wei"] - t["goodwill_wei"]:
            problems.append(f"the SQL at the chain's prices gives {sql_owed} wei owed before goodwill")
        detail += ("; oracle part = the oracle loss figure" + (f" less {eth(oracle_out)} of borrowers not listed"
                                                                if oracle_out else "")
                   + ", bonus part = the bonus loss figure" + (f" less {eth(bonus_out)}" if bonus_out else "")
                   + ", owed = the SQL at the chain's prices")
    else:
        detail += "; the policy's parts are not the chain-price figures, so those are not compared"
    if problems:
        raise PostmortemError("the report's numbers disagree (" + "; ".join(problems) + "); nothing was written, "
                              "and this is a bug in postmortem's reports to report with the warehouse")
    return Check("one_number", "Owed is one number: headline, figures, list, report.json and reimbursements.csv",
                 True, detail + "; report.json and reimbursements.csv are checked to carry the same wei when written",
                 figures["owed_chain_prices"].sql)
