"""Benchmark: what a real run costs on the mainnet twin behind a hosted-provider-like proxy
(issue 12 section 3).

For each history length N (blocks of unrelated token churn before the twin's deployment,
``history_blocks=N``), it starts the twin ``wsteth-capo-2026-03-10-mainnet`` on a free port,
puts the fault proxy in front of it set up like a hosted provider (``hosted_provider_plan``:
eth_getLogs answered up to a 2,000-block range or on any range holding at most 10,000 logs,
25 requests/s metered per call, random HTTP 429s from a fixed seed), and for each user scope
(``incident``, the default, and ``all``):

1. ``postmortem plan --incident aave-v3-wsteth-capo-2026-03-10 --rpc-url PROXY --users SCOPE
   --requests-per-second 25 --format json``: the estimate before any heavy work;
2. ``postmortem run`` of the same, unchanged catalog entry, into its own warehouse;
3. the run's cost as the warehouse records it (``postmortem sql "select * from runs"``, the
   ingest record's ``cost``) beside what the proxy itself counted.

It prints requests, reads, bytes and wall time per scope and N, the plan's estimate beside what
the run used, and flags the default scope's request count if it grows with N. Output:
``benchmarks/results/mainnet_twin.json``.

    .venv/bin/python benchmarks/bench_mainnet_twin.py                      # N = 0 and 10,000
    .venv/bin/python benchmarks/bench_mainnet_twin.py --full               # N = 0, 100,000, 1,000,000
    .venv/bin/python benchmarks/bench_mainnet_twin.py --history 0,100000   # any list

Mining N blocks is not cheap on anvil 1.7: each new block costs time that grows with the chain
(about 30 ms a block past 10,000 blocks on the 2-core development machine), so the twin's set-up
time is printed apart; it is not part of any run's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "mainnet_twin.json"
POSTMORTEM = REPO / ".venv" / "bin" / "postmortem"
INCIDENT = "aave-v3-wsteth-capo-2026-03-10"
SCENARIO = "wsteth-capo-2026-03-10-mainnet"
SCOPES = ("incident", "all")
RATE = 25.0
SEED = 12
QUICK_HISTORY = (0, 10_000)
FULL_HISTORY = (0, 100_000, 1_000_000)

from postmortem.devchain import manager  # noqa: E402
from postmortem.devchain.faultproxy import FaultProxy, hosted_provider_plan  # noqa: E402
from postmortem.devchain.node import free_port  # noqa: E402


def _cli(args: list[str], *, timeout: float) -> tuple[int, str, str, float]:
    exe = str(POSTMORTEM) if POSTMORTEM.exists() else "postmortem"
    t = time.monotonic()
    p = subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t


def _json_out(text: str):
    """The JSON document in a command's standard output (progress lines may precede it)."""
    start = min([i for i in (text.find("{"), text.find("[")) if i >= 0], default=-1)
    if start < 0:
        raise ValueError("no JSON in the output")
    return json.loads(text[start:])


def ingest_cost(warehouse: Path) -> dict | None:
    """The ``cost`` of the last ingest record in the warehouse's ``runs``."""
    rc, out, err, _ = _cli(["sql", "--warehouse", str(warehouse), "--format", "json", "select * from runs"], timeout=120)
    if rc != 0:
        print(f"  (runs not readable: {err.strip() or out.strip()})")
        return None
    cost = None
    for r in _json_out(out):
        summary = r.get("summary")
        if isinstance(summary, str):
            summary = json.loads(summary)
        if r.get("kind") == "ingest" and isinstance(summary, dict) and summary.get("cost"):
            cost = summary["cost"]
    return cost


