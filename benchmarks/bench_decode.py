"""Benchmark: vectorised ``decode_logs`` against web3.py's and eth_abi's per-log decoding.

Generates N synthetic raw logs (``RAW_LOG_SCHEMA``) with a mix close to an Aave v3 market's
log stream (ERC-20/aToken Transfer, Mint, Burn, ReserveDataUpdated, Supply, Borrow, Repay,
LiquidationCall, Chainlink AnswerUpdated), shuffled, ~150 logs per block. Times:

- ``decode_logs`` on all N logs (best of ``--repeat`` runs, single-threaded);
- web3.py (``get_event_data`` after a topic0 lookup, the usual per-log loop) on a sample of
  ``--web3-sample`` logs, extrapolated to logs/s (stated as such in the output);
- ``eth_abi.decode`` per log (the data with the event's non-indexed types, each indexed topic
  with its type: the same work without web3's event layer) on the same sample;
- ``raw_logs_from_rpc`` on ``--rpc-sample`` logs in JSON-RPC form (for information).

The three decoders take turns for ``--rounds`` rounds (decode_logs, web3.py, eth_abi, then
again), so that the load other processes put on shared cores falls on each of them alike; the
ratios are those of the median CPU times, and each round's own ratios are printed beside them
(their spread is how much the figure moves with the machine's load).

Prints a table and writes ``benchmarks/results/decode.json``.

    .venv/bin/python benchmarks/bench_decode.py            # 1,000,000 logs
    .venv/bin/python benchmarks/bench_decode.py --logs 200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# One core: keep Arrow and any BLAS from spreading work across threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from postmortem.ingest.decode import decode_logs, raw_logs_from_rpc  # noqa: E402
from postmortem.ingest.events import EVENTS, RAW_LOG_SCHEMA, Event  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "decode.json"

# Share of each event in the stream (rough proportions of an Aave v3 market's logs).
MIX = {
    "Transfer": 0.34,
    "Mint": 0.14,
    "Burn": 0.08,
    "ReserveDataUpdated": 0.16,
    "Supply": 0.08,
    "Borrow": 0.05,
    "Repay": 0.05,
    "LiquidationCall": 0.02,
    "AnswerUpdated": 0.08,
}
LOGS_PER_BLOCK = 150
LOGS_PER_TX = 3

_HEX = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)


def _hex_column(block: np.ndarray) -> pa.Array:
    n, k = block.shape
    width = 2 + 2 * k
    chars = np.empty((n, width), dtype=np.uint8)
    chars[:, :2] = np.frombuffer(b"0x", np.uint8)
    chars[:, 2:] = _HEX[block].view(np.uint8).reshape(n, 2 * k)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _words(rng: np.random.Generator, abi_type: str, m: int) -> np.ndarray:
    """m valid ABI words of ``abi_type`` as an (m, 32) uint8 array."""
    w = np.zeros((m, 32), dtype=np.uint8)
    if abi_type == "address":
        w[:, 12:] = rng.integers(0, 256, (m, 20), dtype=np.uint8)
    elif abi_type == "bool":
        w[:, 31] = rng.integers(0, 2, m)
    elif abi_type in ("uint8", "uint16"):
        w[:, 31] = rng.integers(0, 3, m)
    elif abi_type == "uint256":
        w[:, 17:] = rng.integers(0, 256, (m, 15), dtype=np.uint8)  # < 2**120 < 10**38
    elif abi_type == "int256":
        w[:, 20:] = rng.integers(0, 256, (m, 12), dtype=np.uint8)
        negative = rng.random(m) < 0.1
        w[negative] = ~w[negative]  # two's complement of a small magnitude: -(x + 1)
    else:
        raise ValueError(abi_type)
    return w


def synthetic_raw_logs(n: int, seed: int = 7) -> pa.Table:
    """N shuffled valid logs of the ``MIX`` events, as a RAW_LOG_SCHEMA table."""
    rng = np.random.default_rng(seed)
    by_name = {ev.name: ev for ev in EVENTS}
    names = list(MIX)
    counts = rng.multinomial(n, [MIX[k] for k in names])
    parts = []
    for name, m in zip(names, counts):
        ev: Event = by_name[name]
        m = int(m)
        topics = [np.tile(np.frombuffer(ev.topic0, np.uint8), (m, 1))]
        topics += [_words(rng, p.abi_type, m) for p in ev.indexed]
        data = np.hstack([_words(rng, p.abi_type, m) for p in ev.non_indexed]) if ev.non_indexed else np.zeros((m, 0), np.uint8)
        size = data.shape[1]
        cols = {}
        for k in range(4):
            if k < len(topics):
                cols[f"topic{k}"] = pa.Array.from_buffers(pa.binary(32), m, [None, pa.py_buffer(np.ascontiguousarray(topics[k]))])
            else:
                cols[f"topic{k}"] = pa.nulls(m, pa.binary(32))
        cols["data"] = pa.Array.from_buffers(
            pa.binary(), m, [None, pa.py_buffer(np.arange(0, (m + 1) * size, size, dtype=np.int32)), pa.py_buffer(data)]
        )
        cols["address"] = _hex_column(rng.integers(0, 256, (m, 20), dtype=np.uint8))
        parts.append(pa.table(cols))
    grouped = pa.concat_tables(parts)
    shuffled = grouped.take(pa.array(rng.permutation(n)))

    position = np.arange(n)
    block_number = 19_000_000 + position // LOGS_PER_BLOCK
    n_blocks = int(block_number[-1] - block_number[0] + 1)
    block_hashes = _hex_column(rng.integers(0, 256, (n_blocks, 32), dtype=np.uint8))
    tx = position // LOGS_PER_TX
    tx_hashes = _hex_column(rng.integers(0, 256, (int(tx[-1]) + 1, 32), dtype=np.uint8))
    log_index = position % LOGS_PER_BLOCK
    columns = {
        "block_number": pa.array(block_number, pa.int64()),
        "block_hash": block_hashes.take(pa.array(block_number - block_number[0])),
        "transaction_hash": tx_hashes.take(pa.array(tx)),
        "transaction_index": pa.array((log_index // LOGS_PER_TX).astype(np.int32)),
        "log_index": pa.array(log_index.astype(np.int32)),
    }
    for name in ("address", "topic0", "topic1", "topic2", "topic3", "data"):
        columns[name] = shuffled.column(name).combine_chunks()
    return pa.Table.from_arrays([columns[f.name] for f in RAW_LOG_SCHEMA], schema=RAW_LOG_SCHEMA)


def to_rpc(raw: pa.Table) -> list[dict]:
    """Rows of a raw table as eth_getLogs JSON results (hex strings)."""
    out = []
    for r in raw.to_pylist():
        out.append(
            {
                "address": r["address"],
                "blockHash": r["block_hash"],
                "blockNumber": hex(r["block_number"]),
                "data": "0x" + r["data"].hex(),
                "logIndex": hex(r["log_index"]),
                "removed": False,
                "topics": ["0x" + r[f"topic{k}"].hex() for k in range(4) if r[f"topic{k}"] is not None],
                "transactionHash": r["transaction_hash"],
                "transactionIndex": hex(r["transaction_index"]),
            }
        )
    return out


class Clock:
    """Wall-clock and CPU (process) time of a block: CPU time is what one core spent,
    which stays meaningful when other processes share the machine."""

    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def time_decode(raw: pa.Table, repeat: int) -> tuple[float, float, dict[str, int]]:
    """Best wall and best CPU seconds of ``repeat`` runs of decode_logs on ``raw``."""
    wall = cpu = float("inf")
    rows = {}
    for _ in range(repeat):
        with Clock() as c:
            out = decode_logs(raw)
        wall, cpu = min(wall, c.wall), min(cpu, c.cpu)
        rows = {k: v.num_rows for k, v in out.items() if v.num_rows}
    return wall, cpu, rows


def time_web3(raw: pa.Table, sample: int) -> tuple[float, float, int]:
    from web3 import Web3
    from web3._utils.events import get_event_data

    codec = Web3().codec
    abis = {ev.topic0: ev.abi() for ev in EVENTS}
    sub = raw.slice(0, sample)
    logs = []
    for r in sub.to_pylist():
        logs.append(
            {
                "address": r["address"],
                "blockHash": bytes.fromhex(r["block_hash"][2:]),
                "blockNumber": r["block_number"],
                "logIndex": r["log_index"],
                "transactionHash": bytes.fromhex(r["transaction_hash"][2:]),
                "transactionIndex": r["transaction_index"],
                "topics": [r[f"topic{k}"] for k in range(4) if r[f"topic{k}"] is not None],
                "data": r["data"],
            }
        )
    decoded = 0
    with Clock() as c:
        for log in logs:
            abi = abis.get(log["topics"][0])
            if abi is not None:
                get_event_data(codec, abi, log)
                decoded += 1
    return c.wall, c.cpu, decoded


def time_eth_abi(raw: pa.Table, sample: int) -> tuple[float, float, int]:
    """``eth_abi.decode`` per log, the way a hand-written loop decodes without web3's event layer:
    the data with the event's non-indexed types, each indexed topic with its own type."""
    from eth_abi import decode

    spec = {ev.topic0: ([p.abi_type for p in ev.non_indexed], [[p.abi_type] for p in ev.indexed]) for ev in EVENTS}
    sub = raw.slice(0, sample)
    logs = [([r[f"topic{k}"] for k in range(4) if r[f"topic{k}"] is not None], r["data"]) for r in sub.to_pylist()]
    decoded = 0
    with Clock() as c:
        for topics, data in logs:
            s = spec.get(topics[0])
            if s is None:
                continue
            data_types, topic_types = s
            decode(data_types, data)
            for t, topic in zip(topic_types, topics[1:]):
                decode(t, topic)
            decoded += 1
    return c.wall, c.cpu, decoded


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=1_000_000, help="synthetic logs to decode (default 1,000,000)")
    ap.add_argument("--web3-sample", type=int, default=20_000, help="logs decoded by web3.py, then extrapolated")
    ap.add_argument("--rpc-sample", type=int, default=100_000, help="logs converted by raw_logs_from_rpc")
    ap.add_argument("--repeat", type=int, default=3, help="decode_logs runs per round; the best is kept")
    ap.add_argument("--rounds", type=int, default=3, help="rounds in which the decoders take turns (median kept)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = ap.parse_args(argv)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    t = time.perf_counter()
    raw = synthetic_raw_logs(args.logs)
    gen_s = time.perf_counter() - t

    sample = min(args.web3_sample, args.logs)
    rounds = []
    for k in range(max(1, args.rounds)):
        decode_wall, decode_cpu, rows = time_decode(raw, args.repeat)
        web3_wall, web3_cpu, web3_n = time_web3(raw, sample)
        abi_wall, abi_cpu, abi_n = time_eth_abi(raw, sample)
        rounds.append({"decode_logs": (decode_wall, decode_cpu), "web3": (web3_wall, web3_cpu),
                       "eth_abi": (abi_wall, abi_cpu)})
        print(f"round {k + 1}: decode_logs {decode_cpu:.3f} s CPU for {args.logs:,}; web3.py {web3_cpu:.3f} s and "
              f"eth_abi {abi_cpu:.3f} s for {web3_n:,}: "
              f"{(args.logs / decode_cpu) / (web3_n / web3_cpu):,.0f}x and {(args.logs / decode_cpu) / (abi_n / abi_cpu):,.0f}x",
              flush=True)

    def med(key: str, i: int) -> float:
        return statistics.median(r[key][i] for r in rounds)

    decode_wall, decode_cpu = med("decode_logs", 0), med("decode_logs", 1)
    web3_wall, web3_cpu = med("web3", 0), med("web3", 1)
    abi_wall, abi_cpu = med("eth_abi", 0), med("eth_abi", 1)
    per_round_web3 = [(args.logs / r["decode_logs"][1]) / (web3_n / r["web3"][1]) for r in rounds]
    per_round_abi = [(args.logs / r["decode_logs"][1]) / (abi_n / r["eth_abi"][1]) for r in rounds]

    rpc_n = min(args.rpc_sample, args.logs)
    rpc_logs = to_rpc(raw.slice(0, rpc_n))
    with Clock() as c:
        raw_logs_from_rpc(rpc_logs)
    rpc_wall, rpc_cpu = c.wall, c.cpu

    def line(name, n, wall, cpu):
        print(f"{name:<46} {n:>10,} {wall:>8.3f} {cpu:>8.3f} {n / wall:>12,.0f} {n / cpu:>12,.0f}")

    print(f"synthetic logs: {args.logs:,} (generated in {gen_s:.1f} s); decoded rows per table: {rows}")
    print()
    print(f"{'decoder':<46} {'logs':>10} {'wall s':>8} {'cpu s':>8} {'logs/s wall':>12} {'logs/s cpu':>12}")
    line(f"decode_logs (vectorised, best of {args.repeat}/round)", args.logs, decode_wall, decode_cpu)
    line("web3.py get_event_data (sample, extrapolated)", web3_n, web3_wall, web3_cpu)
    line("eth_abi.decode per log (sample, extrapolated)", abi_n, abi_wall, abi_cpu)
    line("raw_logs_from_rpc (JSON-RPC dicts -> Arrow)", rpc_n, rpc_wall, rpc_cpu)
    print()
    ratio = (args.logs / decode_cpu) / (web3_n / web3_cpu)
    abi_ratio = (args.logs / decode_cpu) / (abi_n / abi_cpu)
    print(f"decode_logs / web3.py (CPU time, medians of {len(rounds)} rounds): {ratio:,.0f}x "
          f"(rounds: {', '.join(f'{x:,.0f}x' for x in per_round_web3)})")
    print(f"decode_logs / eth_abi.decode (CPU time, medians of {len(rounds)} rounds): {abi_ratio:,.0f}x "
          f"(rounds: {', '.join(f'{x:,.0f}x' for x in per_round_abi)})")
    print(
        f"web3.py would need ~{args.logs * web3_cpu / web3_n:,.0f} s of CPU for {args.logs:,} logs "
        f"(extrapolated from {web3_n:,}); decode_logs took {decode_cpu:.2f} s"
    )

    def rates(n, wall, cpu):
        return {"logs": n, "wall_seconds": wall, "cpu_seconds": cpu,
                "logs_per_second_wall": n / wall, "logs_per_second_cpu": n / cpu}

    result = {
        "benchmark": "decode",
        "logs": args.logs,
        "mix": MIX,
        "decode_logs": {**rates(args.logs, decode_wall, decode_cpu), "repeat": args.repeat, "best_of": True},
        "web3_get_event_data": {
            **rates(web3_n, web3_wall, web3_cpu),
            "extrapolated_cpu_seconds_for_all": args.logs * web3_cpu / web3_n,
            "note": "measured on a sample of the same logs, extrapolated linearly",
        },
        "eth_abi_decode": {
            **rates(abi_n, abi_wall, abi_cpu),
            "extrapolated_cpu_seconds_for_all": args.logs * abi_cpu / abi_n,
            "note": "eth_abi.decode of each log's data and indexed topics, on the same sample as web3.py, "
                    "extrapolated linearly",
        },
        "raw_logs_from_rpc": rates(rpc_n, rpc_wall, rpc_cpu),
        "speedup_vs_web3_cpu": ratio,
        "speedup_vs_eth_abi_cpu": abi_ratio,
        "rounds": len(rounds),
        "speedup_vs_web3_cpu_per_round": per_round_web3,
        "speedup_vs_eth_abi_cpu_per_round": per_round_abi,
        "rows_per_table": rows,
        "threads": {"arrow_cpu_count": pa.cpu_count()},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {args.out}")
    return result


if __name__ == "__main__":
    main()
