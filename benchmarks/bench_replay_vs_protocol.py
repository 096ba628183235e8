"""Benchmark: exact replay against the protocol itself (``Pool.getUserAccountData`` per user).

Starts its own devchain (anvil, Aave v3.6) on a free port with the incident scenario
(``wsteth-capo-2026-03-10``, default) or ``scale --borrowers N``, ingests its window into a
temporary warehouse and runs the replay (``replay.engine.run_replay``) with the health band
opened up (``health_band=inf``), so *every* borrower is valued exactly at every checkpoint
(the ``health`` output table), under the reported and the true price.

Then, for every health row at a checkpoint that is a block end (kinds ``start``,
``price_change``, ``end``; ``liquidation`` checkpoints sit inside a block and are checked by
``tests/test_replay_chain.py`` with ``eth_simulateV1``), it asks the protocol itself,
``Pool.getUserAccountData``, at that block, for every user of the checkpoint at once through a
Multicall3 ``aggregate3`` ``eth_call`` (the project's ``Multicall3Like``, its code put in place by a
state override, so it answers at any past block):

- reported: no price override; the replay's ``hf_reported``, ``collateral_base_reported`` and
  ``debt_base_reported`` must equal the protocol's health factor, collateral and debt;
- true: the price sources of the assets whose true price differs from the reported one are
  replaced, by a state override, with code answering the replay's true price
  (``price_path.true_price`` at that block); ``hf_true`` and the true sums must equal the
  protocol's answer.

Mismatches are listed (expected: zero; exit status 1 otherwise). Timing, per position valued
(one account under one price), all in this run on the same anvil:

- **replay exact**: every exact valuation the replay made: the users valued together by the
  vector path (``Replayer._fast_values``: a user counts once per price set it computed, that is
  twice where the true prices differ from the reported ones and once where they are equal) and those left to
  the scalar reference (``aave_math.health_factor``, one price each); their total time over their
  count. The scalar reference alone is also shown (median per valuation);
- **replay wall**: the whole ``run_replay`` wall time / valuations (events, prices, screening,
  rows included);
- **Multicall3**: the ``aggregate3`` calls above (up to ``--multicall-size`` accounts each), wall
  time / accounts;
- **JSON-RPC batch**: ``getUserAccountData`` ``eth_call`` s in batches of ``--batch-size``
  (1,000) over the same rows, wall time / calls;
- **eth_call**: single requests on a sample (``--single-sample``), wall time / call.

The goal's baseline is the faster of Multicall3 and the JSON-RPC batch (what a user who would
otherwise ask a fork would use).

Prints a table and writes ``benchmarks/results/replay_vs_protocol.json``.

    .venv/bin/python benchmarks/bench_replay_vs_protocol.py                          # incident scenario
    .venv/bin/python benchmarks/bench_replay_vs_protocol.py --scenario scale --borrowers 2000
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


MULTICALL = "0xcA11bde05977b3631167028862bE2a173976CA11"
AGGREGATE3 = "aggregate3((address,bool,bytes)[])"


def _fmt(n: float, digits: int = 1) -> str:
    return "-" if n != n else f"{n:,.{digits}f}"  # NaN: nothing to compare


def _multicall_code(url: str) -> str:
    """The runtime code of the project's ``Multicall3Like`` (deployed once on this chain to read it)."""
    from postmortem.devchain.chain import Artifacts, Chain

    chain = Chain(url, Artifacts.load())
    chain.deployer = chain.w3.eth.accounts[0]
    contract = chain.deploy("Multicall3Like")
    return "0x" + bytes(chain.w3.eth.get_code(contract.address)).hex()


