"""Small tables with documented schemas, for warehouse and SQL tests."""

from __future__ import annotations

import pyarrow as pa


def logs_table(block: int, n: int = 3) -> pa.Table:
    """A `logs` table matching its documented schema."""
    return pa.table({
        "block_number": pa.array([block] * n, pa.int64()),
        "block_hash": pa.array([f"0x{block:064x}"] * n),
        "transaction_hash": pa.array([f"0x{i:064x}" for i in range(n)]),
        "transaction_index": pa.array(range(n), pa.int32()),
        "log_index": pa.array(range(n), pa.int32()),
        "address": pa.array(["0x" + "ab" * 20] * n),
        "topic0": pa.array([bytes([i]) * 32 for i in range(n)], pa.binary(32)),
        "topic1": pa.array([None] * n, pa.binary(32)),
        "topic2": pa.array([None] * n, pa.binary(32)),
        "topic3": pa.array([None] * n, pa.binary(32)),
        "data": pa.array([b"\x00" * 64] * n, pa.binary()),
    })
