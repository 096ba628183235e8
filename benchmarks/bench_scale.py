"""Benchmark: replay screening time and peak memory at 10k, 100k and 1M positions x 1,000 checkpoints.

Each size runs in its own subprocess (so peak RSS, ``VmHWM`` from ``/proc/self/status``, is that
size's alone) on a synthetic warehouse (:mod:`benchmarks.synthetic`: one v3.6 market, six
reserves, 30% eMode, health factors spread near 1, a correlated random price walk that changes
every price at every block, so every block end is a ``price_change`` checkpoint).

Two modes per size:

- **screen** (every size): the engine's own replay loop (``replay.replayer.Replayer.run``: events,
  block-end price reads, checkpoints) with each checkpoint doing what the engine does before
  exact valuation: reserves normalised to the checkpoint (``_reserves_at``), reported and true
  prices (``PriceBook.prices``) and the NumPy screen of the whole population (``_screen``),
  keeping the candidates under the health band. The exact valuation of the candidates is
  skipped; their count is reported.
- **full** (sizes up to ``--full-max``, default 10,000): the replayer as ``replay.engine.run_replay``
  runs it: screening plus the exact valuation of every candidate at every checkpoint (the vector
  path, ``Replayer._fast_values``, for the users it proves exact; the scalar reference
  ``aave_math.health_factor`` for the others and for verdicts) and its ``health`` row.

The start positions are an Arrow table with the warehouse's column types (``--start rows``: the
list of dicts ``load_inputs`` gives today), loaded by columns (:mod:`replay.start_columns`).

Reported per size: set-up (generation of the inputs, untimed for the goal), book load (the
start positions into the position book and its NumPy mirror), screening time (time inside
``_screen``), the replay loop wall time, candidates per checkpoint, exact valuations and their
time (vector path and scalar reference, full mode), health rows, and peak RSS. Growth is the ratio between successive sizes. Prints a table and
writes ``benchmarks/results/scale.json``.

    .venv/bin/python benchmarks/bench_scale.py                          # 10k, 100k, 1M x 1,000
    .venv/bin/python benchmarks/bench_scale.py --sizes 10000 --checkpoints 100   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"


def _vm(field: str) -> int:
    """A ``/proc/self/status`` figure in bytes (``VmHWM``: peak RSS; ``VmRSS``: current)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _f1(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def run_one(size: int, checkpoints: int, mode: str, band: float, seed: int, start: str = "arrow") -> dict:
    """``mode``: ``screen``, ``full`` (the vector path, as the engine runs) or ``scalar`` (the full replay
    with the scalar reference only: the baseline of ``full``)."""
    """One size, in this process. Returns the figures as a dict."""
    import numpy as np

    import postmortem.replay.replayer as engine  # the replayer's loop and its exact valuation, timed in place
    from benchmarks.synthetic import synthetic_inputs

    out: dict = {"positions": size, "checkpoints_requested": checkpoints, "mode": mode, "health_band": band,
                 "rss_before_bytes": _vm("VmRSS")}
    t0 = time.perf_counter()
    inputs = synthetic_inputs(size, checkpoints, seed=seed, arrow=start == "arrow")
    out["start_format"] = start
    out["generate_seconds"] = time.perf_counter() - t0
    out["positions_at_start_rows"] = len(inputs.positions_at_start)
    out["rss_after_generate_bytes"] = _vm("VmRSS")

    screen_time = [0.0]
    candidates: list[int] = []
    exact_time = [0.0]
    exact_calls = [0]
    fast = {"seconds": 0.0, "users": 0}
    original_screen = engine.Replayer._screen
    original_hf = engine.health_factor
    original_fast = engine.Replayer._fast_values

    def timed_fast(self, *a, **kw):
        s = time.perf_counter()
        res = original_fast(self, *a, **kw)
        fast["seconds"] += time.perf_counter() - s
        fast["users"] += len(res)
        return res

    def timed_screen(self, *a, **kw):
        s = time.perf_counter()
        res = original_screen(self, *a, **kw)
        screen_time[0] += time.perf_counter() - s
        candidates.append(len(res))
        return res

    def timed_hf(*a, **kw):
        s = time.perf_counter()
        res = original_hf(*a, **kw)
        exact_time[0] += time.perf_counter() - s
        exact_calls[0] += 1
        return res

    def screen_only(self, cp, pool, forced, liquidation):
        reserves = self._reserves_at(pool, self.revisions[pool], cp.timestamp)
        reported, true = self.prices.prices(pool, cp.timestamp, cp.block_number)
        self._screen(pool, reserves, reported, true, cp.timestamp)

    engine.Replayer._screen = timed_screen
    engine.health_factor = timed_hf
    engine.Replayer._fast_values = timed_fast
    saved_eval = engine.Replayer._evaluate_pool
    if mode == "screen":
        engine.Replayer._evaluate_pool = screen_only
    try:
        t0 = time.perf_counter()
        r = engine.Replayer(inputs, {}, eth_asset=None, health_band=band,
                            exact_path="scalar" if mode == "scalar" else "vector")
        out["book_load_seconds"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        r.run()
        out["loop_seconds"] = time.perf_counter() - t1
        out["replay_seconds"] = time.perf_counter() - t0
    finally:
        engine.Replayer._screen = original_screen
        engine.health_factor = original_hf
        engine.Replayer._fast_values = original_fast
        engine.Replayer._evaluate_pool = saved_eval
    out["checkpoints"] = len(r.checkpoints)
    out["screen_seconds"] = screen_time[0]
    out["screen_calls"] = len(candidates)
    out["screen_ms_per_checkpoint"] = 1e3 * screen_time[0] / max(1, len(candidates))
    out["positions_screened"] = r.screened
    out["candidates_mean"] = float(np.mean(candidates)) if candidates else 0.0
    out["candidates_max"] = int(max(candidates)) if candidates else 0
    out["candidates_total"] = int(sum(candidates))
    out["exact_valuations"] = exact_calls[0]
    out["exact_seconds"] = exact_time[0]
    out["exact_us_per_valuation"] = 1e6 * exact_time[0] / exact_calls[0] if exact_calls[0] else None
    out["vector_users"] = fast["users"]
    out["vector_seconds"] = fast["seconds"]
    out["vector_us_per_user"] = 1e6 * fast["seconds"] / fast["users"] if fast["users"] else None
    out["health_rows"] = len(r.health_rows)
    if mode != "screen":  # the health table written as `replay` writes it (Parquet, batch by batch)
        import tempfile

        from postmortem.replay.output_tables import to_output
        from postmortem.warehouse import Warehouse

        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            t2 = time.perf_counter()
            rec = Warehouse(Path(tmp)).write_output(1, "health", "bench-scale", "run", to_output("health", r.health_rows), {})
            out["health_write_seconds"] = time.perf_counter() - t2
            out["health_file_bytes"] = rec.bytes
    out["price_mismatches"] = len(r.price_mismatches)
    out["peak_rss_bytes"] = _vm("VmHWM")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated position counts")
    ap.add_argument("--checkpoints", type=int, default=1000)
    ap.add_argument("--full-max", type=int, default=10_000, help="also run the full replay (exact path) up to this size")
    ap.add_argument("--scalar-max", type=int, default=10_000,
                    help="also run the full replay with the scalar reference only (the baseline) up to this size")
    ap.add_argument("--health-band", type=float, default=1.10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", choices=("arrow", "rows"), default="arrow",
                    help="start positions as an Arrow table (loaded by columns) or as a list of dicts")
    ap.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: "size,mode" in a subprocess
    args = ap.parse_args(argv)

    if args.one:
        size, mode = args.one.split(",")
        print(json.dumps(run_one(int(size), args.checkpoints, mode, args.health_band, args.seed, args.start)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    runs = []
    for size in sizes:
        modes = ["screen"] + (["full"] if size <= args.full_max else []) + (["scalar"] if size <= args.scalar_max else [])
        for mode in modes:
            cmd = [sys.executable, __file__, "--one", f"{size},{mode}", "--checkpoints", str(args.checkpoints),
                   "--health-band", str(args.health_band), "--seed", str(args.seed), "--start", args.start]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                print(f"{size:,} {mode}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
                runs.append({"positions": size, "mode": mode, "error": proc.stderr[-3000:]})
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["subprocess_seconds"] = time.perf_counter() - t0
            runs.append(res)
            print(f"{size:>9,} {mode:6} screen {res['screen_seconds']:7.2f} s  loop {res['loop_seconds']:7.2f} s  "
                  f"peak {res['peak_rss_bytes'] / 2**30:5.2f} GiB", file=sys.stderr, flush=True)

    print(f"\nsynthetic v3.6 market, 6 reserves, health band {args.health_band}, {args.checkpoints:,} price checkpoints, "
          f"{os.cpu_count()} CPUs\n")
    print("| positions | rows | mode | checkpoints | generate s | book load s | screen s | screen ms / checkpoint "
          "| candidates / checkpoint | vector users | vector s | scalar valuations | scalar s | health rows | replay s "
          "| health table written s | peak RSS GiB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        if "error" in r:
            print(f"| {r['positions']:,} | | {r['mode']} | failed | | | | | | | | | | | | | |")
            continue
        print(f"| {r['positions']:,} | {r['positions_at_start_rows']:,} | {r['mode']} | {r['checkpoints']:,} | "
              f"{r['generate_seconds']:.1f} | {r['book_load_seconds']:.1f} | {r['screen_seconds']:.2f} | "
              f"{r['screen_ms_per_checkpoint']:.2f} | {r['candidates_mean']:,.0f} | {r['vector_users']:,} | "
              f"{r['vector_seconds']:.1f} | {r['exact_valuations']:,} | {r['exact_seconds']:.1f} | "
              f"{r['health_rows']:,} | {r['replay_seconds']:.1f} | {_f1(r.get('health_write_seconds'))} | "
              f"{r['peak_rss_bytes'] / 2**30:.2f} |")
    screens = [r for r in runs if r.get("mode") == "screen" and "error" not in r]
    growth = []
    for a, b in zip(screens, screens[1:]):
        g = {"from": a["positions"], "to": b["positions"], "size_x": b["positions"] / a["positions"],
             "screen_time_x": b["screen_seconds"] / a["screen_seconds"],
             "replay_time_x": b["replay_seconds"] / a["replay_seconds"],
             "peak_rss_x": b["peak_rss_bytes"] / a["peak_rss_bytes"]}
        growth.append(g)
        print(f"\n{a['positions']:,} -> {b['positions']:,} ({g['size_x']:.0f}x positions): screen time "
              f"{g['screen_time_x']:.1f}x, replay time {g['replay_time_x']:.1f}x, peak RSS {g['peak_rss_x']:.1f}x", end="")
    print()
    report = {"checkpoints": args.checkpoints, "health_band": args.health_band, "seed": args.seed,
              "start_format": args.start, "runs": runs,
              "growth": growth, "cpus": os.cpu_count(), "python": platform.python_version(),
              "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
