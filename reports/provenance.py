"""Where a report's numbers came from: the replay run and its parameters, the replayed block range,
the replay's output files and the input chunks with their SHA-256, and the recorded methodology.

Everything here is published, so URL-like strings are redacted again (their writers redacted
them already).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from postmortem import __version__
from postmortem.redact import redact_url, redact_urls_in
from postmortem.reports.columns import literal, sql_text
from postmortem.reports.parts import Figure, Table
from postmortem.reports.reader import RunReader
from postmortem.warehouse import Warehouse

__all__ = ["Provenance", "build_provenance", "flatten", "input_digest", "methodology", "node_label"]


@dataclass
class Provenance:
    report_tool_version: str
    replay: dict  # run_id, tool_version, verdicts file and hash, parameters as recorded
    block_range: dict  # first_block, last_block, source
    rpc_endpoints: list[str]  # redacted
    outputs: Table  # the replay run's output files with hashes
    inputs: Table  # input chunk files overlapping the block range, with hashes
    input_digests: Table  # per dataset: chunks, rows, range, digest over (path, sha256)
    runs: Table  # the kinds of run (ingest, replay) of this incident, with their tool versions
    run_records_sql: str = ""  # every run record of this incident: times, parameters, the node's URL


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def node_label(url: str) -> str:
    """A node as a report names it: the redacted URL without its port, or "a local node" for one on
    this machine (a local node's port changes from one start to the next; the data does not)."""
    parts = urlsplit(redact_url(url))
    host = (parts.hostname or "").lower()
    if host in LOOPBACK or host.startswith("127."):
        return "a local node"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def build_provenance(rd: RunReader, figures: dict[str, Figure]) -> Provenance:
    pattern = '%"' + rd.incident_id + '"%'
    which = f"WHERE run_id = {literal(rd.run_id)}\n   OR params LIKE {literal(pattern)}"
    records_sql = sql_text("""
        SELECT run_id, kind, tool_version, started_at, finished_at, params
        FROM runs
        {which}
        ORDER BY started_at, run_id
    """).replace("{which}", which)
    rpc: set[str] = set()
    replay_params: dict = {}
    for r in rd.rows(records_sql):
        params = redact_urls_in(_loads(r.get("params")))  # redacted by the writer; published, so again
        # Run records hold URLs already redacted by their writer; redact again so nothing slips through.
        rpc.update(redact_url(val) for key, val in _walk(params)
                   if isinstance(val, str) and "://" in val and ("rpc" in key.lower() or "url" in key.lower()))
        if r.get("run_id") == rd.run_id and isinstance(params, dict):
            replay_params = params
    # The report shows what derives from the data; when each run ran (and against which node, on which
    # port) is in the runs records, so two reports of the same data are the same bytes.
    runs_sql = sql_text("""
        SELECT DISTINCT kind, tool_version
        FROM runs
        {which}
        ORDER BY kind, tool_version
    """).replace("{which}", which)
    runs_table = Table("runs", "Runs of this incident (ingest, replay), by tool version", runs_sql, rd.rows(runs_sql),
                       note="when each run ran, and the node it read, are in the runs records")
    first, last, source = _block_range(replay_params, rd.recorded_params, rd.recorded_inputs, rd.wh, figures)
    out_sql = sql_text(f"""
        SELECT dataset, path, rows, sha256
        FROM warehouse_files
        WHERE file_kind = 'output' AND chain_id = {rd.chain_id}
          AND incident_id = {literal(rd.incident_id)} AND run_id = {literal(rd.run_id)}
        ORDER BY dataset, path
    """)
    outputs = Table("outputs", "Replay outputs read by this report", out_sql, rd.rows(out_sql))
    in_where = f"file_kind = 'chunk' AND chain_id = {rd.chain_id}"
    if first is not None:
        in_where += f"\n  AND start_block <= {last} AND end_block >= {first}"
    in_sql = sql_text(f"""
        SELECT dataset, start_block, end_block, rows, sha256, path
        FROM warehouse_files
        WHERE {in_where}
        ORDER BY dataset, start_block, path
    """)
    inputs = Table("inputs", "Input chunks overlapping the block range", in_sql, rd.rows(in_sql))
    dig_sql = sql_text(f"""
        SELECT dataset,
               count(*) AS chunks,
               sum(rows) AS rows,
               min(start_block) AS first_block,
               max(end_block) AS last_block,
               sha256(string_agg(path || ' ' || sha256, chr(10) ORDER BY path)) AS digest
        FROM warehouse_files
        WHERE {in_where}
        GROUP BY dataset
        ORDER BY dataset
    """)
    digests = Table("input_digests", "Input chunks per dataset, with one digest over their hashes", dig_sql,
                    rd.rows(dig_sql),
                    note="digest = sha256 of the lines 'path sha256' of every chunk, sorted by path, joined by newlines")
    replay = {
        "run_id": rd.run_id,
        "tool_version": rd.record.tool_version,
        "verdicts_file": rd.record.path,
        "verdicts_sha256": rd.record.sha256,
        "parameters": rd.recorded_params,
        "input_hashes_recorded": len(rd.recorded_inputs) if isinstance(rd.recorded_inputs, dict) else 0,
    }
    return Provenance(
        report_tool_version=__version__, replay=replay,
        block_range={"first_block": first, "last_block": last, "source": source},
        rpc_endpoints=sorted({node_label(u) for u in rpc}), outputs=outputs, inputs=inputs, input_digests=digests,
        runs=runs_table, run_records_sql=records_sql,
    )


def methodology(rd: RunReader) -> dict:
    recorded = {}
    for key, value in _walk(rd.recorded_params):
        k = key.lower()
        if any(w in k for w in ("model", "revision", "price", "rounding", "oracle", "band")):
            recorded[key] = value
    m = rd.cols.get("markets")
    revisions: list[dict] = []
    if m is not None:
        sql = sql_text(f"""
            SELECT DISTINCT {m.sel('market', default='NULL')}, {m.sel('pool', default='NULL')}, {m.sel('revision')}
            FROM markets
            WHERE chain_id = {rd.chain_id}
            ORDER BY ALL
        """)
        pools = {r["pool"] for r in rd.rows(sql_text(f"SELECT DISTINCT {rd.v('pool')} AS pool FROM verdicts WHERE {rd.where()}"))}
        revisions = [r for r in rd.rows(sql) if not pools or r.get("pool") in pools]
    return {"recorded_parameters": dict(sorted(recorded.items(), key=lambda kv: kv[0])), "pool_revisions": revisions}


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _walk(obj: Any, prefix: str = ""):
    """(dotted key, value) for every leaf of nested dicts/lists, keys sorted."""
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _walk(obj[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _walk(item, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def flatten(obj: Any) -> dict[str, Any]:
    """Nested parameters as ``{"pools.core": "0x…", ...}`` for display."""
    return dict(_walk(obj))


_FROM_KEYS = ("from_block", "start_block", "first_block")
_TO_KEYS = ("to_block", "end_block", "last_block")


def _block_range(params: dict, recorded: dict, inputs: dict, wh: Warehouse,
                 figures: dict[str, Figure]) -> tuple[int | None, int | None, str]:
    """The replayed block range: as the replay recorded it, else from its input chunks, else the liquidations."""
    for source, d in (("replay run parameters", params), ("verdicts file provenance", recorded)):
        flat = flatten(d) if isinstance(d, dict) else {}
        lo = next((val for k, val in flat.items() if k.split(".")[-1] in _FROM_KEYS and isinstance(val, int)), None)
        hi = next((val for k, val in flat.items() if k.split(".")[-1] in _TO_KEYS and isinstance(val, int)), None)
        if lo is not None and hi is not None:
            return lo, hi, source
    if isinstance(inputs, dict) and inputs:
        recs = {r.path: r for r in wh.records()}
        spans = [(recs[p].start, recs[p].end) for p in inputs if p in recs and recs[p].start is not None]
        if spans:
            return min(s for s, _ in spans), max(e for _, e in spans), "the replay's input chunks"
    w = figures["liquidation_window"].value or {}
    if w.get("first_block") is not None:
        return w["first_block"], w["last_block"], "first and last liquidation (the replay recorded no range)"
    return None, None, "unknown"


def input_digest(rows: list[dict]) -> str:
    """The digest the input_digests SQL computes, for one dataset's chunk rows (used by tests)."""
    text = "\n".join(f"{r['path']} {r['sha256']}" for r in sorted(rows, key=lambda r: r["path"]))
    return hashlib.sha256(text.encode()).hexdigest()
