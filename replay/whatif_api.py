"""The what-if, stress and explain runs: read the warehouse once, judge, write the results.

The library functions behind ``postmortem whatif``, ``postmortem stress`` and ``postmortem
explain`` (the reports stage adds the sweep's curve and chart, and the policies' amounts owed;
``postmortem.pipeline`` joins them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from postmortem.errors import PostmortemError
from postmortem.replay import whatif as W
from postmortem.replay.explain import explain_user
from postmortem.replay.stress import parse_shock, preset_shocks, stress_positions
from postmortem.replay.whatif_store import now, run_id_of, write_run

__all__ = ["explain_run", "stress_run", "whatif_run"]


def whatif_run(warehouse: Path | str, incident_id: str, *, settings: list[str] | tuple = (), sweep: str | None = None,
               devchain_dir: Path | None = None, workers: int = 1,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Judge ``settings`` (``KEY=VALUE``) or a ``sweep`` (``KEY=START:STOP:STEPS``, with the settings
    as its base) over the incident's window; write ``whatif_runs`` and ``whatif_results``."""
    started = now()
    if not settings and not sweep:
        raise PostmortemError("nothing to change: give --set KEY=VALUE (e.g. --set reported_price=true) or "
                              "--sweep KEY=START:STOP:STEPS (e.g. --sweep wstETH.snapshot_ratio=1.18:1.24:61)")
    loaded = W.load(warehouse, incident_id, devchain_dir=devchain_dir)
    wi = W.WhatIf(loaded.trace)
    world = wi.world
    base = [W.parse_setting(t, world) for t in settings]
    sw = W.parse_sweep(sweep, world) if sweep else None
    replay_run = loaded.replay_run_id()
    common = {"from_block": loaded.trace.from_block, "to_block": loaded.trace.to_block, "replay_run_id": replay_run}
    actual = wi.evaluate(W.Counterfactual([], world))
    points: list[tuple[dict, W.PointResult]] = [({"kind": "actual", "settings": "as it happened"}, actual)]
    result = None
    if sw is not None:
        start, stop, steps = sw
        result = W.run_sweep(wi, base, start, stop, steps, workers=workers, progress=progress)
        for i, p in enumerate(result.points):
            points.append(({"kind": "sweep", "settings": p.counterfactual, "sweep_key": result.key,
                            "sweep_value": result.value_text(i), "sweep_value_int": result.values[i],
                            "is_boundary": i == result.boundary_index}, p))
    else:
        cf = W.Counterfactual(base, world)
        points.append(({"kind": "set", "settings": cf.describe()}, wi.evaluate(cf)))
    runs, results = [], []
    for n, (label, p) in enumerate(points):
        runs.append({"point": n, **common, "is_boundary": False, **label, **p.totals})
        results.extend({"point": n, **r} for r in p.liquidations)
    question = {"settings": [s.text for s in base], "sweep": sweep}
    run_id = run_id_of("whatif", incident_id, question, loaded.params, loaded.input_files)
    summary = {"points": len(points) - 1, "question": question, "replay_run_id": replay_run,
               "boundary": result.boundary if result else None,
               "actual": actual.totals, "counterfactual": points[-1][1].totals if sw is None else None,
               "exact_valuations": wi.exact}
    write_run(warehouse, "whatif", loaded.chain_id, incident_id, run_id,
              {"whatif_runs": runs, "whatif_results": results}, {**loaded.params, **question}, summary,
              loaded.input_files, started)
    return {**summary, "run_id": run_id, "incident_id": incident_id, "runs": runs,
            "sweep_key": result.key if result else None}


def stress_run(warehouse: Path | str, incident_id: str, *, at: int | None = None, shocks: list[str] | tuple = (),
               preset: str | None = None, oracle_delay: int = 0, devchain_dir: Path | None = None) -> dict:
    """Value every borrower at the end of block ``at`` (default: the window's start state) under the
    shocks; write ``stress_results``."""
    started = now()
    if not shocks and not preset:
        raise PostmortemError("no shock given: add --shock ASSET=PCT (e.g. --shock wstETH=-30%) or --preset "
                              "flash-crash-20 / flash-crash-30")
    if oracle_delay < 0:
        raise PostmortemError(f"--oracle-delay {oracle_delay} is negative; give a number of blocks >= 0")
    window = W.load_window(warehouse, incident_id, devchain_dir=devchain_dir)
    a, b = window
    block = a - 1 if at is None else int(at)
    if not a - 1 <= block <= b:
        raise PostmortemError(f"--at {block} is outside the window of {incident_id} ({a - 1}..{b}, the start state "
                              f"included); give --at between {a - 1} and {b}")
    header = W.last_header_at_or_before(warehouse, block, a)
    loaded = W.load(warehouse, incident_id, devchain_dir=devchain_dir,
                    to_block=block if block == a - 1 else header)
    tr = loaded.trace
    state = tr.checkpoints[0] if block == a - 1 else tr.checkpoints[-1]
    symbols = set(tr.symbol.values())
    chosen: dict[str, int] = {}
    if preset:
        reported = {tr.symbol[(pool, asset)]: p for pool, ps in state.pools.items() for asset, p in ps.reported.items()}
        chosen.update(preset_shocks(preset, reported))
    for text in shocks:
        sym, bps = parse_shock(text, symbols)
        chosen[sym] = bps
    liquidated = W.liquidated_users(warehouse, a, b)
    res = stress_positions(state, tr.market_of, tr.symbol, chosen, oracle_delay=oracle_delay,
                           liquidated_in_window=liquidated)
    shock_text = ", ".join(f"{s}={W.format_value('price_shift', v)}" for s, v in sorted(chosen.items()))
    rows = [{**r, "shocks": shock_text, "oracle_delay": oracle_delay} for r in res.rows]
    question = {"at": block, "shocks": chosen, "preset": preset, "oracle_delay": oracle_delay}
    run_id = run_id_of("stress", incident_id, question, loaded.params, loaded.input_files)
    summary = {"block_number": res.block_number, "requested_block": block, "timestamp": res.timestamp,
               "shocks": shock_text, "oracle_delay": oracle_delay, "totals": res.totals, "by_market": res.by_market,
               "by_asset": res.by_asset, "liquidated_in_window": len(liquidated)}
    write_run(warehouse, "stress", loaded.chain_id, incident_id, run_id, {"stress_results": rows},
              {**loaded.params, **{k: v for k, v in question.items() if k != "shocks"}, "shocks": shock_text},
              summary, loaded.input_files, started)
    return {**summary, "run_id": run_id, "incident_id": incident_id}


def explain_run(warehouse: Path | str, incident_id: str, user: str, *, devchain_dir: Path | None = None) -> dict:
    """One borrower's story over the window (:func:`replay.explain.explain_user`)."""
    loaded = W.load(warehouse, incident_id, devchain_dir=devchain_dir)
    out = explain_user(loaded.trace, user)
    out.update(incident_id=incident_id, replay_run_id=loaded.replay_run_id(), mispriced=loaded.mispriced,
               market_of=loaded.trace.market_of)
    return out
