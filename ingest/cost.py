"""What an ingest run cost the node, as one flat record for ``runs`` (``summary.cost``), from the
client's counters and the stages' wall time.
"""

from __future__ import annotations

__all__ = ["cost_record"]


def cost_record(rpc: dict, stages: dict[str, float], seconds: float) -> dict:
    """What a run cost the node, flat and named for ``runs`` (``summary.cost``): HTTP requests
    and JSON-RPC calls (those inside batches counted one by one), ``eth_getLogs`` calls, ranges
    answered and logs received, ``eth_call``s and the reads they carried (Multicall3 sub-reads
    counted), bytes received and sent, retries by cause, and wall time per stage [s]."""
    by = rpc.get("calls_by_method") or {}
    return {
        "requests": int(rpc.get("requests", 0)),
        "calls": int(rpc.get("calls", 0)),
        "getlogs_calls": int(by.get("eth_getLogs", 0)),
        "getlogs_ranges": int(rpc.get("getlogs_ranges", 0)),
        "logs_received": int(rpc.get("logs_received", 0)),
        "eth_calls": int(by.get("eth_call", 0)),
        "reads": int(rpc.get("reads", 0)),
        "multicall_calls": int(rpc.get("multicall_calls", 0)),
        "multicall_reads": int(rpc.get("multicall_reads", 0)),
        "bytes_received": int(rpc.get("bytes_received", 0)),
        "bytes_sent": int(rpc.get("bytes_sent", 0)),
        "retries": int(rpc.get("retries", 0)),
        "retries_by_cause": {k[len("retries_"):]: int(v) for k, v in sorted(rpc.items())
                             if k.startswith("retries_") and v},
        "rate_limit_waited_s": float(rpc.get("waited_seconds", 0.0)),
        "stage_seconds": dict(stages),
        "seconds": seconds,
    }