def _ratio(a: float, b: float) -> float:
    """a / b, or NaN when b is zero (a path that valued nobody, e.g. the vector path on a small scenario)."""
    return a / b if b else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=INCIDENT_SCENARIO, help="devchain scenario (default: the incident)")
    ap.add_argument("--borrowers", type=int, default=None, help="scale scenario: number of borrowers")
    ap.add_argument("--multicall-size", type=int, default=1000, help="accounts per aggregate3 call")
    ap.add_argument("--batch-size", type=int, default=1000, help="eth_calls per JSON-RPC batch")
    ap.add_argument("--batch-rows", type=int, default=5000, help="health rows asked again in JSON-RPC batches")
    ap.add_argument("--single-sample", type=int, default=200, help="health rows asked again one eth_call each")
    ap.add_argument("--out", type=Path, default=RESULTS / "replay_vs_protocol.json")
    args = ap.parse_args(argv)

    import requests
    from eth_abi import decode, encode
    from eth_utils import keccak
    from web3 import Web3

    import postmortem.replay.engine as engine
    import postmortem.replay.replayer as replayer
    from postmortem.devchain import manager
    from postmortem.devchain.node import free_port
    from postmortem.devchain.prestate import GET_USER_ACCOUNT_DATA, account_data_at, price_override
    from postmortem.ingest.pipeline import ingest
    from postmortem.incidents import devchain_window, incident_file, load_incident
    from postmortem.jsonrpc import call, call_batch
    from postmortem.replay.inputs import load_inputs

    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    params = {"borrowers": args.borrowers} if args.borrowers else {}
    t0 = time.monotonic()
    node, out = manager.start(free_port(), args.scenario, directory=tmp / "chain", detach=False, **params)
    setup_s = time.monotonic() - t0
    try:
        url = node.url
        session = requests.Session()
        session.trust_env = False
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
        ingest(url, incident=inc, warehouse=root, progress=False, allow_unfinalized=True)
        ingest_s = time.monotonic() - t0
        inputs = load_inputs(root, chain_id=int(manifest["chain_id"]), pools=list(inc.pools.values()),
                             from_block=inc.from_block, to_block=inc.to_block)

        # Time every exact valuation the engine makes: the vector path and the scalar reference.
        scalar_times: list[float] = []
        fast = {"seconds": 0.0, "users": 0, "calls": 0, "valuations": 0}
        original_hf = replayer.health_factor
        original_fast = replayer.Replayer._fast_values

        def timed_hf(*a, **kw):
            s = time.perf_counter()
            res = original_hf(*a, **kw)
            scalar_times.append(time.perf_counter() - s)
            return res

        def timed_fast(self, *a, **kw):
            s = time.perf_counter()
            res = original_fast(self, *a, **kw)
            fast["seconds"] += time.perf_counter() - s
            fast["users"] += len(res)
            fast["calls"] += 1
            # one account under one price is the unit: the vector path values its users once per price set
            # it computes (once when the true prices equal the reported ones at that checkpoint, else twice)
            pool, reported, true = a[0], a[3], a[4]
            assets = self.mirror.pools[pool].assets
            fast["valuations"] += len(res) * (1 if [reported.get(x) for x in assets] == [true.get(x) for x in assets] else 2)
            return res

        replayer.health_factor = timed_hf
        replayer.Replayer._fast_values = timed_fast
        try:
            t0 = time.monotonic()
            result = engine.run_replay(inputs, models, health_band=float("inf"))
            replay_s = time.monotonic() - t0
        finally:
            replayer.health_factor = original_hf
            replayer.Replayer._fast_values = original_fast

        health = result.tables["health"]
        true_at = {(r["pool"], r["asset"], r["block_number"]): (r["reported_price"], r["true_price"])
                   for r in result.tables["price_path"]}
        source_of = {(r["pool"], r["asset"]): r["price_source"] for r in inputs.reserves}
        priced_blocks = {(p, b) for (p, _a, b) in true_at}
        rows = [h for h in health if h["checkpoint_kind"] in BLOCK_END_KINDS]

        def overrides(pool: str, blk: int) -> dict:
            ov = {}
            for (p, asset, b), (rep, tru) in true_at.items():
                if p == pool and b == blk and rep != tru:
                    ov.update(price_override(source_of[(pool, asset)], tru))
            return ov

        def account_call(user: str) -> bytes:
            return GET_USER_ACCOUNT_DATA + encode(["address"], [Web3.to_checksum_address(user)])

        # The protocol, through Multicall3: every (checkpoint, price) group in aggregate3 calls.
        code = _multicall_code(url)
        selector = keccak(text=AGGREGATE3)[:4]
        groups: dict[tuple[int, str, int, str], list[dict]] = {}
        for h in rows:
            groups.setdefault((h["checkpoint"], h["pool"], h["block_number"], "reported"), []).append(h)
            if (h["pool"], h["block_number"]) in priced_blocks:
                groups.setdefault((h["checkpoint"], h["pool"], h["block_number"], "true"), []).append(h)
        mismatches: list[dict] = []
        multicall_s, multicall_accounts, multicall_calls = 0.0, 0, 0
        checked = 0
        for (cp, pool, blk, label), members in groups.items():
            ov = {MULTICALL: {"code": code}}
            if label == "true":
                ov.update(overrides(pool, blk))
            target = Web3.to_checksum_address(pool)
            for i in range(0, len(members), args.multicall_size):
                part = members[i: i + args.multicall_size]
                data = selector + encode(["(address,bool,bytes)[]"], [[(target, False, account_call(h["user"]))
                                                                       for h in part]])
                s = time.perf_counter()
                raw = call(url, "eth_call", [{"to": MULTICALL, "data": "0x" + data.hex(), "gas": hex(2**40)}, hex(blk), ov],
                           timeout=600, session=session)
                multicall_s += time.perf_counter() - s
                multicall_accounts += len(part)
                multicall_calls += 1
                (answers,) = decode(["(bool,bytes)[]"], bytes.fromhex(raw[2:]))
                for h, (ok, ret) in zip(part, answers):
                    theirs = decode(["uint256"] * 6, ret)
                    mine = (h[f"hf_{label}"], h[f"collateral_base_{label}"], h[f"debt_base_{label}"])
                    checked += 1
                    if not ok or mine != (theirs[5], theirs[0], theirs[1]):
                        mismatches.append({"checkpoint": cp, "block": blk, "user": h["user"], "price": label,
                                           "replay": [str(x) for x in mine], "protocol": [str(x) for x in theirs]})

        # The protocol, one eth_call per account, in large JSON-RPC batches (reported prices).
        batch_rows = rows[: args.batch_rows]
        batch_s = 0.0
        for i in range(0, len(batch_rows), args.batch_size):
            part = batch_rows[i: i + args.batch_size]
            calls = [("eth_call", [{"to": Web3.to_checksum_address(h["pool"]), "data": "0x" + account_call(h["user"]).hex()},
                                   hex(h["block_number"])]) for h in part]
            s = time.perf_counter()
            answers = call_batch(url, calls, timeout=600, session=session)
            batch_s += time.perf_counter() - s
            for h, a in zip(part, answers):
                theirs = decode(["uint256"] * 6, bytes.fromhex(a["result"][2:]))
                if (h["hf_reported"], h["collateral_base_reported"], h["debt_base_reported"]) != (theirs[5], theirs[0], theirs[1]):
                    mismatches.append({"block": h["block_number"], "user": h["user"], "price": "reported (batch)"})
        # ... and single eth_calls on a sample.
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 120}))
        single_times = []
        for h in rows[: args.single_sample]:
            s = time.perf_counter()
            account_data_at(w3, h["block_number"], Web3.to_checksum_address(h["pool"]), Web3.to_checksum_address(h["user"]))
            single_times.append(time.perf_counter() - s)
    finally:
        node.stop()

    valuations = fast["valuations"] + len(scalar_times)
    exact_s = fast["seconds"] + sum(scalar_times)
    exact_per = exact_s / max(1, valuations)
    fast_per = fast["seconds"] / max(1, fast["valuations"])
    scalar_median = statistics.median(scalar_times) if scalar_times else float("nan")
    wall_per = replay_s / max(1, valuations)
    multicall_per = multicall_s / max(1, multicall_accounts)
    batch_per = batch_s / max(1, len(batch_rows))
    single_per = statistics.fmean(single_times) if single_times else float("nan")
    baseline_name, baseline_per = min((("Multicall3 aggregate3", multicall_per), ("JSON-RPC batch", batch_per)),
                                      key=lambda x: x[1])
    kinds: dict[str, int] = {}
    for h in rows:
        kinds[h["checkpoint_kind"]] = kinds.get(h["checkpoint_kind"], 0) + 1
    users = len({(h["pool"], h["user"]) for h in rows})
    checkpoints = len({h["checkpoint"] for h in rows})

    print(f"scenario {args.scenario}{f' ({args.borrowers} borrowers)' if args.borrowers else ''}: window "
          f"{inc.from_block}..{inc.to_block}, {result.summary['checkpoints']} checkpoints "
          f"({result.summary['checkpoint_kinds']}), set-up {setup_s:.0f} s, ingest {ingest_s:.1f} s (untimed)")
    print(f"compared {checked:,} (user, checkpoint, price) valuations with the protocol through Multicall3: "
          f"{len(rows):,} health rows at {checkpoints} block-end checkpoints {kinds}, {users} borrowers; "
          f"mismatches: {len(mismatches)}")
    print()
    print(f"| method | positions | us / position | {baseline_name} / this |")
    print("|---|---:|---:|---:|")
    print(f"| replay exact, every exact valuation (vector path + scalar reference) | {valuations:,} | "
          f"{_fmt(exact_per * 1e6, 2)} | {_fmt(_ratio(baseline_per, exact_per))}x |")
    print(f"| replay exact, vector path only (`Replayer._fast_values`, {fast['calls']:,} batches, {fast['users']:,} "
          f"users) | {fast['valuations']:,} | "
          f"{_fmt(fast_per * 1e6, 2)} | {_fmt(_ratio(baseline_per, fast_per))}x |")
    print(f"| replay exact, scalar reference (`aave_math.health_factor`, median) | {len(scalar_times):,} | "
          f"{_fmt(scalar_median * 1e6)} | {_fmt(_ratio(baseline_per, scalar_median))}x |")
    print(f"| replay wall (`run_replay` / valuations) | {valuations:,} | {_fmt(wall_per * 1e6)} | "
          f"{_fmt(_ratio(baseline_per, wall_per))}x |")
    print(f"| `getUserAccountData` via Multicall3 `aggregate3` ({multicall_calls:,} calls) | {multicall_accounts:,} | "
          f"{_fmt(multicall_per * 1e6)} | {_fmt(_ratio(baseline_per, multicall_per))}x |")
    print(f"| `getUserAccountData` via JSON-RPC batches of {args.batch_size:,} `eth_call` | {len(batch_rows):,} | "
          f"{_fmt(batch_per * 1e6)} | {_fmt(_ratio(baseline_per, batch_per))}x |")
    print(f"| `getUserAccountData` via single `eth_call` | {len(single_times):,} | {_fmt(single_per * 1e6)} | "
          f"{_fmt(_ratio(baseline_per, single_per))}x |")
    for m in mismatches[:20]:
        print("MISMATCH", m)

    report = {
        "scenario": args.scenario, "borrowers": args.borrowers, "from_block": inc.from_block, "to_block": inc.to_block,
        "setup_seconds": round(setup_s, 1), "ingest_seconds": round(ingest_s, 3),
        "replay_summary": result.summary,
        "health_rows_total": len(health), "rows_compared": len(rows), "rows_by_kind": kinds,
        "block_end_checkpoints": checkpoints, "borrowers_compared": users,
        "valuations_compared": checked, "mismatches": len(mismatches), "mismatch_list": mismatches[:100],
        "replay_seconds": round(replay_s, 4), "replay_exact_valuations": valuations,
        "replay_exact_us_per_position": exact_per * 1e6, "vector_path_positions": fast["users"],
        "vector_path_batches": fast["calls"], "vector_path_valuations": fast["valuations"],
        "vector_path_us_per_position": fast_per * 1e6,
        "scalar_valuations": len(scalar_times), "scalar_median_us": scalar_median * 1e6,
        "replay_wall_per_valuation_us": wall_per * 1e6,
        "multicall_accounts": multicall_accounts, "multicall_calls": multicall_calls,
        "multicall_us_per_position": multicall_per * 1e6,
        "batch_calls": len(batch_rows), "batch_size": args.batch_size, "batch_us_per_position": batch_per * 1e6,
        "single_calls": len(single_times), "single_eth_call_us": single_per * 1e6,
        "baseline_name": baseline_name, "baseline_us_per_position": baseline_per * 1e6,
        "ratio_baseline_over_exact": _ratio(baseline_per, exact_per),
        "ratio_baseline_over_replay_wall": _ratio(baseline_per, wall_per),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
