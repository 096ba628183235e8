"""Soak: ingest a local-chain range through the fault-injecting proxy with faults at random,
kill the run several times, resume, and compare with a clean run.

    .venv/bin/python benchmarks/soak.py                  # long version (scale scenario, 8 kills)
    .venv/bin/python benchmarks/soak.py --borrowers 50 --kills 2

Prints faults injected by kind, restarts, and rows compared per dataset; writes
benchmarks/results/soak.json. A short version runs in `make test` (tests/test_soak.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

FAULTS = [
    {"kind": "http_429", "probability": 0.04, "retry_after": 0},
    {"kind": "infura_rate", "probability": 0.03, "backoff_seconds": 0},
    {"kind": "reset", "probability": 0.03},
    {"kind": "truncate", "probability": 0.03},
    {"kind": "malformed", "probability": 0.02},
    {"kind": "slow", "probability": 0.02, "delay": 0.3},
    {"kind": "batch_reorder", "probability": 0.05},
    {"kind": "batch_missing_id", "probability": 0.02},
    {"kind": "range_cap", "style": "infura", "max_range": 3},
]


def _rows(root: Path) -> dict:
    from conftest import warehouse_rows

    return warehouse_rows(root)


def soak(*, url: str, incident, workdir: Path, kills: int = 3, seed: int = 1, chunk_size: int = 2,
         max_seconds: float = 600) -> dict:
    """Run the soak against a node at ``url``; returns the figures (and raises if the
    warehouses differ)."""
    from postmortem.devchain.faultproxy import FaultProxy
    from postmortem.ingest.pipeline import ingest

    rng = random.Random(seed)
    clean, soaked = workdir / "clean", workdir / "soaked"
    t0 = time.monotonic()
    ingest(url, incident=incident, warehouse=clean, progress=False, chunk_size=chunk_size)
    clean_seconds = time.monotonic() - t0
    inc_json = json.dumps(dataclasses.asdict(incident))
    restarts = 0
    deadline = time.monotonic() + max_seconds
    with FaultProxy(url, FAULTS, seed=seed) as proxy:
        code = (
            f"import sys, json; sys.path.insert(0, {str(REPO)!r})\n"
            "from postmortem.ingest.pipeline import ingest\nfrom postmortem.incidents import Incident\n"
            f"inc = Incident(**json.loads({inc_json!r}))\n"
            f"ingest({proxy.url!r}, incident=inc, warehouse={str(soaked)!r}, progress=False, chunk_size={chunk_size})\n"
        )
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError("soak did not finish in time")
            proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
            if restarts < kills:
                time.sleep(rng.uniform(0.3, 1.0) * max(clean_seconds, 1.0))
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    restarts += 1
                    continue
            if proc.wait() == 0:
                break
            restarts += 1  # a run that died of a fault it could not retry: resume again
        faults = {k: v for k, v in proxy.counts().items() if v}
    a, b = _rows(clean), _rows(soaked)
    compared = {k: len(v) for k, v in a.items()}
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise AssertionError(f"soaked warehouse differs from the clean one in: {diff}")
    return {"faults_injected": faults, "restarts": restarts, "rows_compared": compared,
            "rows_total": sum(compared.values()), "identical": True,
            "seconds": round(time.monotonic() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--borrowers", type=int, default=400)
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from postmortem.devchain import manager
    from postmortem.devchain.node import free_port
    from postmortem.incidents import devchain_window

    with tempfile.TemporaryDirectory() as tmp:
        node, out = manager.start(free_port(), "scale", directory=Path(tmp) / "dc", detach=False,
                                  borrowers=args.borrowers)
        try:
            s = out["manifest"]["summary"]
            inc = devchain_window(out["manifest"], "soak", from_block=s["deploy_block"] + 1)
            result = soak(url=node.url, incident=inc, workdir=Path(tmp), kills=args.kills, seed=args.seed)
        finally:
            node.stop()
    print(f"faults injected: {result['faults_injected']}")
    print(f"restarts: {result['restarts']}")
    print(f"rows compared: {result['rows_total']} in {len(result['rows_compared'])} datasets: identical")
    out_path = REPO / "benchmarks" / "results" / "soak.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"borrowers": args.borrowers, **result}, indent=1, sort_keys=True))
    print(f"saved {out_path}")


if __name__ == "__main__":
    main()
