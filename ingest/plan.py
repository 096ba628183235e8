"""A plan before the run: what an ingest will cost, from what is cheap to ask the node.

``estimate`` asks the chain id, the head and the finalized block, discovers the markets (a few
reads), checks where Multicall3 is, and samples ``eth_getLogs`` over a few short sub-ranges of
the holder scan and of the window to estimate how many logs there are, how many blocks carry
them and how many users they name. From those it works out what ``ingest`` will send: HTTP
requests, JSON-RPC calls, ``eth_getLogs`` calls, ``eth_call``s and the reads they carry, logs
and bytes received, and the time at a given requests-per-second (a batch counts each call, as
hosted providers meter it). Nothing is written; the numbers are estimates, and ``postmortem
sql "select summary from runs"`` shows what a run really cost (``summary.cost``).
"""

from __future__ import annotations

import math
import time
from typing import Any

from postmortem.ingest import discovery
from postmortem.ingest.calls import DEFAULT_MULTICALL_BATCH, _multicall_blocks, multicall_batch_of
from postmortem.ingest.pipeline import (
    DEFAULT_CHUNK,
    TRANSFER_TOPIC,
    _chunks,
    _holder_chunk_size,
    _plan,
    scan_tokens,
)
from postmortem.ingest.ranges import fetch_logs
from postmortem.ingest.rpc import RpcClient, RpcError
from postmortem.ingest.snapshots import EMODE_PROBE
from postmortem.incidents import Incident, load_incident
from postmortem.redact import redact_url

# eth_getLogs walk of ingest.ranges (defaults): starts at 2,000 blocks, +500 after 4 successes, up to 10,000.
_INITIAL_WIDTH, _MAX_WIDTH, _GROW_AFTER, _GROW_STEP = 2_000, 10_000, 4, 500
# A hosted provider answers at most this many logs per eth_getLogs (Alchemy, Infura).
_RESULT_CAP = 10_000
SAMPLES = 4
SAMPLE_WIDTH = 500  # blocks per sample, at most
HOLDER_TAIL = 2_000  # blocks just before the window read whole by the holder-scan sample
HEADER_BYTES = 1_100  # an eth_getBlockByNumber(false) answer on mainnet, about
READ_BYTES = 140  # an eth_call answer carrying one word, JSON framing included, about


def _walk_requests(span: int) -> int:
    """eth_getLogs calls ``fetch_logs`` makes over ``span`` blocks when nothing is refused."""
    n, width, streak, done = 0, _INITIAL_WIDTH, 0, 0
    while done < span:
        done += width
        n += 1
        streak += 1
        if streak >= _GROW_AFTER and width < _MAX_WIDTH:
            width, streak = min(_MAX_WIDTH, width + _GROW_STEP), 0
    return n


def _scan_requests(since: int, until: int, chunk: int) -> int:
    if until < since:
        return 0
    return sum(_walk_requests(e - s + 1) for s, e in _chunks(since, until, chunk))


def _holder_requests(since: int, until: int, chunk: int) -> int:
    """The holder scan asks each chunk whole (splits for dense history are added by the caller)."""
    return len(_chunks(since, until, chunk)) if until >= since else 0


def _sample(client, addresses, topics, lo: int, hi: int, tail: int = 0) -> dict[str, Any]:
    """Logs in a few evenly spaced sub-ranges of ``[lo, hi]`` (the whole range when it is short).
    With ``tail``, the last ``tail`` blocks are read whole and counted exactly (activity just
    before an incident is often the densest), and the samples spread over the rest."""
    span = hi - lo + 1
    if span <= 0:
        return {"blocks": 0, "sampled_blocks": 0, "logs": 0, "blocks_with_logs": 0, "addresses": 0, "bytes": 0,
                "exact": {"logs": 0, "blocks_with_logs": 0, "addresses": 0}}
    if tail and span > tail + SAMPLES * SAMPLE_WIDTH:
        exact = _sample(client, addresses, topics, hi - tail + 1, hi)
        rest = _sample(client, addresses, topics, lo, hi - tail)
        rest["exact"] = {k: exact[k] for k in ("logs", "blocks_with_logs", "addresses")}
        rest["bytes"] += exact["bytes"]
        rest["sampled_logs_total"] = rest["logs"] + exact["logs"]
        return rest
    width = min(SAMPLE_WIDTH, span)
    if width * SAMPLES >= span:
        pieces = [(lo, hi)]
    else:
        step = span // SAMPLES
        pieces = [(lo + k * step, lo + k * step + width - 1) for k in range(SAMPLES)]
    before = client.stats()["bytes_received"]
    logs = []
    for s, e in pieces:
        logs += [lg for r in fetch_logs(client, addresses=addresses, topics=topics, from_block=s, to_block=e)
                 for lg in r.logs]
    sampled = sum(e - s + 1 for s, e in pieces)
    named = {"0x" + t[-40:] for lg in logs for t in (lg.get("topics") or [])[1:] if t[2:26] == "0" * 24}
    return {"blocks": span, "sampled_blocks": sampled, "logs": len(logs),
            "blocks_with_logs": len({lg["blockNumber"] for lg in logs}), "addresses": len(named),
            "bytes": client.stats()["bytes_received"] - before,
            "exact": {"logs": 0, "blocks_with_logs": 0, "addresses": 0}}


