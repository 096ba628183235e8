"""The replay stage's API: replay an incident over what the warehouse holds and write its outputs.

:func:`run_replay` replays a set of inputs in memory (:mod:`replay.replayer`); :func:`replay`
reads the inputs of an incident from the warehouse, replays them and writes the output tables
(:mod:`replay.output_tables`) under the incident and a run id.

The run id is derived from what the run read and how: the incident, the parameters, the SHA-256
of every input file and the tool version (:func:`replay_run_id`). The same inputs give the same
run id, so replaying them again rewrites the same outputs (idempotent, never counted twice) and
a report of them is the same to the byte; when the run happened is in the ``runs`` records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from postmortem import __version__
from postmortem.errors import PostmortemError
from postmortem.incidents import incident_file, load_incident
from postmortem.replay.inputs import ReplayInputs, ingested_window, load_inputs
from postmortem.replay.positions import PositionBook, PositionError
from postmortem.replay.prices import TrueModel, parse_true_price_option, true_models_from_incident
from postmortem.replay.replayer import Checkpoint, Replayer
from postmortem.replay.rows import sum_or_none

__all__ = ["Checkpoint", "ReplayResult", "replay", "replay_run_id", "resolve_true_models", "run_replay"]

DEFAULT_HEALTH_BAND = 1.10


@dataclass
class ReplayResult:
    """Everything a replay computed, as rows per output table, plus its summary."""

    tables: dict[str, list[dict]]
    summary: dict
    checkpoints: list[Checkpoint] = field(default_factory=list)
    book: PositionBook | None = None


def run_replay(inputs: ReplayInputs, true_models: Mapping[str, TrueModel] | None = None, *,
               eth_asset: str | None = None, health_band: float = DEFAULT_HEALTH_BAND) -> ReplayResult:
    """Replay ``inputs`` (no warehouse writes): the output rows of every table and a summary."""
    if inputs.from_block > inputs.to_block:
        raise PostmortemError(f"the window {inputs.from_block}..{inputs.to_block} is empty; from must not exceed to")
    models = dict(true_models or {})
    t0 = time.monotonic()
    r = Replayer(inputs, models, eth_asset=eth_asset, health_band=health_band)
    try:
        r.run()
    except PositionError as exc:
        raise PostmortemError(f"the positions do not replay consistently ({exc}); re-ingest the range") from None
    except KeyError as exc:  # a reserve, price or state the inputs lack
        raise PostmortemError(f"the warehouse lacks an input the replay needs ({exc.args[0]}); re-ingest the range") from None
    verdict_rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in r.verdict_rows]
    tables = {
        "health": r.health_rows,
        "verdicts": verdict_rows,
        "borrower_losses": r.borrower_rows(),
        "liquidator_gains": r.liquidator_rows(),
        "at_risk": r.at_risk_rows(),
        "price_path": r.price_rows,
    }
    counts: dict[str, int] = defaultdict(int)
    for v in verdict_rows:
        counts[v["verdict"]] += 1
    summary = {
        "from_block": inputs.from_block, "to_block": inputs.to_block,
        "markets": {m["market"]: {"pool": m["pool"], "revision": r.revisions[m["pool"]].value} for m in inputs.markets},
        "true_price": {sym: m.describe() for sym, m in models.items()},
        "health_band": health_band,
        "checkpoints": len(r.checkpoints),
        "checkpoint_kinds": dict(_count(cp.kind for cp in r.checkpoints)),
        "positions_start": len(inputs.positions_at_start),
        "users": len(r.book.users),
        "events_applied": r.book.events_applied,
        "positions_screened": r.screened,
        "positions_valued_exactly": r.exact,
        "health_rows": len(r.health_rows),
        "liquidations": len(verdict_rows),
        "verdicts": {k: counts.get(k, 0) for k in ("wrongly_eligible", "eligible_anyway", "anomaly")},
        "replay_mismatches": sum(not v["replay_matches_log"] for v in verdict_rows),
        "at_risk": len(tables["at_risk"]),
        "reported_price_mismatches": len(r.price_mismatches),
        "price_state_drift": len(r.state_drift),
        # The report's quantities (see the glossary): the oracle loss of every liquidation, its
        # protocol-fee part included; the bonus loss of the wrongly eligible ones only.
        "oracle_loss_eth_wei": sum_or_none(x for v in verdict_rows
                                           for x in (v["oracle_loss_eth_wei"], v["fee_oracle_loss_eth_wei"])),
        "bonus_loss_eth_wei": sum_or_none(v["bonus_loss_eth_wei"] for v in verdict_rows
                                          if v["verdict"] == "wrongly_eligible"),
        "reimbursable_eth_wei": sum_or_none(b["reimbursable_eth_wei"] for b in tables["borrower_losses"]),
        "rows": {k: len(v) for k, v in tables.items()},
        "seconds": round(time.monotonic() - t0, 3),
    }
    if r.price_mismatches:
        summary["first_price_mismatch"] = {k: str(v) for k, v in r.price_mismatches[0].items()}
    return ReplayResult(tables=tables, summary=summary, checkpoints=r.checkpoints, book=r.book)


def _count(items) -> dict:
    out: dict = defaultdict(int)
    for x in items:
        out[x] += 1
    return out


def resolve_true_models(declared: Mapping | None, overrides: list[str] | Mapping[str, Any] | None,
                        base_dir: Path | None = None) -> dict[str, TrueModel]:
    """The incident file's ``[true_price]`` models, with ``--true-price`` overrides applied."""
    models = true_models_from_incident(declared, base_dir)
    if isinstance(overrides, Mapping):
        overrides = [f"{k}={v}" for k, v in overrides.items()]
    for text in overrides or []:
        symbol, model = parse_true_price_option(text, base_dir=Path.cwd())
        models[symbol] = model
    return models


