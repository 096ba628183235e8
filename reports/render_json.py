"""The report as JSON: the whole model, deterministic and exact.

Rules: keys sorted; every integer written as a JSON string of its exact decimal digits (uint256
amounts exceed what a double holds, and one rule for all integers keeps readers simple);
decimals as strings; no JSON numbers at all (a float that another stage recorded as a parameter
is written as its repr string); no time of "now" — the same warehouse gives the same bytes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from postmortem.reports import text
from postmortem.reports.model import ReportModel
from postmortem.reports.parts import Table

FORMAT = "postmortem-report/1"


def exact(value: Any) -> Any:
    """``value`` with every int (not bool) and Decimal turned into its exact string, recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        # Only parameters other stages recorded (e.g. a health band of 1.1) are floats; the
        # shortest repr is exact for what was recorded and the same on every platform.
        return repr(value)
    if isinstance(value, dict):
        return {str(k): exact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [exact(v) for v in value]
    return str(value)


def _table(t: Table) -> dict:
    return {"title": t.title, "sql": t.sql, "rows": t.rows, "note": t.note}


def to_dict(m: ReportModel) -> dict:
    """The model as plain JSON-able data (ints still ints; ``exact`` turns them into strings)."""
    r = m.reimbursement
    return {
        "format": FORMAT,
        "title": text.title(m),
        "incident_id": m.incident_id,
        "chain_id": m.chain_id,
        "run_id": m.run_id,
        "headline": text.headline(m),
        "quantities": m.quantities(),
        "glossary": [{"name": n, "key": k, "definition": d} for n, k, d in text.glossary()],
        "mispriced_asset": m.mispriced,
        "eth_asset": m.eth_asset,
        "divergence_ppm": m.divergence_ppm(),
        "figures": {
            k: {"label": f.label, "group": f.group, "unit": f.unit, "shape": f.shape, "value": f.value,
                "sql": f.sql, "note": f.note}
            for k, f in m.figures.items()
        },
        "tables": {t.key: _table(t) for t in (m.liquidations, m.liquidators, m.at_risk, m.price_path)},
        "reimbursement": {
            "policy": r.policy.to_json(),
            "rules": r.rules,
            "totals": r.totals(),
            "rows": r.rows,
            "sql_chain_prices": r.chain_sql,
            "inputs": _table(r.inputs),
        },
        "comparison": m.comparison.to_json() if m.comparison else None,
        "borrowers": m.borrowers.rows if m.borrowers is not None else [],
        "whatif": m.whatif,
        "checks": [{"key": c.key, "title": c.title, "ok": c.ok, "detail": c.detail, "sql": c.sql} for c in m.checks],
        "methodology": {
            "sections": [{"title": t, "paragraphs": ps} for t, ps in text.methodology(m)],
            **m.methodology,
        },
        "provenance": {
            "report_tool_version": m.provenance.report_tool_version,
            "replay": m.provenance.replay,
            "block_range": m.provenance.block_range,
            "rpc_endpoints": m.provenance.rpc_endpoints,
            "outputs": _table(m.provenance.outputs),
            "inputs": _table(m.provenance.inputs),
            "input_digests": _table(m.provenance.input_digests),
            "runs": _table(m.provenance.runs),
            "run_records_sql": m.provenance.run_records_sql,
        },
        "notes": m.notes,
    }


def render_json(m: ReportModel) -> str:
    return json.dumps(exact(to_dict(m)), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