def _scale(sample: dict, key: str) -> int:
    exact = sample.get("exact", {}).get(key, 0)
    if not sample["sampled_blocks"]:
        return exact
    return exact + int(round(sample[key] * sample["blocks"] / sample["sampled_blocks"]))


def estimate(rpc_url: str, *, incident: str | Incident, users: str | None = None,
             requests_per_second: float | None = None, from_block: int | None = None, to_block: int | None = None,
             max_batch: int = 100, max_concurrency: int = 4, chunk_size: int | None = None,
             multicall_batch: int | None = None, allow_unfinalized: bool = False) -> dict[str, Any]:
    """The expected cost of ``ingest`` with the same arguments (see the module docstring)."""
    t0 = time.monotonic()
    inc = load_incident(incident) if isinstance(incident, str) else incident
    client = RpcClient(rpc_url, max_batch=max_batch, max_concurrency=max_concurrency)
    if multicall_batch is not None:
        client.multicall_batch = int(multicall_batch)
    chunk_size = chunk_size or DEFAULT_CHUNK
    try:
        plan = _plan(client, incident=inc, pools=None, from_block=from_block, to_block=to_block, users_since=None,
                     price_grid=None, allow_unfinalized=allow_unfinalized, users=users)
        head = int(client.call("eth_blockNumber", []), 16)
        try:
            fin = client.call("eth_getBlockByNumber", ["finalized", False])
            finalized = int(fin["number"], 16) if fin else None
        except RpcError:
            finalized = None
        a, b = plan.from_block, plan.to_block
        markets = discovery.discover(client, plan.pools, b, (inc.raw.get("revisions", {}) if inc else {}))
        tokens = scan_tokens(markets, plan)
        addresses = discovery.log_addresses(markets)
        size = multicall_batch_of(client)
        multicall = bool(size) and bool(_multicall_blocks(client, [b]))
        multicall_at_start = bool(size) and bool(_multicall_blocks(client, [max(0, a - 1)]))
        since, until = plan.users_since, a - 1
        holder = (_sample(client, tokens, [TRANSFER_TOPIC], since, until, tail=HOLDER_TAIL) if until >= since
                  else _sample(client, tokens, None, 1, 0))
        window = _sample(client, addresses, None, a, b)
        plan_cost = client.stats()
    finally:
        client.close()

    n_reserves = sum(len(m.reserves) for m in markets)
    adapters = {r["price_source"] for m in markets for r in m.reserves if r["source_kind"] == "capped_ratio"}
    feeds = {r["base_feed"] if r["source_kind"] == "capped_ratio" else r["price_source"] for m in markets for r in m.reserves
             if r["source_kind"] != "other"}
    holder_logs = _scale(holder, "logs")
    window_logs = _scale(window, "logs")
    log_blocks = min(window["blocks"], _scale(window, "blocks_with_logs"))
    # Users: holders named in the holder scan (at most one new address per log side), window users.
    holders = min(2 * holder_logs, _scale(holder, "addresses"))
    window_users = min(2 * window_logs, _scale(window, "addresses"))

    # eth_getLogs: the holder scan in its chunks, the window in its chunks, plus splits where a
    # range holds more logs than a provider answers at once.
    getlogs = (_holder_requests(since, until, _holder_chunk_size(chunk_size)) + _scan_requests(a, b, chunk_size)
               + (holder_logs + window_logs) // _RESULT_CAP)
    # Reads: start state, positions, prices at every read block (each block with a log and its
    # parent, each chunk's start parent, the end, the grid).
    read_blocks = min(b - a + 2, 2 * log_blocks + len(_chunks(a, b, chunk_size)) + 1
                      + ((b - a + 1) // plan.price_grid if plan.price_grid else 0))
    per_block = n_reserves + 5 * len(adapters) + len(feeds)
    emode = EMODE_PROBE * 4 * len(markets)
    start_reads = n_reserves + emode
    if plan.users == "incident":
        scope_users = holders + window_users
        position_reads = scope_users * (2 + 3)  # configuration and eMode, then ~3 flagged balances each
    else:
        scope_users = holders
        position_reads = holders * (2 + 2)  # configuration and eMode, then the ~2 tokens each one held
    reads = start_reads + position_reads + read_blocks * per_block

    def calls_for(n_reads: int, groups: int, via: bool) -> int:
        return max(groups, math.ceil(n_reads / size)) if via and size else n_reads

    eth_calls = (calls_for(start_reads + position_reads, 1, multicall_at_start)
                 + calls_for(read_blocks * per_block, read_blocks, multicall))
    headers = read_blocks + log_blocks + 2 * len(_chunks(a, b, chunk_size)) + 1
    calls = getlogs + eth_calls + headers + int(plan_cost["calls"])
    requests = getlogs + math.ceil(eth_calls / max_batch) + math.ceil(headers / max_batch) + int(plan_cost["requests"])
    sampled_logs = holder["logs"] + holder["exact"]["logs"] + window["logs"]
    bytes_per_log = (holder["bytes"] + window["bytes"]) / sampled_logs if sampled_logs else 700
    bytes_received = int((holder_logs + window_logs) * bytes_per_log + reads * READ_BYTES + headers * HEADER_BYTES
                         + int(plan_cost["bytes_received"]))
    elapsed = time.monotonic() - t0
    latency = elapsed / max(1, plan_cost["requests"])  # seconds per round trip, as measured by the plan
    seconds = requests * latency / max(1, min(max_concurrency, 4)) + (calls / requests_per_second if requests_per_second else 0)
    return {
        "incident": plan.incident_id, "rpc_url": redact_url(rpc_url), "chain_id": plan.chain_id,
        "head": head, "finalized": finalized, "from_block": a, "to_block": b, "users": plan.users,
        "markets": len(markets), "reserves": n_reserves, "multicall3": multicall,
        "holder_scan": {"from_block": since, "to_block": until, "tokens": len(tokens), "blocks": holder["blocks"],
                        "sampled_blocks": holder["sampled_blocks"] + (HOLDER_TAIL if "sampled_logs_total" in holder else 0),
                        "sampled_logs": holder["logs"] + holder["exact"]["logs"],
                        "logs": holder_logs, "users": holders},
        "window": {"blocks": window["blocks"], "sampled_blocks": window["sampled_blocks"],
                   "sampled_logs": window["logs"], "logs": window_logs, "blocks_with_logs": log_blocks,
                   "users": window_users},
        "expected": {"requests": requests, "calls": calls, "getlogs_calls": getlogs, "logs": holder_logs + window_logs,
                     "eth_calls": eth_calls, "reads": reads, "scope_users": scope_users,
                     "bytes_received": bytes_received, "seconds": round(seconds, 1),
                     "requests_per_second": requests_per_second},
        "plan_cost": {"requests": int(plan_cost["requests"]), "calls": int(plan_cost["calls"]),
                      "bytes_received": int(plan_cost["bytes_received"]), "seconds": round(elapsed, 3)},
    }


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:,.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def render(p: dict[str, Any]) -> str:
    """The plan as plain text (``postmortem plan``)."""
    e, h, w = p["expected"], p["holder_scan"], p["window"]
    rate = e["requests_per_second"]
    fin = p["finalized"] if p["finalized"] is not None else "not reported"
    lines = [
        f"plan for {p['incident'] or 'the pools'} on chain {p['chain_id']} at {p['rpc_url']} "
        f"(head {p['head']}, finalized {fin})",
        f"  range {p['from_block']}..{p['to_block']}, {p['markets']} markets, {p['reserves']} reserves, "
        f"users: {p['users']}, Multicall3: {'yes' if p['multicall3'] else 'no (plain eth_call batches)'}",
        f"  holder scan {h['from_block']}..{h['to_block']} over {h['tokens']} tokens: ~{h['logs']:,} Transfer logs "
        f"(sampled {h['sampled_logs']:,} in {h['sampled_blocks']:,} of {h['blocks']:,} blocks), ~{h['users']:,} holders",
        f"  window: ~{w['logs']:,} logs in ~{w['blocks_with_logs']:,} blocks, ~{w['users']:,} users",
        f"  expected: {e['requests']:,} HTTP requests carrying {e['calls']:,} calls "
        f"({e['getlogs_calls']:,} eth_getLogs, {e['eth_calls']:,} eth_call with {e['reads']:,} reads), "
        f"{e['logs']:,} logs, {_mib(e['bytes_received'])} received",
        f"  time: ~{_duration(e['seconds'])}"
        + (f" at {rate:g} requests/s (a batch counts each call)" if rate else " with no rate cap (give --requests-per-second R)"),
        f"  this plan cost {p['plan_cost']['requests']} requests, {p['plan_cost']['calls']} calls, "
        f"{p['plan_cost']['seconds']} s",
    ]
    return "\n".join(lines)


__all__ = ["estimate", "render", "DEFAULT_MULTICALL_BATCH"]
