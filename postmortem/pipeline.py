"""The pipeline: ingest -> replay -> report for one incident, each stage resumable or cheap to redo.

The layer between the stages and the command line: it calls each stage's library API in order and
nothing else; the CLI (`postmortem run`, `postmortem demo`) parses options and calls it.
"""

from __future__ import annotations

from pathlib import Path


def run_incident(incident: str, rpc_url: str, warehouse: Path, *, from_block=None, to_block=None,
                 out_dir: Path | None = None, requests_per_second=None, progress=None,
                 devchain_dir: Path | None = None, users: str | None = None) -> dict:
    """Ingest, replay and report one incident; each stage resumes or is cheap to redo.
    ``devchain_dir`` locates the devchain manifest for ``devchain-*`` incidents."""
    from postmortem.ingest.pipeline import ingest
    from postmortem.incidents import load_incident
    from postmortem.replay.engine import replay
    from postmortem.reports.api import build_and_write
    from postmortem.reports.text import headline

    inc = load_incident(incident, devchain_dir=devchain_dir)
    ingested = ingest(rpc_url, incident=inc, from_block=from_block, to_block=to_block, warehouse=warehouse,
                      requests_per_second=requests_per_second, progress=progress, users=users)
    replayed = replay(warehouse, incident, devchain_dir=devchain_dir)
    model, paths = build_and_write(warehouse, incident, out_dir=out_dir)
    return {"ingest": ingested, "replay": replayed, "report": {k: str(v) for k, v in paths.items()},
            "headline": headline(model)}
