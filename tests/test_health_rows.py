"""The health table kept by columns (replay.health_rows) gives the same Arrow table, row for row,
as the documented dict-per-row conversion of the same rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from postmortem.replay.health_rows import HEALTH_VALUES, FastValues, HealthRows
from postmortem.replay.output_tables import TABLES, to_arrow

WAD = 10**18


def _addr(i: int) -> str:
    return "0x" + f"{i:040x}"


def _dict_path(rows: list[dict]) -> pa.Table:
    return to_arrow("health", rows)  # a plain list: one dict per row, Decimal per value


def _cp(ordinal: int, kind: str, tx: int | None, after: int | None) -> dict:
    return {"market": "core", "pool": "0x" + "aa" * 20, "checkpoint": ordinal, "checkpoint_kind": kind,
            "block_number": 100 + ordinal, "transaction_index": tx, "after_log_index": after, "timestamp": 1_700_000_000 + ordinal}


def _scalar(user: int, hf_r: int, hf_t: int, *, debt: int = 5 * 10**8, wrongly=False, here=False) -> dict:
    return {"user": _addr(user), "emode_category": 1, "hf_reported": hf_r, "hf_true": hf_t,
            "collateral_base_reported": 7 * 10**8, "debt_base_reported": debt, "collateral_base_true": 7 * 10**8 + 3,
            "debt_base_true": debt, "wrongly_eligible": wrongly, "liquidated_here": here}


def _fast(ids: list[int]) -> tuple[np.ndarray, FastValues]:
    ids_a = np.array(ids, dtype=np.int64)
    vals = tuple(np.array([WAD + 1000 * i + j for i in ids], dtype=np.int64) for j in range(len(HEALTH_VALUES)))
    names = np.array([_addr(i).encode() for i in ids], dtype=bytes)
    return names, FastValues(ids_a, np.zeros(len(ids), np.int64), vals)


def test_columns_equal_the_dict_path_row_for_row():
    h = HealthRows()
    names, fast = _fast([9, 2, 7])
    # a liquidated user without debt (health factor uint256 max: stored as NULL) interleaved with the fast users
    h.add(_cp(1, "liquidation", 4, None), names, fast,
          [_scalar(5, 2**256 - 1, 2**256 - 1, debt=0, here=True), _scalar(8, WAD - 1, WAD + 1, wrongly=True)])
    h.add(_cp(2, "end", None, None), None, None, [_scalar(3, WAD // 2, WAD // 3)])
    names, fast = _fast([11, 1])
    h.add(_cp(3, "price_change", None, None), names, fast, [])
    h.add(_cp(4, "end", None, None), None, None, [])  # nobody near: no rows
    rows = list(h)
    assert len(h) == len(rows) == 8
    # by evaluation, then by address, the fast and the scalar users merged
    assert [r["user"] for r in rows[:5]] == [_addr(i) for i in (2, 5, 7, 8, 9)]
    assert [r["user"] for r in rows[6:]] == [_addr(1), _addr(11)]
    assert rows[1]["liquidated_here"] and rows[3]["wrongly_eligible"] and rows[0]["hf_reported"] == WAD + 2000
    got = h.to_arrow(TABLES["health"])
    assert got.schema == TABLES["health"].arrow_schema()
    assert got.equals(_dict_path(rows))
    assert got.column("hf_reported")[1].as_py() is None  # beyond 38 digits, as the column doc says
    assert got.column("transaction_index").to_pylist()[:6] == [4] * 5 + [None]


def test_an_int64_segment_and_an_empty_table():
    h = HealthRows()
    assert len(h) == 0 and list(h) == []
    empty = h.to_arrow(TABLES["health"])
    assert empty.num_rows == 0 and empty.schema == TABLES["health"].arrow_schema()
    names, fast = _fast(list(range(50, 0, -1)))
    h.add(_cp(0, "start", None, None), names, fast, [_scalar(60, 2**62, 2**63 - 1)])
    assert h.to_arrow(TABLES["health"]).equals(_dict_path(list(h)))
    assert h == list(h) and not (h == list(h)[1:])


def test_batches_are_whole_segments_and_the_same_rows():
    h = HealthRows()
    for k in range(5):
        names, fast = _fast(list(range(10 * k + 1, 10 * k + 8)))
        h.add(_cp(k, "price_change", None, None), names, fast, [_scalar(900 + k, WAD - 5, WAD + 5, wrongly=True)])
    batches = list(h.batches(TABLES["health"], rows_per_batch=10))
    assert [b.num_rows for b in batches] == [16, 16, 8]  # segments of 8 rows, never split
    assert pa.Table.from_batches(batches).equals(h.to_arrow(TABLES["health"]))
    assert h.to_arrow(TABLES["health"]).equals(_dict_path(list(h)))


def test_a_segment_of_more_than_a_million_rows():
    """pyarrow splits a large bytes array into chunks; the batch takes it as one column."""
    n = 1_100_000
    h = HealthRows()
    names, fast = _fast(list(range(n, 0, -1)))
    h.add(_cp(1, "end", None, None), names, fast, [])
    (batch,) = h.batches(TABLES["health"])
    assert batch.num_rows == n
    users = batch.column(batch.schema.get_field_index("user"))
    assert users[0].as_py() == _addr(1) and users[n - 1].as_py() == _addr(n)
    hf = batch.column(batch.schema.get_field_index("hf_reported"))
    assert int(hf[n - 1].as_py()) == WAD + 1000 * n
