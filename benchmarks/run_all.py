"""Run every benchmark, side by side with its baseline, and write one machine-readable summary.

    make bench               quick sizes (a few minutes on 2 cores)
    make bench BENCH=full    the goal sizes (1M positions, >= 100k logs; about an hour)

Each benchmark script runs in its own process and writes its own JSON under
``benchmarks/results/``; this script reads those files and turns them into rows
``{"name", "value", "unit", "baseline_name", "baseline_value", "ratio", "goal", "met"}``
in ``benchmarks/results/summary.json``, with the machine, the commit and the date. The
previous summary is kept beside it as ``summary.previous.json`` and what changed is printed.

Goals are the ones the issues set (ratios measured in the same run, never wall-clock
assertions); ``met`` is null where the run's size is not the goal's size (quick mode).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SUMMARY = RESULTS / "summary.json"
PREVIOUS = RESULTS / "summary.previous.json"

# name -> (script, quick args, full args). Each script accepts --out.
BENCHES = {
    "decode": ("bench_decode.py",
               ["--logs", "200000", "--web3-sample", "5000", "--rpc-sample", "50000", "--repeat", "3",
                "--rounds", "3"],
               []),
    "replay_vs_protocol": ("bench_replay_vs_protocol.py", ["--scenario", "small"], ["--scenario", "scale", "--borrowers", "2000"]),
    "scale": ("bench_scale.py", ["--sizes", "10000", "--checkpoints", "200", "--full-max", "10000"],
              ["--sizes", "10000,100000,1000000", "--checkpoints", "1000", "--full-max", "1000000"]),
    "ingest": ("bench_ingest.py", ["--borrowers", "300"], []),
    "mainnet_twin": ("bench_mainnet_twin.py", [], ["--full"]),
    "whatif": ("bench_whatif.py", ["--points", "200"], ["--points", "1000"]),
}


def row(name, value, unit, baseline_name=None, baseline_value=None, ratio=None, goal=None, met=None) -> dict:
    return {"name": name, "value": value, "unit": unit, "baseline_name": baseline_name,
            "baseline_value": baseline_value, "ratio": ratio, "goal": goal, "met": met}


def _r(x, nd=4):
    return None if x is None else round(float(x), nd)


def rows_decode(d: dict) -> list[dict]:
    ours, web3 = d["decode_logs"], d["web3_get_event_data"]
    out = [row("decode: decode_logs throughput (CPU)", _r(ours["logs_per_second_cpu"], 0), "logs/s",
               "web3.py get_event_data", _r(web3["logs_per_second_cpu"], 0),
               _r(ours["logs_per_second_cpu"] / web3["logs_per_second_cpu"], 1))]
    if "eth_abi_decode" in d:  # when the decode benchmark also measures eth_abi.decode
        e = d["eth_abi_decode"]
        out.append(row("decode: decode_logs vs eth_abi.decode (CPU)", _r(ours["logs_per_second_cpu"], 0), "logs/s",
                       "eth_abi.decode", _r(e["logs_per_second_cpu"], 0),
                       _r(ours["logs_per_second_cpu"] / e["logs_per_second_cpu"], 1)))
    if "raw_logs_from_rpc" in d:  # the JSON-RPC dicts -> Arrow step in front of the decoder
        r = d["raw_logs_from_rpc"]
        out.append(row("decode: raw_logs_from_rpc throughput (CPU)", _r(r["logs_per_second_cpu"], 0), "logs/s"))
    return out


def rows_replay_vs_protocol(d: dict) -> list[dict]:
    if "baseline_us_per_position" not in d:  # a result file from before the bulk baselines
        ratio = d.get("ratio_eth_call_over_exact")
        return [
            row("exact valuation per position (median)", _r(d["replay_exact_median_us"], 2), "us",
                "getUserAccountData per eth_call (median)", _r(d["eth_call_median_us"], 2), _r(ratio, 1),
                ">= 100x the EVM", None if ratio is None else ratio >= 100),
            row("replay vs protocol mismatches", d["mismatches"], "valuations", "valuations compared",
                d["valuations_compared"], None, "0", d["mismatches"] == 0),
        ]
    ratio = d["ratio_baseline_over_exact"]
    # the goal is about valuing a population: judged on the scale scenario (BENCH=full), not on `small`
    at_goal = d.get("scenario") == "scale"
    return [
        row("exact valuation per position (every exact valuation of the replay)", _r(d["replay_exact_us_per_position"], 3),
            "us", f"getUserAccountData via {d['baseline_name']} (per position)", _r(d["baseline_us_per_position"], 2),
            _r(ratio, 1), ">= 100x the EVM (scale scenario)", (ratio >= 100) if at_goal else None),
        row("exact valuation per position (vector path)", _r(d["vector_path_us_per_position"], 3), "us",
            f"getUserAccountData via {d['baseline_name']} (per position)", _r(d["baseline_us_per_position"], 2),
            _r(d["baseline_us_per_position"] / d["vector_path_us_per_position"], 1)
            if d.get("vector_path_us_per_position") else None),
        row("getUserAccountData via Multicall3 aggregate3 (per position)", _r(d["multicall_us_per_position"], 2), "us",
            "JSON-RPC batch of 1,000 eth_call (per call)", _r(d["batch_us_per_position"], 2),
            _r(d["batch_us_per_position"] / d["multicall_us_per_position"], 2)),
        row("replay vs protocol mismatches", d["mismatches"], "valuations", "valuations compared",
            d["valuations_compared"], None, "0", d["mismatches"] == 0),
    ]


def rows_scale(d: dict, full: bool) -> list[dict]:
    out = []
    scalar = {r["positions"]: r["replay_seconds"] for r in d["runs"] if r.get("mode") == "scalar" and "error" not in r}
    for r in d["runs"]:
        if "error" in r:
            continue
        n, mode = r["positions"], r["mode"]
        at_goal = n >= 1_000_000 and d["checkpoints"] >= 1000
        # the goal's figure: every row computed exactly (writing the health table is its own row below)
        secs = r["replay_seconds"]
        goal = "< 60 s and < 8 GiB at 1M x 1,000" if mode == "full" else None
        met = (secs < 60 and r["peak_rss_bytes"] < 8 * 2**30) if (mode == "full" and at_goal) else None
        base = scalar.get(n) if mode == "full" else None
        out.append(row(f"replay {mode}: {n:,} positions x {r['checkpoints']:,} checkpoints", _r(secs, 2), "s",
                       "the same replay, scalar reference only" if base else None, _r(base, 2) if base else None,
                       _r(base / secs, 1) if base else None, goal, met))
        if r.get("health_write_seconds") is not None:
            out.append(row(f"replay {mode}: then the health table written (Parquet), {n:,} positions",
                           _r(r["health_write_seconds"], 2), "s"))
        out.append(row(f"replay {mode}: peak RSS at {n:,} positions", _r(r["peak_rss_bytes"] / 2**30, 3), "GiB"))
        if r.get("vector_us_per_user") and r.get("exact_us_per_valuation"):
            out.append(row(f"replay {mode}: vector path per user, {n:,} positions", _r(r["vector_us_per_user"], 3), "us",
                           "scalar reference per valuation", _r(r["exact_us_per_valuation"], 2),
                           _r(r["exact_us_per_valuation"] / r["vector_us_per_user"], 1)))
        if r.get("book_load_seconds") is not None:
            fmt = r.get("start_format", "rows")
            out.append(row(f"replay {mode}: start positions loaded ({fmt}), {n:,} positions", _r(r["book_load_seconds"], 2),
                           "s", None, None, None, "< 5 s at 1M",
                           (r["book_load_seconds"] < 5) if n >= 1_000_000 else None))
    return out


def rows_ingest(d: dict) -> list[dict]:
    by = {r["tool"]: r for r in d["results"]}
    cryo = by.get("cryo")
    logs = d["range"]["logs"]
    at_goal = logs >= 100_000
    out = []
    for tool, label, goal_x in (("logs_only", "ingest log path (fetch+parse+decode)", 1.0),
                                ("ingest", "full ingest (warehouse)", 1.5)):
        r = by[tool]
        ratio = r["seconds"] / cryo["seconds"] if cryo else None
        out.append(row(f"{label}: {logs:,} logs", r["seconds"], "s", "cryo logs -> Parquet" if cryo else None,
                       cryo["seconds"] if cryo else None, _r(ratio, 3), f"<= {goal_x}x cryo at >= 100k logs",
                       (ratio <= goal_x) if (ratio is not None and at_goal) else None))
    split = d.get("logs_only_split") or {}
    for key, what in (("fetch_seconds", "eth_getLogs (node + read + parse)"), ("to_arrow_seconds", "raw_logs_from_rpc"),
                      ("decode_seconds", "decode_logs")):
        if split.get(key) is not None:
            out.append(row(f"ingest log path, {what}: {logs:,} logs", split[key], "s"))
    return out


def rows_mainnet_twin(d: dict) -> list[dict]:
    """Requests of the default scope vs --users all, plan vs run, and the default scope's
    requests at each history length N vs the smallest N (goal: does not grow)."""
    out = []

    def cost(res, scope):
        return ((res["scopes"].get(scope) or {}).get("cost")) or {}

    runs = sorted(d["results"], key=lambda r: r["history_blocks"])
    for res in runs:
        n = res["history_blocks"]
        inc, every = cost(res, "incident"), cost(res, "all")
        if inc.get("requests") is not None:
            b = every.get("requests")
            out.append(row(f"mainnet twin N={n:,}: requests, default scope", inc["requests"], "requests",
                           "--users all" if b is not None else None, b,
                           _r(inc["requests"] / b, 4) if b else None))
            for key, unit in (("reads", "reads"), ("bytes_received", "bytes"), ("seconds", "s")):
                if inc.get(key) is not None:
                    out.append(row(f"mainnet twin N={n:,}: {key}, default scope", inc[key], unit,
                                   "--users all" if every.get(key) is not None else None, every.get(key),
                                   _r(inc[key] / every[key], 4) if every.get(key) else None))
        for scope, r in res["scopes"].items():
            plan = r.get("plan") or {}
            est = (plan.get("expected") or {}).get("requests") if isinstance(plan, dict) else None
            used = cost(res, scope).get("requests")
            if est is not None and used is not None:
                out.append(row(f"mainnet twin N={n:,}: plan's request estimate, {scope} scope", est, "requests",
                               "requests the run used", used, _r(est / used, 3) if used else None))
    base = runs[0] if runs else None
    b = cost(base, "incident").get("requests") if base else None
    for res in runs[1:]:
        v = cost(res, "incident").get("requests")
        if v is None or b is None:
            continue
        out.append(row(f"mainnet twin: default scope requests at N={res['history_blocks']:,}", v, "requests",
                       f"N={base['history_blocks']:,}", b, _r(v / b, 4) if b else None, "does not grow", v <= b))
    return out


def rows_whatif(d: dict) -> list[dict]:
    n, best = d["points"], d["best_seconds"]
    total = d["load_seconds"] + best
    return [row(f"what-if sweep: {n:,} points over the devchain incident (load + sweep)", _r(total, 2), "s",
                "one run_replay per point", _r(d["baseline_seconds"], 1), _r(d["baseline_seconds"] / total, 1),
                "< 30 s at 1,000 points on 2 cores", (total < 30) if n >= 1000 else None)]


EXTRACT = {"decode": lambda d, full: rows_decode(d), "replay_vs_protocol": lambda d, full: rows_replay_vs_protocol(d),
           "scale": rows_scale, "ingest": lambda d, full: rows_ingest(d),
           "mainnet_twin": lambda d, full: rows_mainnet_twin(d), "whatif": lambda d, full: rows_whatif(d)}


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def print_table(rows: list[dict]) -> None:
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    cols = ("name", "value", "unit", "baseline_name", "baseline_value", "ratio", "goal", "met")
    table = [[fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for t in table:
        print("  ".join(x.ljust(w) for x, w in zip(t, widths)))


def print_changes(prev: dict, new: dict, partial: bool = False) -> None:
    old = {r["name"]: r for r in prev.get("rows", [])}
    print(f"\nchanges since the previous summary ({prev.get('commit', '?')[:12]}, {prev.get('date', '?')}):")
    any_change = False
    for r in new["rows"]:
        o = old.get(r["name"])
        if o is None:
            print(f"  new      {r['name']}: {r['value']} {r['unit']}")
            any_change = True
        elif o["value"] != r["value"] and isinstance(o["value"], (int, float)) and isinstance(r["value"], (int, float)):
            pct = f" ({(r['value'] - o['value']) / o['value'] * 100:+.1f}%)" if o["value"] else ""
            print(f"  changed  {r['name']}: {o['value']} -> {r['value']} {r['unit']}{pct}")
            any_change = True
    for name in ([] if partial else sorted(old.keys() - {r["name"] for r in new["rows"]})):
        print(f"  gone     {name}")
        any_change = True
    if not any_change:
        print("  none")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", default=os.environ.get("BENCH", "") == "full",
                    help="the goal sizes (default: quick sizes; also BENCH=full)")
    ap.add_argument("--only", action="append", choices=sorted(BENCHES), help="run only these benchmarks (repeatable)")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    mode = "full" if args.full else "quick"
    rows: list[dict] = []
    failed: list[str] = []
    for name, (script, quick, full) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        out = RESULTS / f"{name}.json"
        cmd = [sys.executable, str(REPO / "benchmarks" / script), *(full if args.full else quick), "--out", str(out)]
        print(f"\n=== {name} ({mode}): {' '.join(cmd[1:])}", flush=True)
        if out.exists():
            out.unlink()  # a failed run must not report the previous run's figures
        t0 = time.monotonic()
        rc = subprocess.run(cmd, cwd=REPO).returncode
        print(f"=== {name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        if not out.exists():
            failed.append(f"{name} (exit {rc}, no results)")
            continue
        if rc != 0:
            failed.append(f"{name} (exit {rc})")
        rows += EXTRACT[name](json.loads(out.read_text()), args.full)

    summary = {
        "mode": mode,
        "commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.machine(), "cpus": os.cpu_count()},
        "rows": rows,
        "failed": failed,
    }
    prev = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else None
    if prev is not None:
        SUMMARY.replace(PREVIOUS)
    SUMMARY.write_text(json.dumps(summary, indent=1) + "\n")
    print()
    print_table(rows)
    if prev is not None:
        print_changes(prev, summary, partial=bool(args.only))
    print(f"\nwrote {SUMMARY.relative_to(REPO)}" + (f" (previous: {PREVIOUS.relative_to(REPO)})" if prev else ""))
    if failed:
        print("failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