def one_scope(proxy_url: str, scope: str, work: Path, timeout: float) -> dict:
    out: dict = {"scope": scope}
    rc, text, err, secs = _cli(["plan", "--incident", INCIDENT, "--rpc-url", proxy_url, "--users", scope,
                                "--requests-per-second", str(RATE), "--format", "json"], timeout=timeout)
    out["plan_seconds"] = round(secs, 2)
    if rc == 0:
        try:
            out["plan"] = _json_out(text)
        except ValueError:
            out["plan_error"] = text.strip()[-300:]
    else:
        out["plan_error"] = (err.strip() or text.strip())[-300:]
    wh, rep = work / f"wh-{scope}", work / f"report-{scope}"
    rc, text, err, secs = _cli(["run", "--incident", INCIDENT, "--rpc-url", proxy_url, "--users", scope,
                                "--requests-per-second", str(RATE), "--warehouse", str(wh), "--out", str(rep)],
                               timeout=timeout)
    out["run_exit"] = rc
    out["run_wall_seconds"] = round(secs, 2)
    if rc != 0:
        out["run_error"] = (err.strip() or text.strip())[-500:]
    out["cost"] = ingest_cost(wh) if wh.exists() else None
    if wh.exists():  # the window's liquidations as the run read them (49 on mainnet)
        rc, text, _err, _ = _cli(["sql", "--warehouse", str(wh), "--format", "json",
                                  "select count(*) as n from liquidations"], timeout=120)
        out["liquidations"] = _json_out(text)[0]["n"] if rc == 0 else None
    return out


def one_history(n: int, timeout: float, keep: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"pm-twin-bench-{n}-"))
    port = free_port()
    print(f"\n--- N = {n:,}: starting the twin on port {port} (history_blocks={n}) ...", flush=True)
    t = time.monotonic()
    node, started = manager.start(port, SCENARIO, directory=work / "devchain", detach=False, history_blocks=n)
    setup = time.monotonic() - t
    summary = started["manifest"]["summary"]
    print(f"    twin ready in {setup:.0f} s: blocks {summary['genesis_block']:,}..{summary['end_block']:,}, "
          f"{summary['liquidations']} liquidations, {summary.get('history_transfers', 0)} churn transfers", flush=True)
    result = {"history_blocks": n, "twin_setup_seconds": round(setup, 1), "twin_summary": summary, "scopes": {}}
    try:
        with FaultProxy(node.url, hosted_provider_plan(requests_per_second=RATE), seed=SEED,
                        upstream_timeout=600) as proxy:
            for scope in SCOPES:
                before = dict(proxy.counts())
                r = one_scope(proxy.url, scope, work, timeout)
                after = proxy.counts()
                r["proxy_counts"] = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
                result["scopes"][scope] = r
                print_scope(n, r)
    finally:
        node.stop()
    if not keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    else:
        result["work_dir"] = str(work)
    return result


def _plan_get(plan: dict | None, *keys):
    """The first of ``keys`` the plan's ``expected`` figures have (``postmortem plan --format json``)."""
    if not isinstance(plan, dict):
        return None
    for where in (plan.get("expected") or {}, plan):
        if isinstance(where, dict):
            for k in keys:
                if where.get(k) is not None:
                    return where[k]
    return None


def plan_figures(plan: dict | None) -> dict:
    return {"requests": _plan_get(plan, "requests", "expected_requests"),
            "calls": _plan_get(plan, "calls", "expected_calls"),
            "reads": _plan_get(plan, "reads", "expected_reads"),
            "bytes": _plan_get(plan, "bytes", "bytes_received", "expected_bytes"),
            "seconds": _plan_get(plan, "seconds", "expected_seconds", "time_seconds")}


def print_scope(n: int, r: dict) -> None:
    c = r.get("cost") or {}
    p = plan_figures(r.get("plan"))
    state = "ok" if r["run_exit"] == 0 else f"exit {r['run_exit']}"
    print(f"    scope {r['scope']:<8} run {state}: requests {c.get('requests')}, calls {c.get('calls')}, "
          f"getLogs {c.get('getlogs_calls')}, eth_call {c.get('eth_calls')}, reads {c.get('reads')}, "
          f"bytes {c.get('bytes_received')}, ingest {c.get('seconds')} s, whole run {r['run_wall_seconds']} s; "
          f"429s {r['proxy_counts'].get('http_429', 0)}", flush=True)
    print(f"    {'':<14} plan: requests {p['requests']}, calls {p['calls']}, reads {p['reads']}, bytes {p['bytes']}, "
          f"{p['seconds']} s" + (f"  (plan failed: {r['plan_error']})" if "plan_error" in r else ""), flush=True)
    if r["run_exit"] != 0:
        print(f"    run failed: {r.get('run_error')}", flush=True)


