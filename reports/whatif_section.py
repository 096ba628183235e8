"""What-if runs in the report (``postmortem report --whatif RUN``): each run's counterfactuals
against the window as it happened, read from ``whatif_runs`` and ``whatif_results`` with the SQL
that reproduces them; a sweep with its curve (:mod:`reports.whatif_curve`)."""

from __future__ import annotations

from postmortem.errors import PostmortemError
from postmortem.reports.columns import literal, sql_text
from postmortem.reports.reader import RunReader

__all__ = ["read_whatif_runs"]


def read_whatif_runs(rd: RunReader, run_ids: list[str] | tuple[str, ...]) -> list[dict]:
    """One dict per what-if run: ``run_id``, ``points`` (whatif_runs rows), ``prevented`` (the
    liquidations a single counterfactual would have prevented), ``boundary`` (a sweep's boundary
    row), and the SQL of each."""
    out = []
    if not run_ids:
        return out
    if "whatif_runs_all_runs" not in rd.tables:
        raise PostmortemError(f"the warehouse holds no what-if run; run `postmortem whatif --incident {rd.incident_id} "
                              "--set KEY=VALUE` first")
    for run_id in run_ids:
        where = f"incident_id = {literal(rd.incident_id)} AND run_id = {literal(run_id)} AND chain_id = {rd.chain_id}"
        sql = sql_text(f"SELECT * FROM whatif_runs_all_runs WHERE {where} ORDER BY point")
        points = rd.rows(sql)
        if not points:
            known = [r["run_id"] for r in rd.rows(
                f"SELECT DISTINCT run_id FROM whatif_runs_all_runs WHERE incident_id = {literal(rd.incident_id)} "
                "ORDER BY 1")]
            raise PostmortemError(f"no what-if run {run_id} of {rd.incident_id} in the warehouse"
                                  + (f"; its what-if runs are {', '.join(known)}" if known else
                                     f"; run `postmortem whatif --incident {rd.incident_id} ...` first"))
        single = len(points) == 2 and points[1]["kind"] == "set"
        prevented_sql = sql_text(f"""
            SELECT market, block_number, log_index, "user", collateral_symbol, debt_symbol, hf_counterfactual, hf_true,
                   revert_reason
            FROM whatif_results_all_runs
            WHERE {where} AND point = 1 AND NOT would_liquidate
            ORDER BY block_number, transaction_index, log_index""")
        out.append({
            "run_id": run_id, "points": points, "sql": sql, "kind": points[-1]["kind"],
            "sweep_key": points[-1].get("sweep_key"),
            "boundary": next((p for p in points if p.get("is_boundary")), None),
            "prevented": rd.rows(prevented_sql) if single else [], "prevented_sql": prevented_sql if single else "",
        })
    return out
