"""What a what-if or a stress run writes to the warehouse (``whatif_runs``, ``whatif_results``,
``stress_results``, documented in ``postmortem.schema_docs``), under its own run id.

A run id is 16 hex digits of a SHA-256 over the incident, the settings (or shocks), the replay's
parameters, the SHA-256 of every input file and the tool version: the same question over the
same inputs rewrites its own rows. Outputs carry ``run_family`` (``whatif`` / ``stress``) so the
plain replay views keep showing the latest replay, and the plain ``whatif_*`` / ``stress_results``
views the latest run of each kind; every run stays under ``<table>_all_runs``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path


from postmortem import __version__
from postmortem.replay.output_tables import to_arrow

__all__ = ["run_id_of", "to_arrow", "write_run"]

def run_id_of(kind: str, incident_id: str, question: dict, params: dict, input_files: dict) -> str:
    text = json.dumps({"kind": kind, "incident_id": incident_id, "question": question, "parameters": params,
                       "inputs": sorted(input_files.items()), "tool_version": __version__},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_run(warehouse_root: Path | str, family: str, chain_id: int, incident_id: str, run_id: str,
              tables: dict[str, list[dict]], params: dict, summary: dict, input_files: dict, started: datetime) -> None:
    """Write ``tables`` (name -> rows) as one run, record it in ``runs`` and refresh the catalog."""
    from postmortem.warehouse import RUN_FAMILY_KEY, RUN_OUTPUTS_KEY, Warehouse

    wh = Warehouse(Path(warehouse_root))
    provenance = {"parameters": params, "inputs": input_files, "tool_version": __version__,
                  RUN_OUTPUTS_KEY: sorted(tables), RUN_FAMILY_KEY: family}
    with wh.lock(f"postmortem {family} --incident {incident_id}"):
        for name, rows in tables.items():
            wh.write_output(chain_id, name, incident_id, run_id, to_arrow(name, rows), provenance)
        wh.record_run(family, params, {**summary, "run_id": run_id, "incident_id": incident_id, "chain_id": chain_id},
                      run_id=run_id, started_at=started, finished_at=datetime.now(timezone.utc))
        wh.refresh_catalog()


def now() -> datetime:
    return datetime.now(timezone.utc)
