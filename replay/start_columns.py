"""The start positions as NumPy columns, straight from Arrow: no Python object per row.

``positions_at_start`` (an Arrow table, as DuckDB or Parquet give it) becomes, per pool, one
:class:`StartColumns`: the pool's users sorted (fixed-width bytes, found by binary search), for each
the range of its rows and its eMode category, and per row the asset number, the collateral flag,
the scaled balances as float64 (for the screen and the vector valuation) and as the two 64-bit words
of the exact DECIMAL(38,0) (read back into a Python int only for a user an event or the scalar
reference touches). :class:`replay.positions.PositionBook` loads these and materializes a user's
exact state on first use.

The float of an exact amount is ``fl(fl(hi) * 2**64 + fl(lo))``: within ``2u`` of the amount
(``3u`` from ``2**117`` on), which the error bound of :mod:`replay.vector_valuation` allows for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["StartColumns", "has_repeated_positions", "read_start_positions", "start_columns"]

_DEC = None


def _dec_type():
    import pyarrow as pa

    global _DEC
    if _DEC is None:
        _DEC = pa.decimal128(38, 0)
    return _DEC


@dataclass
class StartColumns:
    """One pool's start positions: users sorted, their row ranges, and per-row columns."""

    users: np.ndarray  # fixed-width bytes, sorted, unique
    first: np.ndarray  # int64: first row of each user
    count: np.ndarray  # int64: rows of each user (0: a user with an eMode category and no asset row)
    emode: np.ndarray  # int64 per user
    row_asset: np.ndarray  # int64 per row: the asset's number in ``assets`` (-1: not a reserve of the pool)
    asset_bytes: np.ndarray  # fixed-width bytes per row: the asset (empty: a user with an eMode category only)
    assets: list[str]
    collateral: np.ndarray  # bool per row
    scaled_a: np.ndarray  # float64 per row
    scaled_d: np.ndarray
    scaled_a_rest: np.ndarray  # float64 per row: amount - scaled_a, exact (the pair holds 106 bits)
    scaled_d_rest: np.ndarray
    a_words: np.ndarray  # uint64 (rows, 2): low and high word of the exact scaled aToken balance
    d_words: np.ndarray

    def find(self, user: str) -> int | None:
        """The user's number, or None when the start state does not hold it."""
        key = user.encode()
        j = int(np.searchsorted(self.users, key))
        if j < len(self.users) and self.users[j] == key:
            return j
        return None

    def name(self, j: int) -> str:
        return self.users[j].decode()

    @staticmethod
    def exact(words: np.ndarray, r: int) -> int:
        return int(words[r, 0]) + (int(words[r, 1]) << 64)


def _fixed_width(arr) -> np.ndarray:
    """A string column as fixed-width bytes without a Python object per value (addresses all have
    the same length); any other column the slow way."""
    import pyarrow as pa

    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count:
        arr = arr.fill_null("")
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype="S1")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    widths = np.diff(offsets)
    width = int(widths[0])
    if width > 0 and (widths == width).all():
        data = arr.buffers()[2]
        return np.frombuffer(data, dtype=f"S{width}", count=n, offset=int(offsets[0]))
    return np.array([s.encode() for s in arr.to_pylist()], dtype="S")


_HEX = np.full(256, 255, dtype=np.uint64)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint64)


