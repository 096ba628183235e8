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


def run_whatif(warehouse: Path, incident: str, *, settings=(), sweep: str | None = None, out_dir: Path | None = None,
               devchain_dir: Path | None = None, workers: int = 1, progress=None) -> dict:
    """A what-if run (``replay.whatif_api.whatif_run``); a sweep also writes its curve and chart
    (``reports.whatif_curve``) into ``out_dir`` (default ``data/reports/<incident>/whatif-<run>/``)."""
    from postmortem.replay.whatif_api import whatif_run
    from postmortem.reports.api import default_out_dir
    from postmortem.reports.whatif_curve import write_curve

    result = whatif_run(warehouse, incident, settings=list(settings), sweep=sweep, devchain_dir=devchain_dir,
                        workers=workers, progress=progress)
    if result.get("sweep_key"):
        out = Path(out_dir) if out_dir else default_out_dir(incident) / f"whatif-{result['run_id']}"
        paths = write_curve(result["runs"], result["sweep_key"], result.get("boundary"), out)
        result["curve"] = {k: str(v) for k, v in paths.items()}
    return result


def run_explain(warehouse: Path, incident: str, user: str, *, devchain_dir: Path | None = None) -> dict:
    """One borrower's story (``replay.whatif_api.explain_run``) with what they are owed under each
    reimbursement scope at the chain's prices (``reports.policy``), from the latest replay's report model."""
    from postmortem.replay.whatif_api import explain_run
    from postmortem.reports.model import build_model
    from postmortem.reports.policy import SCOPES, Policy

    story = explain_run(warehouse, incident, user, devchain_dir=devchain_dir)
    owed = {}
    for scope in SCOPES:
        try:
            model = build_model(warehouse, incident, run_id=story["replay_run_id"], policy=Policy(scope=scope))
        except Exception as exc:  # noqa: BLE001 - a scope that cannot apply here (e.g. no mispricing window)
            from postmortem.errors import PostmortemError

            if not isinstance(exc, PostmortemError):
                raise
            owed[scope] = {"error": str(exc)}
            continue
        row = next((r for r in model.reimbursement.rows if r["user"] == story["user"]), None)
        owed[scope] = {"rule": model.reimbursement.policy.scope_rule(),
                       "oracle_part_wei": row["oracle_loss_wei"] if row else 0,
                       "bonus_part_wei": row["bonus_loss_wei"] if row else 0,
                       "owed_wei": row["total_wei"] if row else 0,
                       "report_run_id": getattr(model, "run_id", None)}
    story["owed"] = owed
    return story