def replay(warehouse_root: Path | str, incident_id: str, *, true_price_overrides: list[str] | Mapping | None = None,
           from_block: int | None = None, to_block: int | None = None, health_band: float = DEFAULT_HEALTH_BAND,
           run_id: str | None = None, devchain_dir: Path | None = None) -> dict:
    """Replay ``incident_id`` over what the warehouse holds and write the outputs; returns the run summary.

    The window and pools are those of the last ingest of the incident recorded in the warehouse
    (``from_block`` / ``to_block`` narrow it); the true-price models come from the incident file,
    overridden by ``true_price_overrides`` (``["wstETH=constant:2345.67", ...]``).
    Outputs (``health``, ``verdicts``, ``borrower_losses``, ``liquidator_gains``, ``at_risk``,
    ``price_path``) are written under ``incident_id`` and ``run_id`` (default: :func:`replay_run_id`
    of the inputs, so a replay of the same inputs replaces its own outputs) with provenance.
    """
    from postmortem.warehouse import RUN_OUTPUTS_KEY, Warehouse
    from postmortem.replay.output_tables import TABLES, VIEWS, to_output

    started = datetime.now(timezone.utc)
    root = Path(warehouse_root)
    raw, incident_path = incident_file(incident_id)
    if raw.get("protocol", "aave-v3") != "aave-v3":  # another protocol family's own replay
        from postmortem.replay.adapters import protocol_replay

        return protocol_replay(raw["protocol"])(root, incident_id, true_price_overrides=true_price_overrides,
                                                from_block=from_block, to_block=to_block, run_id=run_id,
                                                devchain_dir=devchain_dir)
    w = incident_window(root, incident_id, raw, devchain_dir=devchain_dir)
    w = w.narrowed(from_block, to_block)
    pools, a, b, chain_id = w.pools, w.from_block, w.to_block, w.chain_id
    models = resolve_true_models(raw.get("true_price"), true_price_overrides, incident_path.parent)
    inputs, eth_asset = w.inputs()
    result = run_replay(inputs, models, eth_asset=eth_asset, health_band=health_band)
    params = {"incident_id": incident_id, "from_block": a, "to_block": b, "pools": pools, "chain_id": chain_id,
              "true_price": {s: m.describe() for s, m in models.items()}, "health_band": health_band,
              "eth_asset": eth_asset}
    run_id = run_id or replay_run_id(incident_id, params, models, inputs.input_files)
    # Every output lists the run's tables, so a run missing one is never taken as complete.
    provenance = {"parameters": params, "inputs": inputs.input_files, "tool_version": __version__,
                  RUN_OUTPUTS_KEY: sorted(TABLES)}
    wh = Warehouse(root)
    with wh.lock(f"postmortem replay --incident {incident_id}"):
        for name in TABLES:
            wh.write_output(chain_id, name, incident_id, run_id, to_output(name, result.tables[name]), provenance)
        views = wh.registered_views()
        summary = {**result.summary, "run_id": run_id, "incident_id": incident_id, "chain_id": chain_id}
        wh.record_run("replay", params, summary, run_id=run_id, started_at=started,
                      finished_at=datetime.now(timezone.utc))
        for name, (sql, description) in VIEWS.items():
            if views.get(name, {}).get("sql") != sql:
                wh.register_view(name, sql, description)
        wh.refresh_catalog()
    return summary