def print_table(results: list[dict]) -> None:
    print()
    print(f"{'N':>10} {'scope':<9} {'requests':>9} {'calls':>8} {'reads':>8} {'MB recv':>8} {'ingest s':>9} "
          f"{'run s':>7} {'plan req':>9} {'plan reads':>10} {'plan s':>7}")
    for res in results:
        for scope, r in res["scopes"].items():
            c, p = r.get("cost") or {}, plan_figures(r.get("plan"))
            mb = c.get("bytes_received")
            print(f"{res['history_blocks']:>10,} {scope:<9} {_f(c.get('requests')):>9} {_f(c.get('calls')):>8} "
                  f"{_f(c.get('reads')):>8} {_f(None if mb is None else mb / 1e6, 2):>8} {_f(c.get('seconds'), 1):>9} "
                  f"{_f(r['run_wall_seconds'], 1):>7} {_f(p['requests']):>9} {_f(p['reads']):>10} {_f(p['seconds'], 1):>7}")


def _f(v, nd=0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{nd}f}" if isinstance(v, float) or nd else f"{v:,}"


def growth_check(results: list[dict]) -> list[dict]:
    """The default scope's request count at each N against N = 0 (the smallest N run)."""
    base = min(results, key=lambda r: r["history_blocks"])
    b = ((base["scopes"].get("incident") or {}).get("cost") or {}).get("requests")
    out = []
    for res in sorted(results, key=lambda r: r["history_blocks"]):
        v = ((res["scopes"].get("incident") or {}).get("cost") or {}).get("requests")
        grows = None if (v is None or b is None) else v > b
        out.append({"history_blocks": res["history_blocks"], "requests": v, "baseline_history_blocks": base["history_blocks"],
                    "baseline_requests": b, "grows": grows})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help=f"N = {', '.join(f'{n:,}' for n in FULL_HISTORY)}")
    ap.add_argument("--history", help="comma-separated history lengths N (overrides --full)")
    ap.add_argument("--timeout", type=float, default=7200, help="seconds allowed to each plan or run")
    ap.add_argument("--keep", action="store_true", help="keep each N's warehouses and reports (the path is printed)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = ap.parse_args(argv)
    history = ([int(x.replace("_", "")) for x in args.history.split(",")] if args.history
               else list(FULL_HISTORY if args.full else QUICK_HISTORY))
    print(f"mainnet twin behind a hosted-provider-like proxy ({RATE:g} requests/s per call, 2,000-block / "
          f"10,000-log eth_getLogs rule, random 429s, seed {SEED}); history N = {', '.join(f'{n:,}' for n in history)}")
    results = []
    t0 = time.monotonic()
    for n in history:
        results.append(one_history(n, args.timeout, args.keep))
    print_table(results)
    growth = growth_check(results)
    flagged = [g for g in growth if g["grows"]]
    print()
    for g in growth:
        print(f"default scope requests at N = {g['history_blocks']:,}: {g['requests']} "
              f"(N = {g['baseline_history_blocks']:,}: {g['baseline_requests']})"
              + ("  <-- GROWS WITH N" if g["grows"] else ""))
    if flagged:
        print("FLAG: the default scope's request count grows with the chain's history", file=sys.stderr)
    failed = [f"N={res['history_blocks']} {s}" for res in results for s, r in res["scopes"].items() if r["run_exit"] != 0]
    doc = {
        "benchmark": "mainnet_twin",
        "incident": INCIDENT,
        "scenario": SCENARIO,
        "provider": {"plan": hosted_provider_plan(requests_per_second=RATE), "seed": SEED},
        "requests_per_second": RATE,
        "results": results,
        "default_scope_growth": growth,
        "default_scope_grows": bool(flagged),
        "failed": failed,
        "seconds": round(time.monotonic() - t0, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"results: {args.out}")
    return 1 if (failed or flagged) else 0


if __name__ == "__main__":
    sys.exit(main())
