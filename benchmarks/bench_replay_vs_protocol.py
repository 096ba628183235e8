"""Benchmark: exact replay against the protocol itself (``Pool.getUserAccountData`` per user).

Starts its own devchain (anvil, Aave v3.6) on a free port with the incident scenario
(``wsteth-capo-2026-03-10``, default) or ``scale --borrowers N``, ingests its window into a
temporary warehouse and runs the replay (``replay.engine.run_replay``) with the health band
opened up (``health_band=inf``), so *every* borrower is valued exactly at every checkpoint
(the ``health`` output table), under the reported and the true price.

Then, for every health row at a checkpoint that is a block end (kinds ``start``,
``price_change``, ``end``; ``liquidation`` checkpoints sit inside a block and are checked by
``tests/test_replay_chain.py`` with ``eth_simulateV1``), it calls ``Pool.getUserAccountData``
for that user with ``eth_call`` at that block (``devchain.prestate.account_data_at``):

- reported: no override; the replay's ``hf_reported``, ``collateral_base_reported`` and
  ``debt_base_reported`` must equal the protocol's health factor, collateral and debt;
- true: the price sources of the assets whose true price differs from the reported one are
  replaced, by a state override, with code answering the replay's true price
  (``price_path.true_price`` at that block); ``hf_true`` and the true sums must equal the
  protocol's answer.

Mismatches are listed (expected: zero; exit status 1 otherwise). Timing, per position valued:

- **replay exact**: the time inside ``aave_math.health_factor`` (one exact valuation of one
  account under one price), measured by wrapping the engine's call;
- **replay wall**: the whole ``run_replay`` wall time / exact valuations (events, prices,
  screening, rows included);
- **eth_call**: one ``getUserAccountData`` request per (user, checkpoint, price), sequential,
  over HTTP to the local anvil, wall time per call.

Prints a table and writes ``benchmarks/results/replay_vs_protocol.json``.

    .venv/bin/python benchmarks/bench_replay_vs_protocol.py                          # incident scenario
    .venv/bin/python benchmarks/bench_replay_vs_protocol.py --scenario scale --borrowers 300
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
INCIDENT_SCENARIO = "wsteth-capo-2026-03-10"
INCIDENT_ID = "devchain-wsteth-capo-2026-03-10"
BLOCK_END_KINDS = ("start", "price_change", "end")


def _fmt(n: float, digits: int = 1) -> str:
    return f"{n:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=INCIDENT_SCENARIO, help="devchain scenario (default: the incident)")
    ap.add_argument("--borrowers", type=int, default=None, help="scale scenario: number of borrowers")
    ap.add_argument("--max-calls", type=int, default=0, help="check at most this many (user, checkpoint) rows (0: all)")
    ap.add_argument("--out", type=Path, default=RESULTS / "replay_vs_protocol.json")
    args = ap.parse_args(argv)

    from web3 import Web3

    import postmortem.replay.engine as engine
    import postmortem.replay.replayer as replayer
    from postmortem.devchain import manager
    from postmortem.devchain.node import free_port
    from postmortem.devchain.prestate import account_data_at, price_override
    from postmortem.ingest.pipeline import ingest
    from postmortem.incidents import devchain_window, incident_file, load_incident
    from postmortem.replay.inputs import load_inputs

    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    params = {"borrowers": args.borrowers} if args.borrowers else {}
    t0 = time.monotonic()
    node, out = manager.start(free_port(), args.scenario, directory=tmp / "chain", detach=False, **params)
    setup_s = time.monotonic() - t0
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        manifest = out["manifest"]
        if args.scenario == INCIDENT_SCENARIO:
            inc = load_incident(INCIDENT_ID, devchain_dir=tmp / "chain")
            declared = incident_file(INCIDENT_ID)[0].get("true_price")
            models = engine.resolve_true_models(declared, None)
        else:
            inc = devchain_window(manifest, f"devchain-{args.scenario}")
            models = engine.resolve_true_models(None, ["wstETH=uncapped"])
        root = tmp / "warehouse"
        t0 = time.monotonic()
        ingest(node.url, incident=inc, warehouse=root, progress=False, allow_unfinalized=True)
        ingest_s = time.monotonic() - t0
        inputs = load_inputs(root, chain_id=int(manifest["chain_id"]), pools=list(inc.pools.values()),
                             from_block=inc.from_block, to_block=inc.to_block)

        # Time every exact valuation the engine makes.
        exact_times: list[float] = []
        original = replayer.health_factor

        def timed(*a, **kw):
            s = time.perf_counter()
            res = original(*a, **kw)
            exact_times.append(time.perf_counter() - s)
            return res

        replayer.health_factor = timed
        try:
            t0 = time.monotonic()
            result = engine.run_replay(inputs, models, health_band=float("inf"))
            replay_s = time.monotonic() - t0
        finally:
            replayer.health_factor = original

        health = result.tables["health"]
        true_at = {(r["pool"], r["asset"], r["block_number"]): (r["reported_price"], r["true_price"])
                   for r in result.tables["price_path"]}
        source_of = {(r["pool"], r["asset"]): r["price_source"] for r in inputs.reserves}
        rows = [h for h in health if h["checkpoint_kind"] in BLOCK_END_KINDS]
        if args.max_calls:
            rows = rows[: args.max_calls]
        mismatches: list[dict] = []
        call_times: list[float] = []
        checked = 0
        overrides_cache: dict[tuple[str, int], dict | None] = {}
        priced_blocks = {(p, b) for (p, _a, b) in true_at}
        true_skipped = 0
        for h in rows:
            pool, user, blk = h["pool"], h["user"], h["block_number"]
            key = (pool, blk)
            if key not in overrides_cache:
                ov = {}
                for (p, asset, b), (rep, tru) in true_at.items():
                    if p == pool and b == blk and rep != tru:
                        ov.update(price_override(source_of[(pool, asset)], tru))
                overrides_cache[key] = ov or None
            checksum = Web3.to_checksum_address(user)
            for label, ov in (("reported", None), ("true", overrides_cache[key])):
                if label == "true" and key not in priced_blocks:
                    true_skipped += 1  # no price_path row (the start block): true price not recorded
                    continue
                if label == "true" and ov is None:
                    want = got_r  # same state, same prices: the reported answer
                else:
                    s = time.perf_counter()
                    want = account_data_at(w3, blk, Web3.to_checksum_address(pool), checksum, ov)
                    call_times.append(time.perf_counter() - s)
                if label == "reported":
                    got_r = want
                mine = (h[f"hf_{label}"], h[f"collateral_base_{label}"], h[f"debt_base_{label}"])
                theirs = (want.health_factor, want.total_collateral_base, want.total_debt_base)
                checked += 1
                if mine != theirs:
                    mismatches.append({"checkpoint": h["checkpoint"], "kind": h["checkpoint_kind"], "block": blk,
                                       "user": user, "price": label, "replay": [str(x) for x in mine],
                                       "protocol": [str(x) for x in theirs]})
    finally:
        node.stop()

    exact_mean = statistics.fmean(exact_times) if exact_times else float("nan")
    exact_median = statistics.median(exact_times) if exact_times else float("nan")
    call_mean = statistics.fmean(call_times) if call_times else float("nan")
    call_median = statistics.median(call_times) if call_times else float("nan")
    wall_per = replay_s / max(1, len(exact_times))
    kinds: dict[str, int] = {}
    for h in rows:
        kinds[h["checkpoint_kind"]] = kinds.get(h["checkpoint_kind"], 0) + 1
    users = len({(h["pool"], h["user"]) for h in rows})
    checkpoints = len({h["checkpoint"] for h in rows})

    print(f"scenario {args.scenario}{f' ({args.borrowers} borrowers)' if args.borrowers else ''}: window "
          f"{inc.from_block}..{inc.to_block}, {result.summary['checkpoints']} checkpoints "
          f"({result.summary['checkpoint_kinds']}), set-up {setup_s:.0f} s, ingest {ingest_s:.1f} s (untimed)")
    print(f"compared {checked:,} (user, checkpoint, price) valuations: {len(rows):,} health rows at {checkpoints} "
          f"block-end checkpoints {kinds}, {users} borrowers; mismatches: {len(mismatches)}"
          + (f" (true price not compared on {true_skipped} start-block rows: no price_path row)" if true_skipped else ""))
    print()
    print("| method | valuations | mean us / valuation | median us | eth_call time / this |")
    print("|---|---:|---:|---:|---:|")
    print(f"| replay exact (`aave_math.health_factor`) | {len(exact_times):,} | {_fmt(exact_mean * 1e6)} | "
          f"{_fmt(exact_median * 1e6)} | {_fmt(call_mean / exact_mean)}x |")
    print(f"| replay wall (`run_replay` / valuations) | {len(exact_times):,} | {_fmt(wall_per * 1e6)} | - | "
          f"{_fmt(call_mean / wall_per)}x |")
    print(f"| `getUserAccountData` via `eth_call` (anvil, HTTP) | {len(call_times):,} | {_fmt(call_mean * 1e6)} | "
          f"{_fmt(call_median * 1e6)} | 1.0x |")
    for m in mismatches[:20]:
        print("MISMATCH", m)

    report = {
        "scenario": args.scenario, "borrowers": args.borrowers, "from_block": inc.from_block, "to_block": inc.to_block,
        "setup_seconds": round(setup_s, 1), "ingest_seconds": round(ingest_s, 3),
        "replay_summary": result.summary,
        "health_rows_total": len(health), "rows_compared": len(rows), "rows_by_kind": kinds,
        "block_end_checkpoints": checkpoints, "borrowers_compared": users,
        "valuations_compared": checked, "true_not_compared_no_price_row": true_skipped, "mismatches": len(mismatches), "mismatch_list": mismatches[:100],
        "replay_seconds": round(replay_s, 4), "replay_exact_valuations": len(exact_times),
        "replay_exact_mean_us": exact_mean * 1e6, "replay_exact_median_us": exact_median * 1e6,
        "replay_wall_per_valuation_us": wall_per * 1e6,
        "eth_calls": len(call_times), "eth_call_mean_us": call_mean * 1e6, "eth_call_median_us": call_median * 1e6,
        "ratio_eth_call_over_exact": call_mean / exact_mean, "ratio_eth_call_over_replay_wall": call_mean / wall_per,
        "python": platform.python_version(), "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