@dataclass(frozen=True)
class IncidentWindow:
    """What a replay of an incident reads, resolved once: the ingested range and pools recorded in
    the warehouse (or, with nothing recorded, the catalog's), the chain id and the ETH asset.
    ``replay`` and the what-if's ``load`` both start here."""

    root: Path
    incident_id: str
    pools: dict[str, str]
    from_block: int
    to_block: int
    ingested: tuple[int, int]
    chain_id: int
    eth_asset: str | None

    def narrowed(self, from_block: int | None, to_block: int | None) -> "IncidentWindow":
        return replace(self, from_block=self.from_block if from_block is None else int(from_block),
                       to_block=self.to_block if to_block is None else int(to_block))

    def inputs(self) -> tuple[ReplayInputs, str | None]:
        """The window's inputs, and the ETH asset when the replayed markets hold it."""
        inputs = load_inputs(self.root, chain_id=self.chain_id, pools=list(self.pools.values()),
                             from_block=self.from_block, to_block=self.to_block)
        eth = self.eth_asset if self.eth_asset and any(r["asset"] == self.eth_asset for r in inputs.reserves) else None
        return inputs, eth


def incident_window(root: Path, incident_id: str, raw: Mapping, *, devchain_dir: Path | None = None) -> IncidentWindow:
    """The incident's window as ingested into ``root`` (see :class:`IncidentWindow`); one sentence
    with the fix when the warehouse holds none."""
    if not (root / "catalog.duckdb").exists():
        raise PostmortemError(f"the warehouse at {root} holds no data yet; run `postmortem ingest --incident {incident_id}` first")
    window = ingested_window(root, incident_id)
    incident = None
    if window is None:
        # Nothing recorded in this warehouse: fall back on the catalog's own range and pools.
        try:
            incident = load_incident(incident_id, devchain_dir=devchain_dir)
        except (PostmortemError, OSError, KeyError, ValueError):
            incident = None
    if window is None and incident is None:
        raise PostmortemError(
            f"the warehouse at {root} has no ingest of incident {incident_id}; run `postmortem ingest --incident "
            f"{incident_id}` first"
        )
    pools = dict(window["pools"]) if window else dict(incident.pools)
    a = window["from_block"] if window else incident.from_block
    b = window["to_block"] if window else incident.to_block
    chain_id = int(raw["chain_id"]) if raw.get("chain_id") else _chain_id(root, list(pools.values()), incident)
    eth_asset = (incident.eth_asset if incident else None) or (raw.get("eth_asset") or "").lower() or None
    return IncidentWindow(root, incident_id, pools, a, b, (a, b), chain_id, eth_asset)


def replay_run_id(incident_id: str, params: Mapping, true_models: Mapping[str, TrueModel],
                  input_files: Mapping[str, str], tool_version: str = __version__) -> str:
    """The run id of a replay: 16 hex digits of a SHA-256 over everything the run's results depend on.

    That is the incident, the parameters, each true-price model in full (a CSV model's every point,
    not just its description), the SHA-256 of every input file and the tool version. The same
    inputs give the same id on any machine at any time; a changed input file, parameter or tool
    version gives another. When a run happened is kept in the ``runs`` records, not in its id.
    """
    models = {sym: [m.model, m.price, m.feed, [list(p) for p in m.series]] for sym, m in sorted(true_models.items())}
    text = json.dumps({"incident_id": incident_id, "parameters": params, "true_models": models,
                       "inputs": sorted(input_files.items()), "tool_version": tool_version},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _chain_id(root: Path, pools: list[str], incident) -> int:
    if incident is not None:
        return int(incident.chain_id)
    from postmortem.sql import connect_read_only

    con = connect_read_only(root)
    try:
        inlist = ", ".join("?" for _ in pools)
        found = sorted({r[0] for r in con.execute(
            f"SELECT DISTINCT chain_id FROM markets WHERE pool IN ({inlist})", [p.lower() for p in pools]).fetchall()})
    finally:
        con.close()
    if len(found) != 1:
        raise PostmortemError(f"cannot tell the chain of pools {', '.join(pools)} from the warehouse (found {found})")
    return found[0]
