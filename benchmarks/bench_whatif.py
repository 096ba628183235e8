"""Benchmark: a 1,000-point what-if sweep over the devchain incident window (goal: < 30 s on 2 cores).

Starts its own devchain with the incident scenario on a free port and ingests its window into a
temporary warehouse (or reuses ``--warehouse DIR`` where the incident is already ingested), then:

- **load**: reading the inputs from the warehouse and the one exact replay that keeps the trace
  (``replay.whatif.load``), once;
- **sweep**: ``--points`` counterfactuals of ``wstETH.snapshot_ratio`` from 1.18 to 1.24 (about
  three quarters of them below the boundary, where every point prices differently), judged over
  the trace (``replay.whatif.run_sweep``) with 1 and with ``--workers`` processes;
- **baseline**: what re-running the replay for every point would cost: the wall time of one
  ``run_replay`` of the same inputs times the number of points.

A figure, never a test assertion. Prints a table and writes ``benchmarks/results/whatif.json``.

    .venv/bin/python benchmarks/bench_whatif.py
    .venv/bin/python benchmarks/bench_whatif.py --warehouse /tmp/wh --points 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
INCIDENT_ID = "devchain-wsteth-capo-2026-03-10"
SWEEP = "wstETH.snapshot_ratio=1.18:1.24:{n}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warehouse", type=Path, default=None, help="an ingested warehouse to reuse (no chain started)")
    ap.add_argument("--out", type=Path, default=RESULTS / "whatif.json")
    args = ap.parse_args(argv)

    from postmortem.replay import whatif as W
    from postmortem.replay.engine import run_replay
    from postmortem.replay.inputs import load_inputs

    node = None
    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as tmp:
        root = args.warehouse
        if root is None:
            from postmortem.devchain import manager
            from postmortem.devchain.node import free_port
            from postmortem.incidents import load_incident
            from postmortem.ingest.pipeline import ingest

            node, _out = manager.start(free_port(), "wsteth-capo-2026-03-10", directory=Path(tmp) / "chain", detach=False)
            root = Path(tmp) / "wh"
            inc = load_incident(INCIDENT_ID, devchain_dir=Path(tmp) / "chain")
            ingest(node.url, incident=inc, warehouse=root, progress=False)
        try:
            t0 = time.perf_counter()
            loaded = W.load(root, INCIDENT_ID)
            load_s = time.perf_counter() - t0
            wi = W.WhatIf(loaded.trace)
            start, stop, steps = W.parse_sweep(SWEEP.format(n=args.points), wi.world)
            runs = {}
            for workers in sorted({1, args.workers}):
                fresh = W.WhatIf(loaded.trace)  # no memo carried over between the two runs
                c0, t0 = time.process_time(), time.perf_counter()
                res = W.run_sweep(fresh, [], start, stop, steps, workers=workers)
                runs[workers] = {"seconds": time.perf_counter() - t0, "cpu_seconds_main": time.process_time() - c0,
                                 "boundary": res.boundary.get("snapshot_ratio_text"),
                                 "exact_valuations_main": fresh.exact}
            p = loaded.params
            inputs = load_inputs(root, chain_id=loaded.chain_id, pools=list(p["pools"].values()),
                                 from_block=p["from_block"], to_block=p["to_block"])
            t0 = time.perf_counter()
            run_replay(inputs, loaded.models, eth_asset=p["eth_asset"])
            one_replay = time.perf_counter() - t0
        finally:
            if node is not None:
                node.stop()
    best = min(r["seconds"] for r in runs.values())
    out = {"points": args.points, "sweep": SWEEP.format(n=args.points), "load_seconds": load_s,
           "one_replay_seconds": one_replay, "baseline_seconds": one_replay * args.points,
           "runs": {str(k): v for k, v in runs.items()}, "best_seconds": best, "goal_seconds": 30,
           "cpus": os.cpu_count(), "load_average": os.getloadavg(), "machine": platform.platform()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"what-if sweep, {args.points} points of {start.key} over the devchain incident window")
    print(f"  load (warehouse read + one traced replay): {load_s:.2f} s")
    for k, v in runs.items():
        print(f"  sweep, {k} process(es): {v['seconds']:.2f} s ({v['seconds'] / args.points * 1000:.1f} ms a point), "
              f"boundary {v['boundary']}")
    print(f"  baseline, one run_replay per point: {one_replay:.3f} s x {args.points} = {one_replay * args.points:.1f} s "
          f"({one_replay * args.points / best:.1f}x)")
    print(f"  goal < 30 s: {'met' if load_s + best < 30 else 'missed'} (load + sweep {load_s + best:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