def _sort_users(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, first, count)``: a stable order of ``u`` (fixed-width bytes) and, in that order, where
    each distinct value starts and how many rows it has. Lowercase ``0x`` + 40-hex addresses (what the
    warehouse holds) sort as three integers, much faster than as strings and in the same order."""
    n = len(u)
    if n and u.dtype.itemsize == 42:
        chars = u.view(np.uint8).reshape(n, 42)
        nibbles = _HEX[chars[:, 2:]]
        if (chars[:, 0] == ord("0")).all() and (chars[:, 1] == ord("x")).all() and (nibbles < 16).all():
            keys = []
            for lo, hi in ((34, 40), (16, 34), (0, 16)):  # least significant key first, for lexsort
                k = np.zeros(n, dtype=np.uint64)
                for j in range(lo, hi):
                    k = (k << np.uint64(4)) | nibbles[:, j]
                keys.append(k)
            order = np.lexsort(keys)
            sk = [k[order] for k in keys]
            new = np.ones(n, dtype=bool)
            new[1:] = (sk[0][1:] != sk[0][:-1]) | (sk[1][1:] != sk[1][:-1]) | (sk[2][1:] != sk[2][:-1])
            first = np.nonzero(new)[0]
            return order, first, np.diff(np.append(first, n))
    order = np.argsort(u, kind="stable")
    _, first, count = np.unique(u[order], return_index=True, return_counts=True)
    return order, first, count


def _words(col) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A non-negative DECIMAL(38,0) (or integer) column: its exact 128-bit words, its float64 and the
    exact rest ``amount - float`` (an integer below ``2**53`` for amounts below ``2**106``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_decimal(col.type) or col.type.scale != 0 or col.type.byte_width != 16:
        col = pc.cast(col, _dec_type())
    if col.null_count:
        col = pc.fill_null(col, pa.scalar(0, col.type))
    n = len(col)
    words = np.frombuffer(col.buffers()[1], dtype=np.uint64, count=2 * n, offset=col.offset * 16).reshape(n, 2)
    if n and (words[:, 1] >> np.uint64(63)).any():
        raise ValueError("a scaled balance in positions_at_start is negative")
    floats = words[:, 1].astype(np.float64) * 2.0**64 + words[:, 0].astype(np.float64)
    # the float's own words (it is an integer; both parts exact), then the rest modulo 2**64, exact
    # since |rest| <= ulp / 2 < 2**63 for amounts below 2**116
    f_hi = np.floor(floats / 2.0**64)
    f_lo = (floats - f_hi * 2.0**64).astype(np.uint64)
    rest = (words[:, 0] - f_lo).view(np.int64).astype(np.float64)
    return words, floats, rest


def start_columns(table, assets_by_pool: Mapping[str, Sequence[str]]) -> dict[str, StartColumns]:
    """``positions_at_start`` as an Arrow table -> :class:`StartColumns` per pool of ``assets_by_pool``."""
    import pyarrow as pa

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    pools = _fixed_width(table.column("pool"))
    users = _fixed_width(table.column("user"))
    assets = _fixed_width(table.column("asset"))
    emode = table.column("emode_category").fill_null(0).to_numpy().astype(np.int64)
    collateral = table.column("using_as_collateral").fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    a_words, a_float, a_rest = _words(table.column("scaled_a_token_balance"))
    d_words, d_float, d_rest = _words(table.column("scaled_variable_debt"))
    out = {}
    for pool, pool_assets in assets_by_pool.items():
        mine = np.nonzero(pools == pool.encode())[0]
        u = users[mine]
        order, first, count = _sort_users(u)
        rows = mine[order]
        uniq = u[order][first]
        asset_of = {a.encode(): i for i, a in enumerate(pool_assets)}
        row_assets = assets[rows]
        numbers = np.full(len(rows), -1, dtype=np.int64)
        for name, i in asset_of.items():
            numbers[row_assets == name] = i
        # the last row of a user gives its eMode category (as a row-by-row load would)
        last = first + count - 1
        sc = StartColumns(users=uniq, first=first.astype(np.int64), count=count.astype(np.int64),
                          emode=emode[rows][last] if len(rows) else np.zeros(0, dtype=np.int64),
                          row_asset=numbers, asset_bytes=row_assets, assets=list(pool_assets), collateral=collateral[rows],
                          scaled_a=a_float[rows], scaled_d=d_float[rows], scaled_a_rest=a_rest[rows],
                          scaled_d_rest=d_rest[rows], a_words=a_words[rows], d_words=d_words[rows])
        # rows without an asset (a user with an eMode category only) count for the user, not as positions
        sc.row_asset[row_assets == b""] = -1
        out[pool] = sc
    return out


def has_repeated_positions(columns: Mapping[str, StartColumns]) -> bool:
    """Whether some (user, asset) appears in two rows (a row-by-row load keeps the last one)."""
    for sc in columns.values():
        if len(sc.asset_bytes) < 2:
            continue
        row_user = np.repeat(np.arange(len(sc.users)), sc.count)
        order = np.lexsort((sc.asset_bytes, row_user))
        same = (row_user[order][1:] == row_user[order][:-1]) & (sc.asset_bytes[order][1:] == sc.asset_bytes[order][:-1])
        if (same & (sc.asset_bytes[order][1:] != b"")).any():
            return True
    return False


def read_start_positions(root, *, chain_id: int, pools: Sequence[str], block: int):
    """``positions_at_start`` of ``pools`` at ``block`` from the warehouse, as an Arrow table (the rows
    :func:`replay.inputs.load_inputs` reads as dicts); loads into the book by columns."""
    import duckdb
    import pyarrow as pa

    from postmortem.sql import connect_read_only

    pools = sorted({p.lower() for p in pools})
    inlist = ", ".join("?" for _ in pools)
    con = connect_read_only(root)
    try:
        return con.execute(f"SELECT * FROM positions_at_start WHERE chain_id = ? AND block_number = ? AND pool IN ({inlist})",
                           [chain_id, block, *pools]).to_arrow_table()
    except duckdb.CatalogException:
        return pa.table({})
    finally:
        con.close()
